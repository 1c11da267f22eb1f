"""The explainer's inputs and answers (pure data), and how a ``source``/``destination`` is resolved.

The model is what a caller can see: the RouterSpecs topology would publish (they carry every scope,
gateway, SNAT flag, floating IP, port forwarding and extra route the kernel rules are rendered from)
plus the names and the subnets, pools and ports that make hops and fixes readable. ``Model`` indexes
itself once, so explaining many pairs (a scope map colours thousands of edges) costs look-ups only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from scopenet.contracts.routerspec import RouterSpec

Verdict = Literal["routed", "snat", "dnat", "dropped", "no_route"]
HopKind = Literal["port", "network", "router", "external_network", "external"]


class UnknownEndpoint(ValueError):
    """A source or destination that is neither a known port id nor an IP address."""


@dataclass(frozen=True)
class Router:
    spec: RouterSpec
    """What the agent renders; ``agent_id=""`` for a router no agent hosts yet."""
    name: str = ""


@dataclass(frozen=True)
class Network:
    id: UUID
    name: str = ""
    external: bool = False


@dataclass(frozen=True)
class Subnet:
    id: UUID
    network_id: UUID
    cidr: str
    gateway_ip: str | None = None
    subnetpool_id: UUID | None = None
    name: str = ""


@dataclass(frozen=True)
class Pool:
    id: UUID
    name: str
    ip_version: int
    address_scope_id: UUID | None = None


@dataclass(frozen=True)
class Port:
    id: UUID
    network_id: UUID
    fixed_ips: tuple[str, ...]
    name: str = ""
    admin_state_up: bool = True
    device_owner: str = ""


@dataclass(frozen=True)
class Model:
    routers: Sequence[Router]
    networks: Mapping[UUID, Network]
    subnets: Sequence[Subnet]
    pools: Mapping[UUID, Pool] = field(default_factory=dict)
    scopes: Mapping[UUID, str] = field(default_factory=dict)
    """address scope id → name"""
    ports: Sequence[Port] = ()
    announced: frozenset[str] | None = None
    """CIDRs some BGP speaker announces; None: BGP is not modelled (no NOT_ANNOUNCED reasons)."""
    _port: dict[UUID, Port] = field(init=False, repr=False, compare=False)
    _by_ip: dict[str, Port] = field(init=False, repr=False, compare=False)
    _subnet: dict[UUID, Subnet] = field(init=False, repr=False, compare=False)
    _on_network: dict[UUID, list[tuple[Router, bool]]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_port", {p.id: p for p in self.ports})
        object.__setattr__(self, "_by_ip", {_norm(ip): p for p in self.ports for ip in p.fixed_ips})
        object.__setattr__(self, "_subnet", {s.id: s for s in self.subnets})
        on: dict[UUID, list[tuple[Router, bool]]] = {}
        for r in self.routers:
            if r.spec.gateway is not None:
                on.setdefault(r.spec.gateway.network_id, []).append((r, True))
            for i in r.spec.interfaces:
                on.setdefault(i.network_id, []).append((r, False))
        object.__setattr__(self, "_on_network", on)

    def port(self, port_id: UUID) -> Port | None:
        return self._port.get(port_id)

    def port_by_ip(self, ip: str) -> Port | None:
        return self._by_ip.get(_norm(ip))

    def subnet(self, subnet_id: UUID) -> Subnet | None:
        return self._subnet.get(subnet_id)

    def subnet_of(self, ip: str, network_id: UUID | None = None) -> Subnet | None:
        addr = ipaddress.ip_address(ip)
        for s in self.subnets:
            if (network_id is None or s.network_id == network_id) and addr in ipaddress.ip_network(s.cidr):
                return s
        return None

    def routers_on(self, network_id: UUID) -> list[tuple[Router, bool]]:
        """(router, is its gateway) for every router with a port on the network."""
        return self._on_network.get(network_id, [])

    def name(self, kind: str, id_: UUID | None) -> str:
        if id_ is None:
            return ""
        if kind == "network" and id_ in self.networks:
            return self.networks[id_].name
        if kind == "port" and id_ in self._port:
            return self._port[id_].name
        if kind == "scope":
            return self.scopes.get(id_, str(id_))
        if kind == "pool" and id_ in self.pools:
            return self.pools[id_].name
        if kind == "router":
            return next((r.name for r in self.routers if r.spec.router_id == id_), "")
        return ""


@dataclass(frozen=True)
class Endpoint:
    """A resolved source or destination: a port, a host with an address on a known network (no port),
    or the world beyond the external networks (an address in no subnet)."""

    kind: Literal["port", "host", "external"]
    addresses: tuple[str, ...]
    port: Port | None = None
    network_id: UUID | None = None

    def address(self, family: int) -> str | None:
        return next((a for a in self.addresses if ipaddress.ip_address(a).version == family), None)


def _norm(ip: str) -> str:
    return str(ipaddress.ip_address(ip))


def resolve(model: Model, text: str) -> Endpoint:
    """A port id (every fixed IP of the port) or an IP address (that address only)."""
    try:
        port_id = UUID(text)
    except ValueError:
        port_id = None
    if port_id is not None:
        port = model.port(port_id)
        if port is None:
            raise UnknownEndpoint(f"port {text} not found")
        return Endpoint("port", tuple(_norm(ip) for ip in port.fixed_ips), port, port.network_id)
    try:
        ip = _norm(text)
    except ValueError:
        raise UnknownEndpoint(f"{text!r} is neither a port id nor an IP address") from None
    port = model.port_by_ip(ip)
    if port is not None:
        return Endpoint("port", (ip,), port, port.network_id)
    subnet = model.subnet_of(ip)
    if subnet is not None:
        return Endpoint("host", (ip,), None, subnet.network_id)
    return Endpoint("external", (ip,))


@dataclass(frozen=True)
class Hop:
    kind: HopKind
    id: UUID | None
    name: str


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    blocking: bool = True


@dataclass(frozen=True)
class Decision:
    """The kernel rule that decides the packet's fate, for the agent to find and count: the rule of
    ``chain`` in the router's table whose text holds every ``contains`` and no ``excludes``."""

    router_id: UUID
    agent_id: str
    chain: str
    contains: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    counter: str | None = None
    """A named counter (``drop_<ifname>``) that counts this rule's packets, if it has one."""
    outcome: Literal["drop", "accept", "snat", "dnat", "pass"] = "accept"
    """``pass``: the rule that would have dropped the packet did not match (its counter stays)."""


@dataclass(frozen=True)
class Explanation:
    verdict: Verdict
    family: int
    source: str
    destination: str
    translated_source: str | None = None
    translated_destination: str | None = None
    hops: tuple[Hop, ...] = ()
    reasons: tuple[Reason, ...] = ()
    fix: tuple[str, ...] = ()
    decision: Decision | None = None
