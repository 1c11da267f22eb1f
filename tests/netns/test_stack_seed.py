"""The seed's "Checking connectivity" through the whole stack, IPv4 and IPv6.

NATS commands → IPAM and topology → RouterSpec on JetStream → the L3 agent (a real process) →
the kernel (a private sandbox, see ``tests/netns/stack.py``). The instances are namespaces plugged
in from their ports like ``scopenet instance create`` does; the external host *is* made with that
command, as a user in a second terminal would, routes added with ``scopenet instance exec`` as in
the seed document.

Topology and matrix: ``tests/netns/seed_stack.py`` (shared with the fleet's test).
"""

# The module-scoped fixtures `box` and `stack` are imported, then requested by name:
# ruff: noqa: F401, F811

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scopenet.commands.instance import plug
from scopenet.infra.embedded import record_stack
from scopenet.netlink import TestInstance
from tests.helpers import eventually
from tests.integration.conftest import ADMIN
from tests.netns.probes import echo_servers, udp_seen
from tests.netns.seed_stack import Matrix, World, applied, ext_routes, gateways, seed_matrix, seed_topology
from tests.netns.stack import Box, Stack, box, cli, running_agent, stack

pytestmark = pytest.mark.netns

AGENT = f"stack-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
async def agent(box: Box, stack: Stack) -> AsyncIterator[Any]:
    async with running_agent(box, stack, AGENT) as a:
        yield a


@pytest.fixture(scope="module")
async def world(stack: Stack, box: Box, agent: Any) -> AsyncIterator[World]:
    t = await seed_topology(stack)
    await eventually(
        lambda: applied(stack, box.kernel, t["router"], AGENT), timeout=15, what="router1 applied and ACTIVE"
    )
    inst1_port, inst2_port, ext_port = t["ports"]
    instances = [
        await plug.create(box.ns, stack.topo.bus, port_id=p.id, name=n, host=box.host)
        for p, n in ((inst1_port, "instance1"), (inst2_port, "instance2"))
    ]
    # The external host the way the seed makes it: `scopenet instance create` beside a running stack,
    # then its routes to the project networks via the router's gateway by hand.
    record_stack(stack.tmp, database_url="", nats_url=box.nats_url, host_netns=box.host)
    made = await cli(box, stack.tmp, "instance", "create", "--port", str(ext_port.id), "--name", "ext")
    assert made.returncode == 0, made.stderr
    assert "instance ext: namespace qinst-ext" in made.stdout and ext_port.mac_address in made.stdout
    routes = [f"ip route add {c} via {via}" for c, via in ext_routes(t["gw"])]
    done = await cli(box, stack.tmp, "instance", "exec", "ext", "--", "sh", "-ec", "; ".join(routes))
    assert done.returncode == 0, done.stderr
    ext = TestInstance.attach(box.ns, "ext", host=box.host)
    ext.addresses, ext.port_id = (await plug.port_view(stack.topo.bus, ext_port.id)).addresses, str(ext_port.id)
    yield World.of(t, ext=ext, inst1=instances[0], inst2=instances[1])
    for inst in instances:
        await inst.delete()


async def test_router1_is_applied_and_active(stack: Stack, box: Box, world: World, agent: Any) -> None:
    """The agent applied the spec topology holds, reported ACTIVE, and is ready."""
    assert await applied(stack, box.kernel, world.router, AGENT)
    assert await box.kernel.routers() == [world.router]
    status, body = await agent.readyz()
    assert status == 200 and body["checks"] == {"nats": True, "spec_consumer": True, "first_sync": True}
    listed = {a.agent_id: a for a in (await stack.topo("agent.list", ADMIN)).agents}
    assert listed[AGENT].alive and listed[AGENT].routers == 1


async def test_seed_matrix(box: Box, world: World) -> None:
    await seed_matrix(Matrix(box.kernel, world))


async def test_floating_ip_both_ways(stack: Stack, box: Box, world: World) -> None:
    m, w = Matrix(box.kernel, world), world
    fip = (
        await stack.topo(
            "floatingip.create",
            ADMIN,
            floatingip={"floating_network_id": w.fip_network, "port_id": w.inst1_port},
        )
    ).floatingip
    address = fip.floating_ip_address
    await eventually(lambda: applied(stack, box.kernel, w.router, AGENT), timeout=10, what="floating IP applied")
    i1_4, i2_4, ext4 = w.inst1.ip(4), w.inst2.ip(4), w.ext.ip(4)
    async with echo_servers([w.ext, w.inst1, w.inst2]):
        await asyncio.gather(m.reach(w.ext, address, ext4), m.reach(w.inst1, ext4, address))
        await m.blocked(w.ext, i1_4, gateways(w.inst1)[4])  # the fixed address is still out of reach
        # docs/neutron.md#behaviour-matrix: a port with a floating IP may reach the external scope's
        # networks (float-snat
        # re-marks it), seen with its own address; the other way round stays blocked.
        await m.reach(w.inst1, i2_4, i1_4)
        await m.blocked(w.inst2, i1_4, gateways(w.inst1)[4])


async def test_rescoping_the_pool_flips_reachability_within_a_second(stack: Stack, box: Box, world: World) -> None:
    """subnet-pool-ip4 leaves scope A: network2's IPv4 is SNATed out and unreachable from outside;
    back in: routed directly again. Timed from the IPAM command to the first packet that shows it."""
    m, w = Matrix(box.kernel, world), world
    ext4, i2_4 = w.ext.ip(4), w.inst2.ip(4)

    async def inst2_seen_as(address: str) -> bool:
        return await udp_seen(w.inst2, ext4, timeout=0.2) == address

    async with echo_servers([w.ext, w.inst2]):
        await m.reach(w.inst2, ext4, i2_4)
        t0 = time.monotonic()
        await stack.ipam("subnetpool.update", ADMIN, id=w.pool4, subnetpool={"address_scope_id": None})
        await eventually(lambda: inst2_seen_as(w.gw[4]), timeout=5, every=0, what="SNAT after leaving scope A")
        out = time.monotonic() - t0
        await m.blocked(w.ext, i2_4, gateways(w.inst2)[4])
        await m.reach(w.ext, w.inst2.ip(6), w.ext.ip(6))  # IPv6 is another pool: unchanged

        t0 = time.monotonic()
        await stack.ipam("subnetpool.update", ADMIN, id=w.pool4, subnetpool={"address_scope_id": w.scope4})
        await eventually(lambda: inst2_seen_as(i2_4), timeout=5, every=0, what="no NAT back in scope A")
        back = time.monotonic() - t0
        await m.reach(w.ext, i2_4, ext4)
    print(f"\nscope flip through the whole stack: out of scope A in {out * 1000:.0f} ms, back in {back * 1000:.0f} ms")
    assert out < 1 and back < 1, f"flip took {out:.2f} s / {back:.2f} s"


async def test_instance_delete_unplugs(stack: Stack, box: Box, world: World) -> None:
    """``scopenet instance delete``: the namespace and its bridge port are gone; twice is an error."""

    async def host_links() -> set[str]:
        assert box.kernel.host_ipr is not None
        return {m.get("ifname") async for m in await box.kernel.host_ipr.link("dump")}

    assert world.ext.peer in await host_links()
    gone = await cli(box, stack.tmp, "instance", "delete", "ext")
    assert gone.returncode == 0, gone.stderr
    assert await box.ns.run(lambda: box.ns.identity("qinst-ext")) is None
    assert world.ext.peer not in await host_links()
    again = await cli(box, stack.tmp, "instance", "delete", "ext")
    assert again.returncode == 1 and "no instance ext" in again.stderr
