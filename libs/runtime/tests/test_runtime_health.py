"""The probe server every service runs (``/livez``, ``/readyz``, ``/metrics``), on loopback.

Pins what an orchestrator sees: ``/livez`` answers while the loop runs whatever the checks say;
``/readyz`` is 200 only when every check passes and otherwise 503 naming the failing check (a
check that raises counts as failing, it never takes the probe down); ``/metrics`` is the
Prometheus text format with ``scopenet_`` series and no ``_created`` series.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client import Counter

from scopenet.runtime.health import HealthServer

state = {"nats": True}
PROBED = Counter("scopenet_test_probe_total", "Probes answered by the test server")


async def nats() -> bool:
    return state["nats"]


async def broken() -> bool:
    raise OSError("db away")


@pytest.fixture
async def probes() -> AsyncIterator[tuple[HealthServer, aiohttp.ClientSession]]:
    state["nats"] = True
    server = HealthServer({"nats": nats})
    await server.start("127.0.0.1", 0)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as session:
        yield server, session
    await server.stop()


async def get(session: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with session.get(path) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


async def test_ready_only_when_every_check_passes(probes: tuple[HealthServer, aiohttp.ClientSession]) -> None:
    _, session = probes
    assert await get(session, "/readyz") == (200, {"status": "ok", "checks": {"nats": True}})
    state["nats"] = False
    assert await get(session, "/readyz") == (503, {"status": "unavailable", "checks": {"nats": False}})
    assert await get(session, "/livez") == (200, {"status": "ok"})


async def test_a_check_that_raises_fails_only_itself(probes: tuple[HealthServer, aiohttp.ClientSession]) -> None:
    server, session = probes
    server.checks["database"] = broken
    status, body = await get(session, "/readyz")
    assert status == 503 and body["checks"] == {"nats": True, "database": False}


async def test_metrics_are_prometheus_text(probes: tuple[HealthServer, aiohttp.ClientSession]) -> None:
    _, session = probes
    PROBED.inc()
    async with session.get("/metrics") as response:
        text = await response.text()
        assert response.status == 200 and response.content_type == "text/plain"
    assert "scopenet_test_probe_total 1.0" in text
    assert "scopenet_test_probe_created" not in text
