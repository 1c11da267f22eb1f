"""The seed's scenario across three hosts: networks spanning hosts as VXLAN, routers spread by topology.

A fleet (``tests/netns/fleet.py``): three hosts, each a private sandbox with its own L3 agent
(``host-0``..``host-2``) and host namespace, joined by an underlay bridge of the test's own. The
seed's topology (``tests/netns/seed_stack.py``) plus two more projects, each with a router on the
external network and a network of its own, so that least-loaded scheduling puts the routers on
different agents. Every instance runs on a host other than its router's: its frames reach the
router only over VXLAN.

What is asserted: the routers are spread over the agents, each only in its own host's kernel; the
seed's whole matrix (IPv4 and IPv6, the source address each receiver saw, "blocked" proven by the
router's drop counters) with router1 on one host and its instances and the external host on the
others, a packet of the networks' full MTU included; each extra router reached from another host; and the
VXLAN devices: on a host exactly for the networks it has a router port or an instance on, and gone
from a host when the last router or instance of that network leaves it.
"""

# The module-scoped fixture `stack` is imported, then requested by name:
# ruff: noqa: F401, F811

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from scopenet.contracts.topology import MAX_MTU
from scopenet.netlink import TestInstance
from tests.helpers import eventually, seconds_until
from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import project
from tests.netns import fleet as fleet_mod
from tests.netns.fleet import Fleet
from tests.netns.fleet_scene import Scene, fleet, scene
from tests.netns.probes import echo_servers, udp_seen
from tests.netns.seed_stack import Matrix, seed_matrix
from tests.netns.stack import Stack, stack

pytestmark = pytest.mark.netns

TOPOLOGY = fleet_mod.TOPOLOGY
"""The stack fixture's topology settings for this module: the issue's 10 s heartbeat TTL."""


async def test_routers_are_spread_over_the_agents_each_in_its_own_host_only(
    stack: Stack, fleet: Fleet, scene: Scene
) -> None:
    placement = {scene.world.router: scene.router_host}
    for e in scene.extras:
        h = await fleet.router_host(e.router)
        assert h is not None
        placement[e.router] = h.index
    assert len(set(placement.values())) >= 2, f"all routers on one agent: {placement}"
    for k in range(fleet.size):
        assert sorted(await fleet.routers(k)) == sorted(r for r, h in placement.items() if h == k)
    listed = {a.agent_id: a.routers for a in (await stack.topo("agent.list", ADMIN)).agents}
    assert sum(listed[h.name] for h in fleet.hosts) == len(placement)


async def test_seed_matrix_with_router1_on_one_host_and_its_instances_on_the_others(fleet: Fleet, scene: Scene) -> None:
    w = scene.world
    assert scene.router_host not in {scene.hosts["instance1"], scene.hosts["instance2"], scene.hosts["ext"]}
    assert scene.hosts["instance1"] != scene.hosts["instance2"]
    t0 = time.monotonic()
    await seed_matrix(Matrix(fleet.hosts[scene.router_host].box.kernel, w))
    print(f"\nseed matrix across hosts: {time.monotonic() - t0:.1f} s")
    # A packet of the networks' full MTU (1450), DF set, instance2 → router (another host) →
    # external host: a 1500-byte underlay carries it with VXLAN's 50 bytes, and no more.
    assert {w.inst2.mtu, w.ext.mtu} == {MAX_MTU}
    big = await w.inst2.exec("ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1422", w.ext.ip(4), timeout=10)
    assert big.returncode == 0, big.stdout + big.stderr


async def test_every_router_is_reached_from_an_instance_on_another_host(fleet: Fleet, scene: Scene) -> None:
    async with echo_servers([scene.world.ext]):
        for e in scene.extras:
            router_host = await fleet.router_host(e.router)
            assert router_host is not None and router_host.index != e.host
            assert await fleet.ping(e.inst, e.internal_gw), f"{e.inst.name} -> its router {e.internal_gw}"
            # Unscoped: out through the router's SNAT, over the external network to another host.
            assert await udp_seen(e.inst, scene.world.ext.ip(4)) == e.gateway


async def _expected_vnis(stack: Stack, fleet: Fleet, scene: Scene, k: int) -> set[int]:
    """The networks host k needs: those of the routers placed on it and of its instances."""
    want = set()
    for router in (scene.world.router, *(e.router for e in scene.extras)):
        spec = await stack.topo("router.spec", ADMIN, id=router)
        if spec.agent_id == fleet.hosts[k].name and spec.present:
            ports = [spec.gateway, *spec.interfaces] if spec.gateway else list(spec.interfaces)
            want |= {p.segmentation_id for p in ports}
    instances = {"instance1": "network1", "instance2": "network2", "ext": "public"}
    want |= {scene.segments[net] for name, net in instances.items() if scene.hosts.get(name) == k}
    want |= {e.segment for e in scene.extras if e.host == k and scene.hosts.get(e.inst.name) == k}
    return want


async def test_vxlan_devices_exist_exactly_where_their_network_is_needed(
    stack: Stack, fleet: Fleet, scene: Scene
) -> None:
    for k in range(fleet.size):
        want = await _expected_vnis(stack, fleet, scene, k)
        assert await fleet.vxlans(k) == want, f"host-{k}"
        assert await fleet.links(k, "bridge") == {f"brq-{v}" for v in want}, f"host-{k}"
    everywhere = set().union(*[await fleet.vxlans(k) for k in range(fleet.size)])
    assert everywhere == set(scene.segments.values()) | {e.segment for e in scene.extras}


async def test_the_last_router_or_instance_to_leave_a_host_takes_the_network_with_it(
    stack: Stack, fleet: Fleet, scene: Scene
) -> None:
    e = scene.extras[-1]
    router_host = await fleet.router_host(e.router)
    assert router_host is not None
    assert e.segment in await fleet.vxlans(e.host) and e.segment in await fleet.vxlans(router_host.index)

    # The instance leaves its host: nothing else there is on that network.
    assert await fleet.unplug(e.host, e.inst.name)
    del scene.hosts[e.inst.name]
    assert e.segment not in await fleet.vxlans(e.host)
    assert f"brq-{e.segment}" not in await fleet.links(e.host, "bridge")
    assert e.segment in await fleet.vxlans(router_host.index)  # the router still has it

    # The router goes: its host keeps only the networks something else there still uses.
    await stack.topo("router.remove_router_interface", ADMIN, id=e.router, subnet_id=e.subnet)
    await stack.topo("router.update", ADMIN, id=e.router, router={"external_gateway_info": None})
    await stack.topo("router.delete", ADMIN, id=e.router)
    k = router_host.index
    scene.extras.remove(e)

    async def settled() -> bool:
        return e.router not in await fleet.routers(k) and await fleet.vxlans(k) == await _expected_vnis(
            stack, fleet, scene, k
        )

    took = await seconds_until(settled, timeout=15, what=f"host-{k} without router {e.router}'s networks")
    assert e.segment not in await fleet.vxlans(k)
    print(f"\nrouter deleted → its networks gone from host-{k} in {took:.2f} s")
    # The rest still works across hosts.
    async with echo_servers([scene.world.ext]):
        for other in scene.extras:
            assert await udp_seen(other.inst, scene.world.ext.ip(4)) == other.gateway


async def test_the_fault_switches_do_what_failover_tests_rely_on(fleet: Fleet, scene: Scene) -> None:
    """Underlay cut: the router's host is unreachable over VXLAN, and back when restored; NATS cut:
    the agent sees NATS gone, and back; kill -9 and start: a new agent process, ready again, that
    keeps its routers (each well within the 10 s TTL, so topology moves nothing)."""
    w, r = scene.world, scene.router_host
    assert await fleet.ping(w.ext, w.inst2.ip(4))
    await fleet.cut_underlay(r)
    assert not await fleet.ping(w.ext, w.inst2.ip(4), timeout=0.5)
    await fleet.restore_underlay(r)
    took = await seconds_until(
        lambda: fleet.ping(w.ext, w.inst2.ip(4)), timeout=10, what="traffic after the underlay is back"
    )
    print(f"\nunderlay restored → ext reaches instance2 through router1 again in {took:.2f} s")

    agent = fleet.hosts[r].agent

    async def nats_up() -> bool:
        return bool((await agent.readyz())[1]["checks"]["nats"])

    fleet.cut_nats(r)
    await eventually(lambda: _not(nats_up()), timeout=5, what="the agent to see NATS gone")
    fleet.restore_nats(r)
    await eventually(nats_up, timeout=10, what="the agent back on NATS")

    pid = agent.proc.pid if agent.proc else None
    fleet.kill_agent(r)
    ready = await fleet.start_agent(r)
    assert agent.proc is not None and agent.proc.pid != pid
    assert w.router in await fleet.routers(r)
    assert await fleet.ping(w.ext, w.inst2.ip(4))
    print(f"agent on host-{r} killed and started again: ready in {ready:.1f} s")


async def _not(check: Any) -> bool:
    return not await check
