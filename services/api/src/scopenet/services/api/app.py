"""Wiring of the HTTP API: resources, routes, middlewares, the server and its probes.

The API is stateless: a NATS connection (made in the background, see ``gateway``) and the tokens
table are all it holds, so any number of replicas can serve behind a load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from scopenet.runtime.health import HealthServer
from scopenet.services.api import (
    bgp,
    extensions,
    ipam,
    ipviews,
    openapi,
    portforwarding,
    quotas,
    rbac,
    reachability,
    topology,
)
from scopenet.services.api.auth import Authenticator, Identifies, load_tokens
from scopenet.services.api.controller import Controller, json_response
from scopenet.services.api.errors import error_middleware
from scopenet.services.api.gateway import Gateway, has_service
from scopenet.services.api.settings import ApiSettings
from scopenet.services.api.spec import Resource
from scopenet.services.api.traces import trace_middleware

NAME = "api"
VERSION = "0.1.0"
MAX_BODY = 1024 * 1024

log = structlog.get_logger("api")


def build_resources(gw: Gateway, *, read_your_writes_timeout: float = 2.0) -> list[Resource]:
    out = [*ipam.resources(gw, read_your_writes_timeout=read_your_writes_timeout), rbac.resource(gw)]
    if has_service("topology"):
        out += topology.resources(gw)
        out.append(portforwarding.resource(gw))
        out += bgp.resources(gw)
    return out


def build_app(gw: Gateway, auth: Identifies, *, read_your_writes_timeout: float = 2.0) -> web.Application:
    from scopenet.services.api.auth import auth_middleware

    resources = build_resources(gw, read_your_writes_timeout=read_your_writes_timeout)
    app = web.Application(
        middlewares=[trace_middleware, error_middleware, auth_middleware(auth)], client_max_size=MAX_BODY
    )
    spec = openapi.document(resources, version=VERSION)

    async def versions(request: web.Request) -> web.Response:
        base = f"{request.url.origin()}/v2.0/"
        return json_response(
            {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"href": base, "rel": "self"}]}]}
        )

    async def v2(request: web.Request) -> web.Response:
        origin = request.url.origin()
        items = [
            {
                "name": r.singular,
                "collection": r.plural,
                "links": [{"href": f"{origin}/v2.0/{r.collection}", "rel": "self"}],
            }
            for r in resources
            if r.parent is None  # a sub-resource is reached through its parent
        ]
        return json_response({"resources": items})

    async def openapi_json(_: web.Request) -> web.Response:
        return json_response(spec)

    async def livez(_: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ok = gw.connected
        return json_response({"status": "ok" if ok else "unavailable", "checks": {"nats": ok}}, 200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/", versions, allow_head=False)
    app.router.add_get("/v2.0", v2, allow_head=False)
    app.router.add_get("/v2.0/", v2, allow_head=False)
    app.router.add_get("/openapi.json", openapi_json, allow_head=False)
    app.router.add_get("/livez", livez, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/metrics", metrics, allow_head=False)
    app.add_routes(extensions.routes(has_service("topology")))
    app.add_routes(quotas.routes(gw))
    app.add_routes(ipviews.routes(gw, topology=has_service("topology")))
    if has_service("topology"):
        app.add_routes(reachability.routes(gw))
    for r in resources:
        app.add_routes(Controller(r).routes())
    from scopenet.services.api.ui import routes as ui

    async def ui_home(_: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect("/ui/")

    app.router.add_get("/ui", ui_home, allow_head=False)
    app.add_subapp("/ui/", ui.app(gw, auth, resources))
    return app


def authenticator(settings: ApiSettings) -> Identifies:
    """Fail fast: a tokens-mode API without a readable tokens file does not start, nor a
    keystone-mode one without the service user's credentials."""
    if settings.auth == "keystone":
        from scopenet.services.api.keystone import KeystoneAuthenticator, config_from

        keystone = KeystoneAuthenticator(config_from(settings))
        log.info("api_keystone_auth", **keystone.described)
        return keystone
    if settings.auth == "noauth":
        log.warning("api_auth_disabled", hint="every caller is admin unless X-Project-Id/X-Roles say otherwise")
        return Authenticator("noauth")
    path = settings.tokens_file or tokens_path(settings.state_dir)
    return Authenticator("tokens", load_tokens(path))


def tokens_path(state_dir: Path) -> Path:
    return state_dir / "tokens.yaml"


@dataclass
class RunningApi:
    port: int
    gateway: Gateway
    app: web.Application

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def api_service(
    settings: ApiSettings, *, database_url: str | None = None, nats_url: str
) -> AsyncIterator[RunningApi]:
    """Run the API until the block exits (``database_url`` is accepted and unused: no state)."""
    from scopenet.bus.connection import connect_nats

    auth = authenticator(settings)
    async with AsyncExitStack() as stack:
        stack.callback(auth.close)
        gw = Gateway(timeout=settings.request_timeout)

        async def connect(url: str) -> Any:
            return await connect_nats(url, name=NAME)

        gw.start(nats_url, connect)
        stack.push_async_callback(gw.stop)
        app = build_app(gw, auth, read_your_writes_timeout=settings.read_your_writes_timeout)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.api_host, settings.api_port)
        await site.start()
        port = int(runner.addresses[0][1])

        async def nats_ok() -> bool:
            return gw.connected

        health = HealthServer({"nats": nats_ok})
        health_port = await health.start(settings.health_host, settings.health_port)
        stack.push_async_callback(health.stop)
        with contextlib.suppress(TimeoutError):  # give NATS a moment so the first requests do not see 503
            await asyncio.wait_for(gw.ready.wait(), timeout=min(5.0, settings.request_timeout))
        log.info("api_ready", host=settings.api_host, port=port, health_port=health_port, auth=settings.auth)
        yield RunningApi(port=port, gateway=gw, app=app)
        log.info("api_stopping")
