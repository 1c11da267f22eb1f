"""The fleet's scene, shared by the fleet tests: the seed's topology plus extra routers, placed by
topology over three hosts, with every instance on a host other than its router's.

``fleet`` and ``scene`` are module-scoped fixtures: a test module imports them (with ``stack``) and
sets ``TOPOLOGY = fleet.TOPOLOGY`` (the issue's 10 s heartbeat TTL).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from scopenet.netlink import TestInstance
from tests.helpers import eventually
from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import project
from tests.netns.fleet import Fleet
from tests.netns.seed_stack import World, applied, ext_routes, seed_topology
from tests.netns.stack import Stack

EXTRA_ROUTERS = 2


@dataclass
class Extra:
    """One more project's router, its network and an instance on a host other than the router's."""

    router: str
    subnet: str
    segment: int
    gateway: str
    """The router's external IPv4 address (what the external host sees of SNATed traffic)."""
    internal_gw: str
    host: int
    inst: TestInstance


@dataclass
class Scene:
    world: World
    router_host: int
    """Where topology put router1."""
    hosts: dict[str, int]
    """Instance name → host index."""
    segments: dict[str, int]
    """Network name → segmentation id (VNI)."""
    extras: list[Extra] = field(default_factory=list)


@pytest.fixture(scope="module")
async def fleet(stack: Stack) -> AsyncIterator[Fleet]:
    t0 = time.monotonic()
    async with Fleet(stack) as f:
        started = time.monotonic() - t0

        async def all_alive() -> bool:
            agents = (await stack.topo("agent.list", ADMIN)).agents
            return {a.agent_id for a in agents if a.alive} >= {h.name for h in f.hosts}

        await eventually(all_alive, timeout=30, what="every agent alive in topology")
        print(f"\nfleet of {f.size} hosts up (agents ready) in {started:.1f} s")
        yield f


async def segment_of(stack: Stack, network_id: Any) -> int:
    return int((await stack.topo("network.get", ADMIN, id=network_id)).network.provider_segmentation_id)


async def placed(stack: Stack, fleet: Fleet, router: str) -> int:
    """Wait until the router is applied and ACTIVE on the host topology placed it on; that host."""
    where: list[int] = []

    async def done() -> bool:
        h = await fleet.router_host(router)
        if h is None or not await applied(stack, h.box.kernel, router, h.name):
            return False
        where[:] = [h.index]
        return True

    await eventually(done, timeout=30, what=f"router {router} applied and ACTIVE")
    return where[0]


async def _extra(stack: Stack, i: int, public: str) -> tuple[str, str, int, str, str, Any]:
    mk, ctx = stack.mk, project()
    net = await mk.network(ctx, name=f"extra-{i}")
    subnet = await mk.subnet(ctx, net, cidr=f"10.20.{i}.0/24", name=f"extra-{i}-v4")
    router = await mk.router(ctx, name=f"extra-router-{i}", external_gateway_info={"network_id": public})
    await mk.attach(ctx, router, subnet)
    port = await mk.port(ctx, net, name=f"extra-inst-{i}", device_owner="compute:nova")
    gw_port = next(
        p
        for p in (await stack.topo("port.list", ADMIN, filters={"device_id": str(router.id)})).ports
        if p.device_owner == "network:router_gateway"
    )
    gateway = next(f.ip_address for f in gw_port.fixed_ips if ":" not in str(f.ip_address))
    return str(router.id), str(subnet.id), await segment_of(stack, net.id), str(gateway), str(subnet.gateway_ip), port


@pytest.fixture(scope="module")
async def scene(stack: Stack, fleet: Fleet) -> AsyncIterator[Scene]:
    t0 = time.monotonic()
    t = await seed_topology(stack)
    extras = [await _extra(stack, i, t["public"]) for i in range(1, EXTRA_ROUTERS + 1)]
    r = await placed(stack, fleet, t["router"])
    where = [await placed(stack, fleet, e[0]) for e in extras]
    applied_in = time.monotonic() - t0

    # Every instance on a host other than its router's: inst1 and inst2 apart, ext with inst2.
    inst1_port, inst2_port, ext_port = t["ports"]
    hosts = {"instance1": (r + 1) % fleet.size, "instance2": (r + 2) % fleet.size, "ext": (r + 2) % fleet.size}
    inst1 = await fleet.plug(hosts["instance1"], inst1_port.id, "instance1")
    inst2 = await fleet.plug(hosts["instance2"], inst2_port.id, "instance2")
    ext = await fleet.plug(hosts["ext"], ext_port.id, "ext", routes=ext_routes(t["gw"]))
    world = World.of(t, ext=ext, inst1=inst1, inst2=inst2)
    segments = {
        "public": await segment_of(stack, t["public"]),
        "network1": await segment_of(stack, inst1_port.network_id),
        "network2": await segment_of(stack, inst2_port.network_id),
    }
    scene = Scene(world, r, hosts, segments)
    for (router, subnet, segment, gateway, internal_gw, port), k in zip(extras, where, strict=True):
        host = (k + 1) % fleet.size
        inst = await fleet.plug(host, port.id, f"extra-{segment}")
        scene.extras.append(Extra(router, subnet, segment, gateway, internal_gw, host, inst))
        scene.hosts[inst.name] = host
    print(f"\nseed + {EXTRA_ROUTERS} routers applied in {applied_in:.1f} s; routers on hosts {[r, *where]}")
    yield scene
    for name, k in scene.hosts.items():
        await fleet.unplug(k, name)
