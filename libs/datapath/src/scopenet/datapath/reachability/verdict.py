"""Which router a packet meets, and the verdict (pure): resolve the path, then ``walk.through``.

Mirrors the kernel, not the API: the model's RouterSpecs are what the agents render into nftables
(docs/datapath.md#the-rules), so a verdict here is what the rules do to the first packet of a
connection; replies ride the connmark the rules keep for them. Every blocker found is kept, not
only the first, so a reader sees all that must change.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from scopenet.contracts.routerspec import RouterPort
from scopenet.datapath.reachability.model import Endpoint, Explanation, Hop, Model, Reason, Router, Verdict
from scopenet.datapath.reachability.walk import Walk, families, through

#: Reasons that mean "no path at all" rather than "a rule drops it".
NO_ROUTE_CODES = frozenset(
    {
        "NO_ADDRESS",
        "NO_ROUTER_INTERFACE",
        "NO_EXTERNAL_GATEWAY",
        "ROUTER_DOWN",
        "ROUTER_UNSCHEDULED",
        "DIFFERENT_ROUTERS",
        "NO_ROUTE",
        "NOT_FORWARDED",
    }
)


def edge_verdict(
    *,
    family: int,
    ingress_scope: UUID | None,
    egress_scope: UUID | None = None,
    egress: str = "interface",
    snat: bool = True,
    external_scope: UUID | None = None,
) -> Verdict:
    """One router crossing between two scopes, with no floating IP involved: a scope map's edge.

    ``egress="gateway"``: leaving by the external gateway, whose scope is ``external_scope``."""
    if egress == "gateway":
        if family == 4 and snat:
            return "routed" if external_scope is not None and ingress_scope == external_scope else "snat"
        return "routed" if ingress_scope == external_scope else "dropped"
    return "routed" if ingress_scope == egress_scope else "dropped"


def _attached(model: Model, ep: Endpoint, family: int) -> list[tuple[Router, RouterPort]]:
    """The router ports a packet from this endpoint can enter by (the world: any gateway)."""
    if ep.network_id is None:
        return [(r, r.spec.gateway) for r in model.routers if r.spec.gateway and family in families(r.spec.gateway)]
    out: list[tuple[Router, RouterPort]] = []
    for r, is_gw in model.routers_on(ep.network_id):
        ports: Iterable[RouterPort | None] = (
            [r.spec.gateway] if is_gw else [i for i in r.spec.interfaces if i.network_id == ep.network_id]
        )
        out += [(r, p) for p in ports if p is not None and family in families(p)]
    return out


def _owns(model: Model, r: Router, dst_ip: str, dst: Endpoint) -> bool:
    spec = r.spec
    floating = [f.floating_ip_address for f in spec.floating_ips] + [
        p.floating_ip_address for p in spec.port_forwardings
    ]
    if dst_ip in floating:
        return True
    return dst.network_id is not None and any(i.network_id == dst.network_id for i in spec.interfaces)


def _choose(model: Model, src: Endpoint, dst: Endpoint, w: Walk) -> tuple[Router, RouterPort] | None:
    """The source subnet's gateway's router; from the external side, the router holding the
    destination (a connected subnet or a floating address)."""
    candidates = _attached(model, src, w.family)
    if src.network_id is not None:
        subnet = model.subnet_of(w.src, src.network_id)
        gw_ip = subnet.gateway_ip if subnet else None
        for r, p in candidates:
            if gw_ip and any(a.ip_address == gw_ip for a in p.addresses):
                return r, p
    for r, p in candidates:
        if _owns(model, r, w.dst, dst):
            return r, p
    for r, p in candidates:
        if p is not r.spec.gateway:
            return r, p
    return None


def _endpoint_hops(ep: Endpoint, address: str) -> list[Hop]:
    if ep.kind == "port" and ep.port is not None:
        return [Hop("port", ep.port.id, ep.port.name)]
    if ep.kind == "external":
        return [Hop("external", None, address)]
    return []


def _net_hop(model: Model, network_id: UUID) -> Hop:
    net = model.networks.get(network_id)
    return Hop("external_network" if net and net.external else "network", network_id, net.name if net else "")


def _is_floating(model: Model, ip: str) -> bool:
    return any(
        ip
        in {f.floating_ip_address for f in r.spec.floating_ips}
        | {p.floating_ip_address for p in r.spec.port_forwardings}
        for r in model.routers
    )


def pick_family(source: Endpoint, destination: Endpoint) -> int:
    for fam in (4, 6):
        if source.address(fam) and destination.address(fam):
            return fam
    return 4 if source.address(4) or destination.address(4) else 6


def explain(
    model: Model,
    source: Endpoint,
    destination: Endpoint,
    *,
    protocol: str = "udp",
    destination_port: int | None = None,
    family: int | None = None,
) -> Explanation:
    """The verdict for the first packet from ``source`` to ``destination`` (IPv4 when both have it)."""
    fam = family or pick_family(source, destination)
    src_ip, dst_ip = source.address(fam), destination.address(fam)
    if src_ip is None or dst_ip is None:
        who = "source" if src_ip is None else "destination"
        reason = Reason("NO_ADDRESS", f"the {who} has no IPv{fam} address")
        return Explanation("no_route", fam, src_ip or "", dst_ip or "", reasons=(reason,))
    w = Walk(fam, src_ip, dst_ip)
    for ep, role in ((source, "source"), (destination, "destination")):
        if ep.port is not None and not ep.port.admin_state_up:
            name = ep.port.name or ep.port.id
            w.block(
                "PORT_DOWN",
                f"the {role} port {name} is administratively down",
                f"openstack port set --enable {ep.port.id}",
            )
    w.hops += _endpoint_hops(source, src_ip)
    if source.network_id is not None:
        w.hops.append(_net_hop(model, source.network_id))
    same_network = source.network_id is not None and source.network_id == destination.network_id
    if same_network and not _is_floating(model, dst_ip):  # a floating address on it is the router's
        w.reasons.append(Reason("SAME_NETWORK", "both ends are on one network: switched directly, no router", False))
        w.hops += _endpoint_hops(destination, dst_ip)
        return _finish(w)
    if source.network_id is None and destination.network_id is None:
        w.block("NO_ROUTE", f"{src_ip} and {dst_ip} are both outside scopenet: no router is on the path")
        return _finish(w)
    chosen = _choose(model, source, destination, w)
    if chosen is None:
        _no_router(model, source, destination, w)
        w.hops += _endpoint_hops(destination, dst_ip)
        return _finish(w)
    router, ingress = chosen
    through(model, router, ingress, w, protocol=protocol, destination_port=destination_port)
    fixed = model.port_by_ip(w.new_dst) if w.new_dst else None
    w.hops += [Hop("port", fixed.id, fixed.name)] if fixed else _endpoint_hops(destination, dst_ip)
    return _finish(w)


def _no_router(model: Model, source: Endpoint, destination: Endpoint, w: Walk) -> None:
    if source.network_id is None or _is_external(model, source.network_id):
        theirs = _attached(model, destination, w.family) if destination.network_id else []
        if theirs:
            r = theirs[0][0]
            w.block(
                "NO_EXTERNAL_GATEWAY",
                f"router {r.name or r.spec.router_id} of the destination has no external gateway",
                f"openstack router set --external-gateway <external network> {r.spec.router_id}",
            )
        else:
            w.block(
                "NO_ROUTER_INTERFACE",
                "the destination's network is attached to no router",
                "openstack router add subnet <router> <the destination's subnet>",
            )
        return
    mine = {r.spec.router_id for r, _ in _attached(model, source, w.family)}
    theirs_ids = (
        {r.spec.router_id for r, _ in _attached(model, destination, w.family)} if destination.network_id else set()
    )
    net = model.name("network", source.network_id) or str(source.network_id)
    if not mine:
        w.block(
            "NO_ROUTER_INTERFACE",
            f"network {net} has no router interface for IPv{w.family}",
            f"openstack router add subnet <router> <the IPv{w.family} subnet of {net}>",
        )
    elif theirs_ids and not mine & theirs_ids:
        w.block(
            "DIFFERENT_ROUTERS",
            "the two networks are attached to different routers, and none joins them",
            "attach both subnets to one router",
        )
    else:
        w.block("NO_ROUTE", f"no router on network {net} routes to {w.dst}")


def _is_external(model: Model, network_id: UUID) -> bool:
    net = model.networks.get(network_id)
    return bool(net and net.external)


def _finish(w: Walk) -> Explanation:
    blocking = [r for r in w.reasons if r.blocking]
    verdict: Verdict
    if any(r.code in NO_ROUTE_CODES for r in blocking):
        verdict = "no_route"
    elif blocking:
        verdict = "dropped"
    elif w.new_dst is not None:
        verdict = "dnat"
    elif w.new_src is not None:
        verdict = "snat"
    else:
        verdict = "routed"
    return Explanation(
        verdict=verdict,
        family=w.family,
        source=w.src,
        destination=w.dst,
        translated_source=None if blocking else w.new_src,
        translated_destination=None if blocking else w.new_dst,
        hops=tuple(w.hops),
        reasons=tuple(w.reasons),
        fix=tuple(w.fix),
        decision=w.decision,
    )
