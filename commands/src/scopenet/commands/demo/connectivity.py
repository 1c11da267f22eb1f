"""The seed's "Checking connectivity", for real: instances in namespaces, pings and the source
address each receiver saw, and "blocked" proven by the router's drop counters, not by silence.

The external host stands for the seed's "external network router": a namespace on the external
network that learns its routes over BGP from scopenet's speaker when BIRD 2 is installed (then an
unscoped address is blocked before the router: the host has no route to it, shown by ``ip route
get``), else with the routes the seed types by hand (``ip route add 203.0.113.0/26 via …``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from scopenet.bus.client import BusClient
from scopenet.commands.demo.walkthrough import World
from scopenet.commands.instance import plug
from scopenet.netlink import Kernel, Namespaces, TestInstance

PROBE_PORT = 7007


@dataclass
class Check:
    src: str
    dst: str
    address: str
    expect: str  # "reply" or "blocked"
    want_source: str | None = None  # the address the receiver should see (None: don't care)
    seen: str = ""
    source: str | None = None
    dropped: int = 0
    note: str = ""
    proof: str = "drops"
    """How "blocked" is proven: ``drops`` (the router's drop counters rose) or ``no-route`` (with
    BGP the external host never learnt a route to the address: the router never sees the packet)."""
    route: str = ""
    """``no-route``: the source's ``ip route get`` of the address."""
    gateways: tuple[str, ...] = ()
    """``no-route``: router1's gateway addresses, which the route must not go through."""

    @property
    def ok(self) -> bool:
        if self.expect == "blocked" and self.proof == "no-route":
            return (
                self.seen == "blocked"
                and bool(self.route)
                and not any(f"via {g} " in self.route for g in self.gateways)
            )
        if self.expect == "blocked":
            return self.seen == "blocked" and self.dropped > 0
        return self.seen == "reply" and (self.want_source is None or self.source == self.want_source)


def _v(port: dict[str, Any], version: int) -> str:
    return str(next(ip["ip_address"] for ip in port["fixed_ips"] if (":" in ip["ip_address"]) == (version == 6)))


async def _udp(src: TestInstance, dst: TestInstance, address: str, timeout: float) -> str | None:
    """Send one datagram; the receiver answers it. Returns the source address the receiver saw,
    or None when the datagram or its answer got lost."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    loop = asyncio.get_running_loop()
    rx = await dst.socket(family)
    tx = await src.socket(family)
    try:
        rx.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", PROBE_PORT))
        await loop.sock_sendto(tx, b"scopenet-probe", (address, PROBE_PORT))
        try:
            _, peer = await asyncio.wait_for(loop.sock_recvfrom(rx, 64), timeout)
            await loop.sock_sendto(rx, b"scopenet-answer", peer)
            await asyncio.wait_for(loop.sock_recvfrom(tx, 64), timeout)
        except TimeoutError:
            return None
        return str(peer[0])
    finally:
        rx.close()
        tx.close()


class Lab:
    """The instances and the router's counters."""

    def __init__(self, namespaces: Namespaces, bus: BusClient, host: str, router_id: str) -> None:
        self.ns = namespaces
        self.bus = bus
        self.host = host
        self.router_id = router_id
        self.kernel = Kernel(namespaces, host=host)
        self.instances: dict[str, TestInstance] = {}
        self.cleanups: list[Callable[[], Awaitable[None]]] = []
        """Run by ``remove`` first (the external host's BIRD)."""

    async def plug(self, name: str, port_id: str, routes: list[tuple[str, str]] | None = None) -> TestInstance:
        with_suffix = f"demo-{name}"
        await plug.delete(self.ns, name=with_suffix, host=self.host)  # a leftover of an interrupted run
        inst = await plug.create(
            self.ns, self.bus, port_id=port_id, name=with_suffix, host=self.host, routes=routes or []
        )
        self.instances[name] = inst
        return inst

    async def drops(self) -> int:
        counters = await self.kernel.counters(self.router_id)
        return sum(v for k, v in counters.items() if k.startswith("drop_"))

    async def run(self, check: Check, *, timeout: float = 1.0) -> Check:
        src, dst = self.instances[check.src], self.instances[check.dst]
        before = await self.drops()
        ping = "ping6" if ":" in check.address else "ping"
        done = await src.exec(ping, "-c", "1", "-W", "1", check.address, timeout=10)
        source = await _udp(src, dst, check.address, timeout)
        check.seen = "reply" if done.returncode == 0 and source is not None else "blocked"
        check.source = source
        check.dropped = await self.drops() - before
        if check.proof == "no-route":
            check.route = (await src.exec("ip", "route", "get", check.address, timeout=10)).stdout.strip() + " "
        return check

    async def remove(self) -> None:
        for cleanup in reversed(self.cleanups):
            await cleanup()
        self.cleanups.clear()
        for inst in self.instances.values():
            await inst.delete()
        self.instances.clear()


def _unannounced(w: World, check: Check, bgp: bool) -> Check:
    """With BGP the external host has no route to an unscoped address: blocked before the router."""
    if not bgp:
        return check
    gws = tuple(ip["ip_address"] for ip in w.router["external_gateway_info"]["external_fixed_ips"])
    note = f"{check.note.split(':')[0]}: not announced by BGP, no route"
    return dataclasses.replace(check, proof="no-route", gateways=gws, note=note)


def checks_without_fips(w: World, *, bgp: bool = False) -> list[Check]:
    ext, i1, i2 = w.ports["external-host"], w.ports["instance1"], w.ports["instance2"]
    gw4 = next(
        ip["ip_address"]
        for ip in w.router["external_gateway_info"]["external_fixed_ips"]
        if ":" not in ip["ip_address"]
    )
    return [
        Check("external-host", "instance2", _v(i2, 4), "reply", _v(ext, 4), note="same scope: routed, no NAT"),
        _unannounced(
            w, Check("external-host", "instance1", _v(i1, 4), "blocked", note="unscoped: scope filter drops"), bgp
        ),
        Check("instance1", "external-host", _v(ext, 4), "reply", gw4, note="unscoped → external: SNAT"),
        Check("instance2", "external-host", _v(ext, 4), "reply", _v(i2, 4), note="same scope: no NAT"),
        Check("instance1", "instance2", _v(i2, 4), "blocked", note="across scopes"),
        Check("instance2", "instance1", _v(i1, 4), "blocked", note="across scopes"),
        Check("external-host", "instance2", _v(i2, 6), "reply", _v(ext, 6), note="IPv6 same scope"),
        Check("instance2", "external-host", _v(ext, 6), "reply", _v(i2, 6), note="IPv6 same scope"),
        _unannounced(
            w, Check("external-host", "instance1", _v(i1, 6), "blocked", note="IPv6 unscoped: never NATed"), bgp
        ),
        Check("instance1", "external-host", _v(ext, 6), "blocked", note="IPv6 unscoped: never NATed"),
        Check("instance1", "instance2", _v(i2, 6), "blocked", note="IPv6 across scopes"),
    ]


def checks_with_fips(w: World, *, bgp: bool = False) -> list[Check]:
    ext, i1 = w.ports["external-host"], w.ports["instance1"]
    f1 = w.floating_ips["instance1"]["floating_ip_address"]
    f2 = w.floating_ips["instance2"]["floating_ip_address"]
    return [
        Check("external-host", "instance1", f1, "reply", _v(ext, 4), note="floating IP of an unscoped instance"),
        Check("external-host", "instance2", f2, "reply", _v(ext, 4), note="floating IP"),
        Check("instance1", "external-host", _v(ext, 4), "reply", f1, note="leaves as its floating IP"),
        _unannounced(
            w, Check("external-host", "instance1", _v(i1, 4), "blocked", note="fixed IP still unreachable"), bgp
        ),
    ]


def external_routes(w: World) -> list[tuple[str, str]]:
    """What the seed types on the external router: every project subnet via router1's gateway."""
    gws = {
        (":" in ip["ip_address"]): ip["ip_address"] for ip in w.router["external_gateway_info"]["external_fixed_ips"]
    }
    return [
        (w.subnets[n]["cidr"], gws[":" in w.subnets[n]["cidr"]])
        for n in ("subnet-ip4-1", "subnet-ip4-2", "subnet-ip6-1", "subnet-ip6-2")
    ]
