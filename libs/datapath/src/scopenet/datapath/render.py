"""RouterSpec → RouterState: the complete kernel state one router should have (pure).

A router that is not present, or is administratively down, has no kernel state at all (Neutron's
legacy agent removes the namespace of a router that is set down), so ``desired_state`` returns None.
On a host with an underlay every bridge the router uses also has its VXLAN device (``network_vxlan``,
which the instance plug tool uses too, so both make the same device).
"""

from __future__ import annotations

import ipaddress

from scopenet.contracts.routerspec import RouterPort, RouterSpec
from scopenet.datapath import names, nft
from scopenet.datapath.model import Address, Route, RouterState, Underlay, Veth, Vxlan

#: Inside every router namespace. DAD is off because the addresses come from IPAM (unique by
#: construction) and a tentative address would black-hole traffic for 1-2 s after every change.
#: ARP as Neutron's ``Namespace.create`` sets it: answer only for addresses of the receiving
#: interface (``arp_ignore=1``) and announce the best local one (``arp_announce=2``). A router has
#: several ports on one network (one per IPv4 subnet, another for IPv6); with Linux's defaults every
#: port answers ARP for every address, an instance may send its IPv4 through the IPv6 port, which
#: has no IPv4 scope mark, and the reply is then dropped by the scope filter.
ROUTER_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv6/conf/all/forwarding", "1"),
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv4/conf/all/arp_ignore", "1"),
    ("net/ipv4/conf/all/arp_announce", "2"),
)


def _veth(ifname: str, port: RouterPort) -> Veth:
    return Veth(
        name=ifname,
        peer=names.peer_ifname(port.port_id),
        bridge=names.bridge(port.segmentation_id),
        mac=port.mac_address.lower(),
        mtu=port.mtu,
    )


def _addresses(ifname: str, port: RouterPort) -> set[Address]:
    return {Address(ifname, str(ipaddress.ip_interface(f"{a.ip_address}/{a.prefixlen}"))) for a in port.addresses}


def _routes(spec: RouterSpec) -> set[Route]:
    """Default routes via the external subnets' gateways (one per family), then the extra routes,
    which win over a default route to the same destination.

    An extra route is programmed only when its next hop is on a subnet of one of the router's ports:
    the packets taking it then leave by that port, and its scope filter (keyed on the egress
    interface) judges them as any other packet leaving there — a route cannot lead out of an
    interface the rules do not know. One whose next hop is on no port (its subnet left with the
    gateway), or is the router's own address, is left out rather than refused by the kernel, which
    would fail the whole router; one whose destination is a connected subnet is left out too, since
    ``replace`` would overwrite the connected route (IPv4) and take the subnet from its own
    interface. Several next hops for one destination: the first listed is programmed (no ECMP)."""
    by_dst: dict[str, str] = {}
    if spec.gateway is not None:
        for a in spec.gateway.addresses:
            if a.gateway_ip:
                dst = "0.0.0.0/0" if ipaddress.ip_address(a.gateway_ip).version == 4 else "::/0"
                by_dst.setdefault(dst, str(ipaddress.ip_address(a.gateway_ip)))
    ports = [p for p in (spec.gateway, *spec.interfaces) if p is not None]
    connected = {ipaddress.ip_network(a.cidr, strict=False) for p in ports for a in p.addresses}
    own = {ipaddress.ip_address(a.ip_address) for p in ports for a in p.addresses}
    extra: dict[str, str] = {}
    for r in spec.routes:
        net, hop = ipaddress.ip_network(r.destination, strict=False), ipaddress.ip_address(r.nexthop)
        reachable = hop not in own and any(hop in c for c in connected if c.version == hop.version)
        if net in connected or not reachable:
            continue
        extra.setdefault(str(net), str(hop))
    by_dst.update(extra)
    return {Route(dst, via) for dst, via in by_dst.items()}


def network_vxlan(segmentation_id: int, underlay: Underlay) -> Vxlan:
    """The VXLAN device of the network with this segmentation id (its VNI) on the bridge it spans."""
    return Vxlan(
        name=names.vxlan(segmentation_id),
        bridge=names.bridge(segmentation_id),
        vni=segmentation_id,
        local_ip=underlay.local_ip,
        group=underlay.group,
        port=underlay.port,
    )


def desired_state(
    spec: RouterSpec, *, owner: str, nft_fingerprint: str | None = None, underlay: Underlay | None = None
) -> RouterState | None:
    if not spec.present or not spec.admin_state_up:
        return None
    veths: list[Veth] = []
    addresses: set[Address] = set()
    segments = {p.segmentation_id for p in (spec.gateway, *spec.interfaces) if p is not None}
    for port in spec.interfaces:
        ifname = names.internal_ifname(port.port_id)
        veths.append(_veth(ifname, port))
        addresses |= _addresses(ifname, port)
    if spec.gateway is not None:
        qg = names.gateway_ifname(spec.gateway.port_id)
        veths.append(_veth(qg, spec.gateway))
        addresses |= _addresses(qg, spec.gateway)
        # Floating IPs live on the gateway as /32s, so the router answers ARP for them (Neutron).
        addresses |= {Address(qg, f"{f.floating_ip_address}/32") for f in spec.floating_ips}
        addresses |= {Address(qg, f"{p.floating_ip_address}/32") for p in spec.port_forwardings}
    return RouterState(
        router_id=str(spec.router_id),
        namespace=names.namespace(spec.router_id),
        veths=tuple(veths),
        addresses=frozenset(addresses),
        routes=frozenset(_routes(spec)),
        sysctls=ROUTER_SYSCTLS,
        nft=nft.render(spec, owner=owner),
        nft_fingerprint=nft_fingerprint,
        vxlans=tuple(network_vxlan(seg, underlay) for seg in sorted(segments)) if underlay else (),
    )
