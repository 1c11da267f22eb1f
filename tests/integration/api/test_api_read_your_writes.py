"""Read-your-writes across services: once the API has answered a write, every read through it
reflects that write, even where the read is served by another service than the write.

The one place this is not automatic: a subnet pool moving to another address scope is IPAM's write,
while the network's ``ipv4_address_scope``/``ipv6_address_scope`` (and its revision, and the
RouterSpecs of its routers) are topology's, derived from its mirror of IPAM's pools, which IPAM's
events feed. The API's pool update waits, bounded, for topology's mirror to hold the pool's new
revision before it answers (docs/consistency.md). Every other write that topology shows is topology's
own (subnets, ports, routers) or has no effect topology shows.

These tests flip pools back and forth many times while other writes run, and read right after each
answer, as a user scripting the CLI would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from scopenet.bus.client import BusClient
from scopenet.contracts import consistency as cons
from scopenet.contracts import topology_endpoints as tep
from scopenet.contracts.base import ByIdCommand, CallContext
from scopenet.services.topology.app import NAME, VERSION, TopologyRunning
from scopenet.services.topology.handlers import routes
from tests.helpers import eventually
from tests.integration.api.conftest import Http
from tests.integration.conftest import not_serving

ADMIN_CTX = CallContext(project_id="0" * 32, roles=["admin"])
FLIPS = 200


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def created(http: Http, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await http.post(path, "admin", {key: body})
    assert r.status == 201, r.body
    out: dict[str, Any] = r.body[key]
    return out


async def scoped_network(http: Http, *, prefix: str) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Two v4 scopes, a pool in the first, a network with a subnet from the pool."""
    scopes = [
        (await created(http, "/v2.0/address-scopes", "address_scope", {"name": uniq("rw"), "ip_version": 4}))["id"]
        for _ in range(2)
    ]
    pool = await created(
        http,
        "/v2.0/subnetpools",
        "subnetpool",
        {"name": uniq("rw"), "prefixes": [prefix], "default_prefixlen": 26, "address_scope_id": scopes[0]},
    )
    net = await created(http, "/v2.0/networks", "network", {"name": uniq("rw")})
    await created(
        http, "/v2.0/subnets", "subnet", {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"]}
    )
    return scopes, pool, net


@contextlib.asynccontextmanager
async def background(http: Http, prefix: str) -> AsyncIterator[dict[str, int]]:
    """Other writes while the test runs: subnets created and deleted on another pool (IPAM and
    topology busy), and another pool flipping scopes (IPAM's events and topology's mirror busy)."""
    done = {"subnets": 0, "flips": 0}
    scopes, pool, _ = await scoped_network(http, prefix=prefix)
    stop = asyncio.Event()

    async def churn() -> None:
        net = await created(http, "/v2.0/networks", "network", {"name": uniq("churn")})
        while not stop.is_set():
            body = {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"]}
            sub = await created(http, "/v2.0/subnets", "subnet", body)
            r = await http.delete(f"/v2.0/subnets/{sub['id']}")
            assert r.status == 204, r.body
            done["subnets"] += 1

    async def flip() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            r = await http.put(
                f"/v2.0/subnetpools/{pool['id']}", "admin", {"subnetpool": {"address_scope_id": scopes[i % 2]}}
            )
            assert r.status == 200, r.body
            done["flips"] += 1

    tasks = [asyncio.create_task(churn()), asyncio.create_task(churn()), asyncio.create_task(flip())]
    try:
        yield done
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors


async def test_a_network_shows_its_pools_new_scope_as_soon_as_the_update_answers(http: Http) -> None:
    scopes, pool, net = await scoped_network(http, prefix="10.177.0.0/16")
    stale: list[tuple[int, Any, str]] = []
    async with background(http, "10.178.0.0/16") as done:
        revision = (await http.get(f"/v2.0/networks/{net['id']}")).body["network"]["revision_number"]
        for i in range(1, FLIPS + 1):
            want = scopes[i % 2]
            r = await http.put(f"/v2.0/subnetpools/{pool['id']}", "admin", {"subnetpool": {"address_scope_id": want}})
            assert r.status == 200, r.body
            seen = (await http.get(f"/v2.0/networks/{net['id']}")).body["network"]
            # The network's representation changed, so its revision did too, and a listing agrees.
            if seen["ipv4_address_scope"] != want or seen["revision_number"] <= revision:
                stale.append((i, seen["ipv4_address_scope"], want))
            revision = seen["revision_number"]
            listed = (await http.get(f"/v2.0/networks?id={net['id']}")).body["networks"]
            if listed[0]["ipv4_address_scope"] != want:
                stale.append((i, listed[0]["ipv4_address_scope"], want))
    assert not stale, f"{len(stale)} stale reads of {FLIPS} flips, first: {stale[:5]}"
    assert done["subnets"] > 0 and done["flips"] > 0, done  # the background really ran meanwhile


async def test_a_routers_spec_follows_a_rescoped_pool_as_soon_as_the_update_answers(
    http: Http, nats_client: Any
) -> None:
    scopes, pool, net = await scoped_network(http, prefix="10.179.0.0/16")
    router = await created(http, "/v2.0/routers", "router", {"name": uniq("rw")})
    subnet_id = (await http.get(f"/v2.0/networks/{net['id']}")).body["network"]["subnets"][0]
    r = await http.put(f"/v2.0/routers/{router['id']}/add_router_interface", "admin", {"subnet_id": subnet_id})
    assert r.status == 200, r.body
    bus = BusClient(nats_client, timeout=10)
    for i in range(1, 41):
        want = scopes[i % 2]
        r = await http.put(f"/v2.0/subnetpools/{pool['id']}", "admin", {"subnetpool": {"address_scope_id": want}})
        assert r.status == 200, r.body
        spec = await bus.call(tep.ROUTER_SPEC, ByIdCommand(context=ADMIN_CTX, id=router["id"]))
        seen = {str(port.scope_v4.id) for port in spec.interfaces}
        assert seen == {want}, (i, seen, want)


async def test_a_wait_for_a_revision_that_never_comes_ends_at_its_timeout(nats_client: Any, http: Http) -> None:
    _, pool, _ = await scoped_network(http, prefix="10.180.0.0/16")
    bus = BusClient(nats_client, timeout=10)
    held = cons.PoolRevision(id=pool["id"], revision_number=pool["revision_number"])
    reply = await bus.call(tep.MIRROR_WAIT, cons.MirrorWait(context=ADMIN_CTX, subnetpools=[held]))
    assert reply.caught_up
    future = cons.PoolRevision(id=pool["id"], revision_number=pool["revision_number"] + 1000)
    start = time.monotonic()
    reply = await bus.call(tep.MIRROR_WAIT, cons.MirrorWait(context=ADMIN_CTX, subnetpools=[future], timeout=0.3))
    assert not reply.caught_up and 0.3 <= reply.waited < 5, reply
    assert time.monotonic() - start < 5


def topology_away(svc: TopologyRunning) -> contextlib.AbstractAsyncContextManager[None]:
    """The in-process topology stops answering commands (its mirror keeps consuming), then serves again."""
    return not_serving(svc, name=NAME, version=VERSION, routes=routes(svc.deps))


async def test_a_pool_update_answers_at_once_when_topology_is_away(
    http: Http, topology_running: TopologyRunning
) -> None:
    scopes, pool, net = await scoped_network(http, prefix="10.181.0.0/16")
    async with topology_away(topology_running):
        start = time.monotonic()
        r = await http.put(f"/v2.0/subnetpools/{pool['id']}", "admin", {"subnetpool": {"address_scope_id": scopes[1]}})
        assert r.status == 200 and r.body["subnetpool"]["address_scope_id"] == scopes[1], r.body
        assert time.monotonic() - start < 2  # "no responders" at once: no wait for a timeout

    # Unconfirmed, the write still reaches the network, as soon as topology's mirror reads its event.
    async def rescoped() -> bool:
        r = await http.get(f"/v2.0/networks/{net['id']}")
        return bool(r.status == 200 and r.body["network"]["ipv4_address_scope"] == scopes[1])

    await eventually(rescoped, timeout=10, what="the network in the pool's new scope")
