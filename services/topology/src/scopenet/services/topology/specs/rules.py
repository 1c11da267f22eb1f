"""Build a router's RouterSpec from database rows: pure, no I/O (unit-tested on its own).

Scopes follow Neutron's address scopes: a network's scope for an IP family is the address scope of the pool of its
(last) pooled subnet of that family, null without one; every router port on the network carries
that scope per family, whatever its own fixed IPs are. A floating IP carries the IPv4 scope
of its fixed port's network (Neutron's ``fixed_ip_address_scope``). A null scope is the "no scope"
mark id 1024; a real scope's mark id comes from IPAM (allocated once in its database).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from netaddr import IPAddress, IPNetwork

from scopenet.contracts import routerspec as rs


@dataclass(frozen=True)
class NetworkRow:
    id: UUID
    segmentation_id: int
    mtu: int


@dataclass(frozen=True)
class SubnetRow:
    id: UUID
    network_id: UUID
    ip_version: int
    cidr: str
    gateway_ip: str | None
    subnetpool_id: UUID | None


@dataclass(frozen=True)
class PortRow:
    id: UUID
    network_id: UUID
    mac_address: str
    fixed_ips: tuple[tuple[UUID, str], ...]
    """(subnet id, address)"""


@dataclass(frozen=True)
class FipRow:
    id: UUID
    floating_ip_address: str
    fixed_ip_address: str
    port_id: UUID
    fixed_network_id: UUID


@dataclass(frozen=True)
class PfRow:
    """A port forwarding with its floating address and the network of its internal port."""

    id: UUID
    floating_ip_address: str
    protocol: str
    external: tuple[int, int]
    internal_ip_address: str
    internal: tuple[int, int]
    internal_network_id: UUID


@dataclass(frozen=True)
class RouterRow:
    id: UUID
    admin_state_up: bool
    agent_id: str
    revision: int
    enable_snat: bool
    routes: tuple[tuple[str, str], ...] = ()
    """(destination, nexthop)"""


@dataclass(frozen=True)
class World:
    """The rows a spec may depend on. ``subnets`` in creation order (the last pooled one wins)."""

    networks: Mapping[UUID, NetworkRow]
    subnets: Sequence[SubnetRow]
    pools: Mapping[UUID, tuple[int, UUID | None]]
    """pool id → (IP version, address scope id)"""
    marks: Mapping[UUID, int]
    """address scope id → mark id"""
    _by_id: dict[UUID, SubnetRow] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {s.id: s for s in self.subnets})

    def subnet(self, id_: UUID) -> SubnetRow:
        return self._by_id[id_]


class UnknownScope(LookupError):
    """A scope without a mark id in the mirror: the spec cannot be built correctly yet."""


def network_scopes(network_id: UUID, world: World) -> dict[int, UUID | None]:
    """{4: scope or None, 6: scope or None} of one network."""
    out: dict[int, UUID | None] = {4: None, 6: None}
    for s in world.subnets:
        if s.network_id != network_id or s.subnetpool_id is None:
            continue
        pool = world.pools.get(s.subnetpool_id)
        if pool is not None:
            out[pool[0]] = pool[1]
    return out


def scope(scope_id: UUID | None, world: World) -> rs.Scope:
    if scope_id is None:
        return rs.Scope()
    mark = world.marks.get(scope_id)
    if mark is None:
        raise UnknownScope(f"address scope {scope_id} has no known mark id")
    return rs.Scope(id=scope_id, mark_id=mark)


def _addresses(port: PortRow, world: World) -> list[rs.PortAddress]:
    out = []
    for subnet_id, ip in port.fixed_ips:
        s = world.subnet(subnet_id)
        net = IPNetwork(s.cidr)
        out.append(
            rs.PortAddress(
                ip_address=str(IPAddress(ip)),
                prefixlen=net.prefixlen,
                subnet_id=subnet_id,
                cidr=str(net),
                gateway_ip=s.gateway_ip,
            )
        )
    out.sort(key=lambda a: (IPAddress(a.ip_address).version, IPAddress(a.ip_address)))
    return out


def router_port(port: PortRow, world: World) -> dict[str, object]:
    net = world.networks[port.network_id]
    scopes = network_scopes(port.network_id, world)
    return {
        "port_id": port.id,
        "mac_address": port.mac_address,
        "network_id": port.network_id,
        "segmentation_id": net.segmentation_id,
        "mtu": max(68, net.mtu),
        "addresses": _addresses(port, world),
        "scope_v4": scope(scopes[4], world),
        "scope_v6": scope(scopes[6], world),
    }


def build(
    router: RouterRow,
    *,
    gateway: PortRow | None,
    interfaces: Sequence[PortRow],
    floating_ips: Sequence[FipRow],
    world: World,
    port_forwardings: Sequence[PfRow] = (),
) -> rs.RouterSpec:
    gw = rs.Gateway(**router_port(gateway, world), enable_snat=router.enable_snat) if gateway else None
    fips = [
        rs.FloatingIp(
            id=f.id,
            floating_ip_address=str(IPAddress(f.floating_ip_address)),
            fixed_ip_address=str(IPAddress(f.fixed_ip_address)),
            port_id=f.port_id,
            fixed_scope=scope(network_scopes(f.fixed_network_id, world)[4], world),
        )
        for f in sorted(floating_ips, key=lambda f: IPAddress(f.floating_ip_address))
    ]
    return rs.RouterSpec(
        router_id=router.id,
        revision=router.revision,
        agent_id=router.agent_id,
        admin_state_up=router.admin_state_up,
        gateway=gw,
        interfaces=[rs.RouterPort(**router_port(p, world)) for p in interfaces],
        floating_ips=fips,
        routes=[rs.StaticRoute(destination=d, nexthop=n) for d, n in router.routes],
        port_forwardings=[_port_forwarding(p, world) for p in sorted(port_forwardings, key=_pf_order)],
    )


def _pf_order(p: PfRow) -> tuple[IPAddress, str, tuple[int, int]]:
    return IPAddress(p.floating_ip_address), p.protocol, p.external


def _port_forwarding(p: PfRow, world: World) -> rs.PortForwarding:
    """Its internal scope is the IPv4 scope of the internal port's network, as a floating IP's."""
    return rs.PortForwarding(
        id=p.id,
        floating_ip_address=str(IPAddress(p.floating_ip_address)),
        protocol=p.protocol,  # the table's CHECK holds it to the four
        external_port_start=p.external[0],
        external_port_end=p.external[1],
        internal_ip_address=str(IPAddress(p.internal_ip_address)),
        internal_port_start=p.internal[0],
        internal_port_end=p.internal[1],
        internal_scope=scope(network_scopes(p.internal_network_id, world)[4], world),
    )


def removal(router_id: UUID, *, agent_id: str, revision: int) -> rs.RouterSpec:
    """The spec that tells an agent to drop a router (deleted, or moved to another agent)."""
    return rs.RouterSpec(router_id=router_id, revision=revision, agent_id=agent_id, present=False)


def networks_of(
    *,
    interfaces: Iterable[tuple[UUID, PortRow]],
    gateways: Iterable[tuple[UUID, PortRow]],
    floating_ips: Iterable[tuple[UUID, FipRow]],
    port_forwardings: Iterable[tuple[UUID, PfRow]] = (),
) -> set[UUID]:
    """The networks whose rows (``World``) the specs of these ports and floating IPs depend on."""
    nets = {p.network_id for _, p in interfaces} | {p.network_id for _, p in gateways}
    return nets | {f.fixed_network_id for _, f in floating_ips} | {p.internal_network_id for _, p in port_forwardings}


def build_all(
    routers: Sequence[RouterRow],
    *,
    interfaces: Sequence[tuple[UUID, PortRow]],
    gateways: Sequence[tuple[UUID, PortRow]],
    floating_ips: Sequence[tuple[UUID, FipRow]],
    world: World,
    port_forwardings: Sequence[tuple[UUID, PfRow]] = (),
) -> tuple[list[rs.RouterSpec], list[tuple[UUID, str]]]:
    """The spec of every router from rows loaded for all of them at once (each pair: router id,
    row); returns the specs and, apart, the routers whose spec cannot be built yet (a scope the
    mirror does not know: its event will republish them)."""
    # Grouped once: a scheduling pass builds hundreds of specs, and scanning every list per router
    # would be quadratic in them.
    ifaces_of: dict[UUID, list[PortRow]] = {}
    for rid, p in interfaces:
        ifaces_of.setdefault(rid, []).append(p)
    gateway_of = {rid: p for rid, p in reversed(gateways)}  # a router's first gateway row wins
    fips_of: dict[UUID, list[FipRow]] = {}
    for rid, f in floating_ips:
        fips_of.setdefault(rid, []).append(f)
    pfs_of: dict[UUID, list[PfRow]] = {}
    for rid, pf in port_forwardings:
        pfs_of.setdefault(rid, []).append(pf)
    specs: list[rs.RouterSpec] = []
    unbuildable: list[tuple[UUID, str]] = []
    for r in routers:
        try:
            specs.append(
                build(
                    r,
                    gateway=gateway_of.get(r.id),
                    interfaces=ifaces_of.get(r.id, []),
                    floating_ips=fips_of.get(r.id, []),
                    world=world,
                    port_forwardings=pfs_of.get(r.id, []),
                )
            )
        except UnknownScope as exc:
            unbuildable.append((r.id, str(exc)))
    return specs, unbuildable
