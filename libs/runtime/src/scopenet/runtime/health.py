"""Probes and metrics on a port of their own: /livez, /readyz, /metrics.

``/livez`` only proves the process and its event loop answer. ``/readyz`` runs the service's
checks (NATS connected, database ping, consumers bound, …) and says which one failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import REGISTRY, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Check = Callable[[], Awaitable[bool]]

disable_created_metrics()  # type: ignore[no-untyped-call]


class HealthServer:
    def __init__(self, checks: dict[str, Check]) -> None:
        self.checks = checks
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    async def _livez(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        results: dict[str, bool] = {}
        for name, check in self.checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), timeout=2.0))
            except Exception:
                results[name] = False
        ok = all(results.values())
        return web.json_response(
            {"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503
        )

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self, host: str, port: int) -> int:
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None)
        assert sockets, "the probe server did not bind"
        self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
