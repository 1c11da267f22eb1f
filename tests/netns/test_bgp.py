"""BGP through the whole stack: the seed topology, scopenet's speaker (BIRD 2 in the L3 agent's
host namespace) and a real BGP router (BIRD 2) on the external host — with no route typed by hand.

The external host is plugged into the public network like any instance; it learns network2's
subnets (same scope as the external network) via router1's gateway addresses and so reaches
instance2 directly; network1 (unscoped) is never announced. The speaker's leg on the external
network is a port on ``public`` whose addresses sit on the host namespace's bridge (the operator's
uplink, as a neutron-dynamic-routing agent host has). Convergence is timed from the IPAM command
(the pool joins or leaves the scope) to the route appearing in, or leaving, the peer's kernel.
"""

# The module-scoped fixtures `box` and `stack` are imported, then requested by name:
# ruff: noqa: F401, F811

from __future__ import annotations

import ipaddress
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from scopenet.commands.demo import bgp
from scopenet.commands.instance import plug
from scopenet.datapath import nft
from scopenet.netlink import TestInstance
from tests.helpers import eventually, seconds_until
from tests.integration.conftest import ADMIN
from tests.netns.probes import ping
from tests.netns.seed_stack import seed_topology
from tests.netns.stack import Box, Stack, box, running_agent, stack

pytestmark = pytest.mark.netns

AGENT = f"bgp-{uuid.uuid4().hex[:6]}"
LOCAL_AS, PEER_AS = bgp.LOCAL_AS, bgp.PEER_AS
Route = bgp.Route


@dataclass
class World:
    router: str
    pool4: str
    scope4: str
    public: str
    inst1_port: str
    gw: dict[int, str]
    speakers: dict[int, str]
    scoped: set[Route]
    """network2's subnets (from the scoped pools) via the gateway address of their family."""
    unscoped: set[str]
    """network1's prefixes (explicit cidrs, no scope)."""
    ext: TestInstance
    inst2: TestInstance
    peer: bgp.ExternalRouter


async def applied(stack: Stack, box: Box, router: str) -> bool:
    spec = await stack.topo("router.spec", ADMIN, id=router)
    listing = await box.kernel.listing(router) if router in await box.kernel.routers() else None
    seen = nft.parse_listing(listing) if listing is not None else None
    return seen is not None and seen.digest == nft.render(spec, owner=AGENT).digest


@pytest.fixture(scope="module")
async def agent(box: Box, stack: Stack) -> AsyncIterator[Any]:
    async with running_agent(box, stack, AGENT, SCOPENET_AGENT_BGP="1") as a:
        yield a


async def advertised(stack: Stack, speaker: str) -> set[Route]:
    reply = await stack.topo("bgp_speaker.get_advertised_routes", ADMIN, id=speaker)
    return {(r.destination, r.next_hop) for r in reply.advertised_routes}


@pytest.fixture(scope="module")
async def world(stack: Stack, box: Box, agent: Any) -> AsyncIterator[World]:
    topo = stack.topo
    t = await seed_topology(stack)
    await eventually(lambda: applied(stack, box, t["router"]), timeout=15, what="router1 applied")
    _inst1_port, inst2_port, ext_port = t["ports"]
    inst2 = await plug.create(box.ns, topo.bus, port_id=inst2_port.id, name="instance2", host=box.host)
    ext = await plug.create(box.ns, topo.bus, port_id=ext_port.id, name="ext", host=box.host)

    # The speaker host's leg on the external network: a port on `public`, its addresses on the bridge.
    uplink = (await topo("port.create", ADMIN, port={"network_id": t["public"], "name": "bgp-uplink"})).port
    speaker_ip = await bgp.uplink(box.ns, topo.bus, box.host, str(uplink.id))

    speakers: dict[int, str] = {}
    for version in (4, 6):
        sp = (
            await topo(
                "bgp_speaker.create",
                ADMIN,
                bgp_speaker={"name": f"speaker-v{version}", "local_as": LOCAL_AS, "ip_version": version},
            )
        ).bgp_speaker
        peer = (
            await topo(
                "bgp_peer.create",
                ADMIN,
                bgp_peer={"name": f"ext-v{version}", "peer_ip": ext.ip(version), "remote_as": PEER_AS},
            )
        ).bgp_peer
        await topo("bgp_speaker.add_bgp_peer", ADMIN, id=str(sp.id), bgp_peer_id=str(peer.id))
        await topo("bgp_speaker.add_gateway_network", ADMIN, id=str(sp.id), network_id=t["public"])
        speakers[version] = str(sp.id)

    # What the router connects, by scope: pooled subnets besides the external ones are network2's.
    router_ips = {ipaddress.ip_address(ip) for ip in t["ifname"]}
    scoped_routes: set[Route] = set()
    unscoped: set[str] = set()
    for sub in (await topo("subnet.list", ADMIN)).subnets:
        net = ipaddress.ip_network(sub.cidr)
        if str(sub.network_id) == t["public"] or not any(ip in net for ip in router_ips):
            continue
        if sub.subnetpool_id is not None:
            scoped_routes.add((str(net), t["gw"][net.version]))
        else:
            unscoped.add(str(net))
    assert len(scoped_routes) == 2 and len(unscoped) == 2, (scoped_routes, unscoped)

    # Without BGP the external host has no way to instance2 (only its subnet's default gateway).
    assert not await ping(ext, inst2.ip(4), timeout=0.5)
    peer_router = bgp.ExternalRouter(box.ns, ext, stack.tmp / "ext-bird")
    await peer_router.start(speaker_ip)
    try:
        yield World(
            router=t["router"],
            pool4=t["pool4"],
            scope4=t["scope4"],
            public=t["public"],
            inst1_port=str(_inst1_port.id),
            gw=t["gw"],
            speakers=speakers,
            scoped=scoped_routes,
            unscoped=unscoped,
            ext=ext,
            inst2=inst2,
            peer=peer_router,
        )
    finally:
        await peer_router.stop()
        for inst in (inst2, ext):
            await inst.delete()


def scoped(w: World) -> set[Route]:
    return w.scoped


def family(w: World, version: int) -> Route:
    return next(r for r in w.scoped if ipaddress.ip_network(r[0]).version == version)


async def test_peer_learns_only_the_scoped_subnets_and_reaches_instance2(world: World, agent: Any) -> None:
    w = world
    took = await seconds_until(lambda: _has(w, scoped(w)), timeout=10, what="the scoped subnets learnt by the peer")
    learned = await w.peer.learned()
    assert not {d for d, _ in learned} & w.unscoped, learned
    assert await ping(w.ext, w.inst2.ip(4)) and await ping(w.ext, w.inst2.ip(6))
    status, body = await agent.readyz()
    assert status == 200 and body["checks"]["bgp_speaker"] is True
    print(f"\npeer learnt the scoped subnets {took * 1000:.0f} ms after its BIRD started")


async def _has(w: World, routes: set[Route]) -> bool:
    return routes <= await w.peer.learned()


async def test_advertised_routes_agree_with_what_the_peer_learnt(stack: Stack, world: World) -> None:
    w = world
    await eventually(lambda: _has(w, scoped(w)), timeout=10, what="the scoped subnets")
    want = await advertised(stack, w.speakers[4]) | await advertised(stack, w.speakers[6])
    assert want == scoped(w)
    assert await w.peer.learned() == want


async def test_floating_ip_is_a_host_route(stack: Stack, world: World) -> None:
    w = world
    fip = (
        await stack.topo(
            "floatingip.create", ADMIN, floatingip={"floating_network_id": w.public, "port_id": w.inst1_port}
        )
    ).floatingip
    host_route = (f"{fip.floating_ip_address}/32", w.gw[4])
    await eventually(lambda: _has(w, {host_route}), timeout=10, what="the floating IP's /32")
    assert host_route in await advertised(stack, w.speakers[4])
    await stack.topo(
        "bgp_speaker.update", ADMIN, id=w.speakers[4], bgp_speaker={"advertise_floating_ip_host_routes": False}
    )

    async def gone() -> bool:
        return host_route not in await w.peer.learned()

    await eventually(gone, timeout=5, what="the /32 withdrawn")
    await stack.topo(
        "bgp_speaker.update", ADMIN, id=w.speakers[4], bgp_speaker={"advertise_floating_ip_host_routes": True}
    )
    await eventually(lambda: _has(w, {host_route}), timeout=10, what="the /32 again")
    await stack.topo("floatingip.delete", ADMIN, id=str(fip.id))
    await eventually(gone, timeout=5, what="the /32 withdrawn with the floating IP")


async def test_pool_leaving_the_scope_withdraws_and_joining_announces(stack: Stack, world: World) -> None:
    w = world
    subnet4 = family(w, 4)
    await eventually(lambda: _has(w, {subnet4}), timeout=10, what="network2 announced")

    async def withdrawn() -> bool:
        return subnet4 not in await w.peer.learned()

    t0 = time.monotonic()
    await stack.ipam("subnetpool.update", ADMIN, id=w.pool4, subnetpool={"address_scope_id": None})
    await eventually(withdrawn, timeout=5, every=0.01, what="network2 withdrawn")
    out = time.monotonic() - t0
    assert not await ping(w.ext, w.inst2.ip(4), timeout=0.5)
    assert family(w, 6) in await w.peer.learned()  # IPv6 is another pool

    t0 = time.monotonic()
    await stack.ipam("subnetpool.update", ADMIN, id=w.pool4, subnetpool={"address_scope_id": w.scope4})
    await eventually(lambda: _has(w, {subnet4}), timeout=5, every=0.01, what="network2 announced again")
    back = time.monotonic() - t0
    # The announcement may beat the router's own flip back into the scope by a few milliseconds.
    await eventually(lambda: ping(w.ext, w.inst2.ip(4), timeout=0.5), timeout=5, what="instance2 reachable again")
    print(f"\nBGP convergence: pool leaves scope -> withdrawn on the peer in {out * 1000:.0f} ms; "
          f"pool joins scope -> route installed on the peer in {back * 1000:.0f} ms")  # fmt: skip
    assert out < 5 and back < 5
