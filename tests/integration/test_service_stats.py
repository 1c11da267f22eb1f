"""``$SRV.STATS`` (what ``nats micro stats`` shows) tells the truth about our endpoints.

Our nats.micro callback only starts a task, so nats.micro's own figures said every request was a
success that took microseconds (five 200 ms requests answering 409: 0 errors, 26 µs average).
Here requests that take measurable time and requests that fail go through ``scopenet.bus.micro``
on a real nats-server, and the stats are read back over NATS the way ``nats micro stats`` reads them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from scopenet.bus.client import BusClient
from scopenet.bus.micro import CommandServer, Route, serve
from scopenet.contracts.endpoint import Endpoint
from scopenet.contracts.errors import Conflict, DomainError
from scopenet.store.service import Running
from tests.integration.conftest import ADMIN, Ipam, new_id

MS = 1_000_000  # nanoseconds


class Work(BaseModel):
    seconds: float
    conflict: bool = False


class Done(BaseModel):
    ok: bool


async def work(cmd: Work) -> Done:
    await asyncio.sleep(cmd.seconds)
    if cmd.conflict:
        raise Conflict("the thing is taken", type="ThingInUse")
    return Done(ok=True)


async def stats(nc: Any, name: str) -> dict[str, dict[str, Any]]:
    """The endpoints of the one instance of ``name`` answering ``$SRV.STATS.<name>``, by name."""
    reply = await nc.request(f"$SRV.STATS.{name}", b"", timeout=5)
    body = json.loads(reply.data)
    assert body["type"] == "io.nats.micro.v1.stats_response"
    return {ep["name"]: ep for ep in body["endpoints"]}


@pytest.fixture
async def served(nats_client: Any) -> AsyncIterator[tuple[str, Endpoint[Work, Done], CommandServer]]:
    name = f"statstest{uuid.uuid4().hex[:8]}"
    ep: Endpoint[Work, Done] = Endpoint(name, "thing", "work", Work, Done, doc="sleeps, then answers or refuses")
    server = await serve(
        nats_client, name=name, version="0.0.1", description="t", routes=[Route.bind(ep, work)], limit=8
    )
    try:
        yield name, ep, server
    finally:
        await server.stop()


async def test_errors_and_processing_time_are_counted(nats_client: Any, served: Any) -> None:
    name, ep, _ = served
    bus = BusClient(nats_client, timeout=10)
    # Five slow refusals (the reported case), three slow successes, all at once (they run concurrently).
    calls = [bus.call(ep, Work(seconds=0.2, conflict=True)) for _ in range(5)]
    calls += [bus.call(ep, Work(seconds=0.2)) for _ in range(3)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, DomainError) and r.code == 409 for r in results) == 5
    assert sum(isinstance(r, Done) for r in results) == 3

    got = (await stats(nats_client, name))[ep.name]
    assert got["num_requests"] == 8
    assert got["num_errors"] == 5
    assert got["last_error"] == "409:the thing is taken"
    # Each request slept 200 ms: the average is at least that, and nowhere near the test's timeout.
    assert 200 * MS <= got["average_processing_time"] < 5_000 * MS, got
    assert got["processing_time"] >= 8 * 200 * MS


async def test_a_malformed_request_counts_as_an_error(nats_client: Any, served: Any) -> None:
    name, ep, _ = served
    _, headers = await BusClient(nats_client, timeout=10).call_raw(ep.subject, b'{"seconds": "soon"}')
    assert headers["Nats-Service-Error-Code"] == "400"
    got = (await stats(nats_client, name))[ep.name]
    assert (got["num_requests"], got["num_errors"]) == (1, 1)
    assert got["last_error"].startswith("400:Invalid input for seconds")
    assert got["average_processing_time"] < 5_000 * MS


async def test_the_ipam_service_counts_its_refusals(ipam: Ipam, ipam_running: Running, nats_client: Any) -> None:
    """The real IPAM service: a 404 is an error in its stats, next to the successes."""

    def figures(all_stats: dict[str, dict[str, Any]]) -> tuple[int, int]:
        ep = _by_subject(all_stats)
        return ep["num_requests"], ep["num_errors"]

    before = figures(await stats(nats_client, "ipam"))
    for _ in range(3):
        with pytest.raises(DomainError):
            await ipam("address_scope.get", ADMIN, id=new_id())
    after_stats = await stats(nats_client, "ipam")
    after = figures(after_stats)
    assert (after[0] - before[0], after[1] - before[1]) == (3, 3)
    ep = _by_subject(after_stats)
    assert ep["last_error"].startswith("404:"), ep
    assert ep["average_processing_time"] > 0


def _by_subject(all_stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return next(ep for ep in all_stats.values() if ep["subject"] == "scopenet.v1.ipam.address_scope.get")
