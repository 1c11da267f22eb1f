"""The seed's "Checking connectivity" through the whole stack, IPv4 and IPv6.

NATS commands → IPAM and topology → RouterSpec on JetStream → the L3 agent (a real process) →
the kernel (a private sandbox, see ``tests/netns/stack.py``). The instances are namespaces plugged
in from their ports like ``scopenet instance create`` does; the external host *is* made with that
command, as a user in a second terminal would, routes added with ``scopenet instance exec`` as in
the seed document.

Topology: the seed's, with one change: the external network's subnets come from pools of their own
in the same scopes (``public-pool-ip4/6``), so that moving ``subnet-pool-ip4`` out of scope A takes
only network2 out of the external network's scope. (In the seed both are cut from
``subnet-pool-ip4``; moving it would take both out together and they would still agree.)

Reachable rows assert a real ping and the source address the receiver saw; blocked rows assert no
reply *and* the router's drop counter of the egress interface rising by the packets sent.
"""

# The module-scoped fixtures `box` and `stack` are imported, then requested by name:
# ruff: noqa: F401, F811

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from scopenet.datapath import names, nft
from scopenet.infra.embedded import record_stack
from scopenet.netlink import TestInstance
from scopenet.services.instance import plug
from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import project
from tests.netns.probes import BLOCKED_WAIT, echo_servers, ping, udp_seen
from tests.netns.stack import Box, Stack, box, cli, eventually, running_agent, stack

pytestmark = pytest.mark.netns

AGENT = f"stack-{uuid.uuid4().hex[:6]}"


def _v(ip: str) -> int:
    return ipaddress.ip_address(ip).version


@dataclass
class World:
    router: str
    pool4: str
    scope4: str
    fip_network: str
    inst1_port: str
    ifname: dict[str, str]
    """Router interface by the address it holds (``qr-…`` / ``qg-…``): whose drop counter to read."""
    gw: dict[int, str]
    ext: TestInstance
    inst1: TestInstance
    inst2: TestInstance

    def ip(self, inst: TestInstance, version: int) -> str:
        return inst.ip(version)


async def _seed_topology(stack: Stack) -> dict[str, Any]:
    mk, topo = stack.mk, stack.topo
    s6, s4 = await mk.scope(6), await mk.scope(4)
    public6 = await mk.pool(["2001:db8::/64"], scope=s6, default_prefixlen=64, name="public-pool-ip6")
    public4 = await mk.pool(["203.0.113.64/26"], scope=s4, default_prefixlen=26, name="public-pool-ip4")
    p6 = await mk.pool(["2001:db8:a583::/48"], scope=s6, default_prefixlen=64, name="subnet-pool-ip6")
    p4 = await mk.pool(["203.0.113.0/26"], scope=s4, default_prefixlen=26, name="subnet-pool-ip4")
    public = await mk.network(ADMIN, name="public", **{"router:external": True})
    await mk.subnet(ADMIN, public, pool=public4, enable_dhcp=False)
    await mk.subnet(ADMIN, public, pool=public6, enable_dhcp=False)
    demo = project()
    net1, net2 = await mk.network(demo, name="network1"), await mk.network(demo, name="network2")
    subnets = [
        await mk.subnet(demo, net1, cidr="198.51.100.0/26", name="subnet-ip4-1"),
        await mk.subnet(
            demo,
            net1,
            cidr="2001:db8:80d2:c4d3::/64",
            gateway_ip="2001:db8:80d2:c4d3::1",
            ipv6_ra_mode="slaac",
            ipv6_address_mode="slaac",
        ),
        await mk.subnet(demo, net2, pool=p4, name="subnet-ip4-2"),
        await mk.subnet(demo, net2, pool=p6, ipv6_ra_mode="slaac", ipv6_address_mode="slaac"),
    ]
    router = await mk.router(demo, name="router1", external_gateway_info={"network_id": str(public.id)})
    for s in subnets:
        await mk.attach(demo, router, s)
    inst1 = await mk.port(demo, net1, name="instance1", device_owner="compute:nova")
    inst2 = await mk.port(demo, net2, name="instance2", device_owner="compute:nova")
    ext = await mk.port(ADMIN, public, name="ext-host")
    ports = (await topo("port.list", ADMIN, filters={"device_id": str(router.id)})).ports
    ifname: dict[str, str] = {}
    for p in ports:
        make = names.gateway_ifname if p.device_owner == "network:router_gateway" else names.internal_ifname
        ifname |= {f.ip_address: make(p.id) for f in p.fixed_ips}
    gw_port = next(p for p in ports if p.device_owner == "network:router_gateway")
    return {
        "demo": demo,
        "router": str(router.id),
        "pool4": str(p4.id),
        "scope4": str(s4.id),
        "public": str(public.id),
        "ports": (inst1, inst2, ext),
        "ifname": ifname,
        "gw": {_v(f.ip_address): f.ip_address for f in gw_port.fixed_ips},
    }


async def applied(stack: Stack, box: Box, router: str) -> bool:
    """The kernel holds the router's *current* spec (its nft table's digest) and topology shows ACTIVE."""
    spec = await stack.topo("router.spec", ADMIN, id=router)
    listing = await box.kernel.listing(router) if router in await box.kernel.routers() else None
    seen = nft.parse_listing(listing) if listing is not None else None
    if seen is None or seen.digest != nft.render(spec, owner=AGENT).digest:
        return False
    status = (await stack.topo("router.get", ADMIN, id=router)).router.status
    return bool(status == "ACTIVE")


@pytest.fixture(scope="module")
async def agent(box: Box, stack: Stack) -> AsyncIterator[Any]:
    async with running_agent(box, stack, AGENT) as a:
        yield a


@pytest.fixture(scope="module")
async def world(stack: Stack, box: Box, agent: Any) -> AsyncIterator[World]:
    t = await _seed_topology(stack)
    await eventually(lambda: applied(stack, box, t["router"]), timeout=15, what="router1 applied and ACTIVE")
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
    gw4, gw6 = t["gw"][4], t["gw"][6]
    routes = [
        f"ip route add {c} via {gw4}" if _v(gw4) == ipaddress.ip_network(c).version else f"ip route add {c} via {gw6}"
        for c in ("203.0.113.0/26", "198.51.100.0/26", "2001:db8:a583::/64", "2001:db8:80d2:c4d3::/64")
    ]
    done = await cli(box, stack.tmp, "instance", "exec", "ext", "--", "sh", "-ec", "; ".join(routes))
    assert done.returncode == 0, done.stderr
    ext = TestInstance.attach(box.ns, "ext", host=box.host)
    ext.addresses, ext.port_id = (await plug.port_view(stack.topo.bus, ext_port.id)).addresses, str(ext_port.id)
    yield World(
        router=t["router"],
        pool4=t["pool4"],
        scope4=t["scope4"],
        fip_network=t["public"],
        inst1_port=str(inst1_port.id),
        ifname=t["ifname"],
        gw=t["gw"],
        ext=ext,
        inst1=instances[0],
        inst2=instances[1],
    )
    for inst in instances:
        await inst.delete()


class Matrix:
    def __init__(self, box: Box, world: World) -> None:
        self.kernel = box.kernel
        self.w = world

    async def reach(self, src: TestInstance, dst: str, seen: str) -> None:
        pinged, saw = await asyncio.gather(ping(src, dst), udp_seen(src, dst))
        assert pinged, f"{src.name} -> {dst}: no ping reply"
        assert saw == seen, f"{src.name} -> {dst}: receiver saw {saw}, expected {seen}"

    async def blocked(self, src: TestInstance, dst: str, egress_ip: str) -> None:
        """No reply, and the router dropped it: the counter of the interface toward ``dst`` rose."""
        counter = nft.counter_name(self.w.ifname[egress_ip])
        before = (await self.kernel.counters(self.w.router))[counter]
        pinged, saw = await asyncio.gather(
            ping(src, dst, timeout=BLOCKED_WAIT), udp_seen(src, dst, timeout=BLOCKED_WAIT)
        )
        after = (await self.kernel.counters(self.w.router))[counter]
        assert not pinged and saw is None, f"{src.name} -> {dst}: expected blocked, got ping={pinged} seen={saw}"
        assert after >= before + 2, f"{src.name} -> {dst}: {counter} went {before} -> {after}, the router did not drop"


def _gateways(inst: TestInstance) -> dict[int, str]:
    return {_v(g): g for g in inst.gateways}


async def test_router1_is_applied_and_active(stack: Stack, box: Box, world: World, agent: Any) -> None:
    """The agent applied the spec topology holds, reported ACTIVE, and is ready."""
    assert await applied(stack, box, world.router)
    assert await box.kernel.routers() == [world.router]
    status, body = await agent.readyz()
    assert status == 200 and body["checks"] == {"nats": True, "spec_consumer": True, "first_sync": True}
    listed = {a.agent_id: a for a in (await stack.topo("agent.list", ADMIN)).agents}
    assert listed[AGENT].alive and listed[AGENT].routers == 1


async def test_seed_matrix(box: Box, world: World) -> None:
    m, w = Matrix(box, world), world
    ext4, ext6 = w.ext.ip(4), w.ext.ip(6)
    i1_4, i1_6, i2_4, i2_6 = w.inst1.ip(4), w.inst1.ip(6), w.inst2.ip(4), w.inst2.ip(6)
    gw1, gw2 = _gateways(w.inst1), _gateways(w.inst2)
    async with echo_servers([w.ext, w.inst1, w.inst2]):
        # Same scope as the external network: routed both ways, no NAT, IPv4 and IPv6.
        await asyncio.gather(
            m.reach(w.ext, i2_4, ext4),
            m.reach(w.inst2, ext4, i2_4),
            m.reach(w.ext, i2_6, ext6),
            m.reach(w.inst2, ext6, i2_6),
            # Unscoped IPv4 leaves by SNAT to the gateway address.
            m.reach(w.inst1, ext4, w.gw[4]),
        )
        await m.blocked(w.ext, i1_4, gw1[4])  # external -> unscoped: no way in without NAT
        await m.blocked(w.inst1, i2_4, gw2[4])  # across scopes on one router: both ways, both families
        await m.blocked(w.inst2, i1_4, gw1[4])
        await m.blocked(w.inst1, i2_6, gw2[6])
        await m.blocked(w.inst2, i1_6, gw1[6])
        await m.blocked(w.ext, i1_6, gw1[6])  # IPv6 of the unscoped network: neither in nor out (no NAT66)
        await m.blocked(w.inst1, ext6, w.gw[6])


async def test_floating_ip_both_ways(stack: Stack, box: Box, world: World) -> None:
    m, w = Matrix(box, world), world
    fip = (
        await stack.topo(
            "floatingip.create",
            ADMIN,
            floatingip={"floating_network_id": w.fip_network, "port_id": w.inst1_port},
        )
    ).floatingip
    address = fip.floating_ip_address
    await eventually(lambda: applied(stack, box, w.router), timeout=10, what="floating IP applied")
    i1_4, i2_4, ext4 = w.inst1.ip(4), w.inst2.ip(4), w.ext.ip(4)
    async with echo_servers([w.ext, w.inst1, w.inst2]):
        await asyncio.gather(m.reach(w.ext, address, ext4), m.reach(w.inst1, ext4, address))
        await m.blocked(w.ext, i1_4, _gateways(w.inst1)[4])  # the fixed address is still out of reach
        # SPEC §5.3: a port with a floating IP may reach the external scope's networks (float-snat
        # re-marks it), seen with its own address; the other way round stays blocked.
        await m.reach(w.inst1, i2_4, i1_4)
        await m.blocked(w.inst2, i1_4, _gateways(w.inst1)[4])


async def test_rescoping_the_pool_flips_reachability_within_a_second(stack: Stack, box: Box, world: World) -> None:
    """subnet-pool-ip4 leaves scope A: network2's IPv4 is SNATed out and unreachable from outside;
    back in: routed directly again. Timed from the IPAM command to the first packet that shows it."""
    m, w = Matrix(box, world), world
    ext4, i2_4 = w.ext.ip(4), w.inst2.ip(4)

    async def inst2_seen_as(address: str) -> bool:
        return await udp_seen(w.inst2, ext4, timeout=0.2) == address

    async with echo_servers([w.ext, w.inst2]):
        await m.reach(w.inst2, ext4, i2_4)
        t0 = time.monotonic()
        await stack.ipam("subnetpool.update", ADMIN, id=w.pool4, subnetpool={"address_scope_id": None})
        await eventually(lambda: inst2_seen_as(w.gw[4]), timeout=5, every=0, what="SNAT after leaving scope A")
        out = time.monotonic() - t0
        await m.blocked(w.ext, i2_4, _gateways(w.inst2)[4])
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
