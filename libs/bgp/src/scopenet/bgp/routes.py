"""The routes a BGP speaker announces, computed from RouterSpecs: pure, no I/O (docs/neutron.md#bgp-dynamic-routing).

For a speaker of one IP family bound to some external (gateway) networks:

* every tenant subnet on an interface of a router whose gateway is on one of those networks is
  announced, with next hop = that router's gateway address of the family, **only if** the
  interface's address scope (per family) equals the external network's scope; a null scope never
  matches, so unscoped subnets are never announced, nor subnets of another scope (they are neither
  reachable nor meant to be: the router's scope filter drops that traffic anyway);
* when ``advertise_floating_ip_host_routes``, every floating IP of such a router as a host route
  (/32 or /128) via the gateway address of its family.

RouterSpecs already carry, per interface and gateway, the scope of their network (a network's scope is
that of its pooled subnets, which all share a pool per family: docs/neutron.md#network-address-scopes), so a pool
leaving its scope changes the specs and thereby withdraws the subnets here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from uuid import UUID

from netaddr import IPAddress, IPNetwork

from scopenet.contracts.bgp import AdvertisedRoute
from scopenet.contracts.routerspec import RouterPort, RouterSpec, Scope


@dataclass(frozen=True)
class Speaker:
    ip_version: int
    advertise_tenant_networks: bool = True
    advertise_floating_ip_host_routes: bool = True


def _scope(port: RouterPort, ip_version: int) -> Scope:
    return port.scope_v4 if ip_version == 4 else port.scope_v6


def _gateway_address(spec: RouterSpec, ip_version: int) -> IPAddress | None:
    """The gateway's first address of the family (addresses are sorted by the spec builder)."""
    assert spec.gateway is not None
    for a in spec.gateway.addresses:
        ip = IPAddress(a.ip_address)
        if ip.version == ip_version:
            return ip
    return None


def advertised_routes(
    speaker: Speaker,
    specs: Iterable[RouterSpec],
    external_scopes: Mapping[UUID, UUID | None],
) -> list[AdvertisedRoute]:
    """The speaker's routes, sorted by prefix then next hop, without duplicates.

    ``external_scopes``: the speaker's gateway networks → their address scope for the speaker's
    IP family (None: unscoped). A router whose gateway is elsewhere contributes nothing.
    """
    v = speaker.ip_version
    found: set[tuple[IPNetwork, IPAddress]] = set()
    for spec in specs:
        if not spec.present or spec.gateway is None or spec.gateway.network_id not in external_scopes:
            continue
        next_hop = _gateway_address(spec, v)
        if next_hop is None:
            continue
        ext_scope = external_scopes[spec.gateway.network_id]
        if speaker.advertise_tenant_networks and ext_scope is not None:
            for port in spec.interfaces:
                if _scope(port, v).id != ext_scope:
                    continue
                for a in port.addresses:
                    net = IPNetwork(a.cidr)
                    if net.version == v:
                        found.add((net.cidr, next_hop))
        if speaker.advertise_floating_ip_host_routes:
            for fip in spec.floating_ips:
                ip = IPAddress(fip.floating_ip_address)
                if ip.version == v:
                    found.add((IPNetwork(f"{ip}/{32 if v == 4 else 128}"), next_hop))
    return [AdvertisedRoute(destination=str(n), next_hop=str(h)) for n, h in sorted(found)]
