"""The seed's topology made through the stack (NATS commands), and its connectivity matrix.

Shared by the single-host stack test (``test_stack_seed.py``) and the fleet's (``test_fleet_vxlan.py``):
the same resources, the same expectations; only where the router and the instances run differs.

Topology: the seed's, with one change: the external network's subnets come from pools of their own
in the same scopes (``public-pool-ip4/6``), so that moving ``subnet-pool-ip4`` out of scope A takes
only network2 out of the external network's scope. (In the seed both are cut from
``subnet-pool-ip4``; moving it would take both out together and they would still agree.)

Reachable rows assert a real ping and the source address the receiver saw; blocked rows assert no
reply *and* the router's drop counter of the egress interface rising by the packets sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any

from scopenet.datapath import names, nft
from scopenet.netlink import Kernel, TestInstance
from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import project
from tests.netns.probes import BLOCKED_WAIT, echo_servers, ping, udp_seen
from tests.netns.stack import Stack

EXT_ROUTES = ("203.0.113.0/26", "198.51.100.0/26", "2001:db8:a583::/64", "2001:db8:80d2:c4d3::/64")
"""What the seed types on the external host: the project networks, via router1's gateway."""


def version(ip: str) -> int:
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

    @classmethod
    def of(cls, t: dict[str, Any], *, ext: TestInstance, inst1: TestInstance, inst2: TestInstance) -> World:
        """The world of ``seed_topology``'s resources ``t``, with its instances plugged wherever."""
        return cls(
            router=t["router"],
            pool4=t["pool4"],
            scope4=t["scope4"],
            fip_network=t["public"],
            inst1_port=str(t["ports"][0].id),
            ifname=t["ifname"],
            gw=t["gw"],
            ext=ext,
            inst1=inst1,
            inst2=inst2,
        )


async def seed_topology(stack: Stack) -> dict[str, Any]:
    """The seed's resources (one project, router1 with its gateway and four interfaces, three ports)."""
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
        "gw": {version(f.ip_address): f.ip_address for f in gw_port.fixed_ips},
    }


def ext_routes(gw: dict[int, str]) -> list[tuple[str, str]]:
    """``(destination, via)`` of ``EXT_ROUTES`` through router1's gateway addresses (by IP version)."""
    return [(c, gw[ipaddress.ip_network(c).version]) for c in EXT_ROUTES]


async def applied(stack: Stack, kernel: Kernel, router: str, agent_id: str) -> bool:
    """The kernel holds the router's *current* spec (its nft table's digest) and topology shows ACTIVE."""
    spec = await stack.topo("router.spec", ADMIN, id=router)
    listing = await kernel.listing(router) if router in await kernel.routers() else None
    seen = nft.parse_listing(listing) if listing is not None else None
    if seen is None or seen.digest != nft.render(spec, owner=agent_id).digest:
        return False
    status = (await stack.topo("router.get", ADMIN, id=router)).router.status
    return bool(status == "ACTIVE")


class Matrix:
    """The matrix's two kinds of row; ``kernel``: the sandbox holding the router (its drop counters)."""

    def __init__(self, kernel: Kernel, world: World) -> None:
        self.kernel = kernel
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


def gateways(inst: TestInstance) -> dict[int, str]:
    return {version(g): g for g in inst.gateways}


async def seed_matrix(m: Matrix) -> None:
    """The seed's "Checking connectivity", IPv4 and IPv6, with the source address each receiver saw."""
    w = m.w
    ext4, ext6 = w.ext.ip(4), w.ext.ip(6)
    i1_4, i1_6, i2_4, i2_6 = w.inst1.ip(4), w.inst1.ip(6), w.inst2.ip(4), w.inst2.ip(6)
    gw1, gw2 = gateways(w.inst1), gateways(w.inst2)
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
