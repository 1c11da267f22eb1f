"""One packet through one router, chain by chain as ``nft.render_rules`` builds them (pure).

Kept apart from the endpoint logic (``verdict``) so that this file reads next to ``nft.py``: each
block names the chain it mirrors, and records the rule that decides as a ``Decision`` the agent can
find in the kernel and count.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from scopenet.contracts.routerspec import PortForwarding, RouterPort, RouterSpec, Scope
from scopenet.datapath import names
from scopenet.datapath.reachability.model import Decision, Hop, Model, Reason, Router, Subnet
from scopenet.datapath.render import _routes as programmed_routes


@dataclass
class Walk:
    """The packet as the rules see it, and what was found on the way."""

    family: int
    src: str
    dst: str
    reasons: list[Reason] = field(default_factory=list)
    fix: list[str] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)
    new_src: str | None = None
    new_dst: str | None = None
    decision: Decision | None = None

    def block(self, code: str, message: str, *fix: str | None) -> None:
        self.reasons.append(Reason(code, message))
        self.fix.extend(f for f in fix if f and f not in self.fix)


def families(port: RouterPort) -> set[int]:
    return {ipaddress.ip_address(a.ip_address).version for a in port.addresses}


def port_scope(port: RouterPort, family: int) -> Scope:
    return port.scope_v4 if family == 4 else port.scope_v6


def ifname(spec: RouterSpec, port: RouterPort) -> str:
    gw = spec.gateway
    if gw is not None and port.port_id == gw.port_id:
        return names.gateway_ifname(port.port_id)
    return names.internal_ifname(port.port_id)


def _gw_v4(spec: RouterSpec) -> str | None:
    gw = spec.gateway
    if gw is None:
        return None
    return next((a.ip_address for a in gw.addresses if ipaddress.ip_address(a.ip_address).version == 4), None)


def route(spec: RouterSpec, dst: str, depth: int = 0) -> RouterPort | None:
    """The egress port for ``dst`` in the router's namespace: connected subnets (longest prefix),
    then the routes ``render`` programs (extra routes, default route via the external gateway)."""
    addr = ipaddress.ip_address(dst)
    best: tuple[int, RouterPort] | None = None
    ports: list[RouterPort] = [p for p in (spec.gateway, *spec.interfaces) if p is not None]
    for p in ports:
        for a in p.addresses:
            net = ipaddress.ip_network(a.cidr, strict=False)
            if net.version == addr.version and addr in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, p)
    if best is not None or depth > 0:
        return best[1] if best else None
    for r in sorted(programmed_routes(spec), key=lambda r: -ipaddress.ip_network(r.dst).prefixlen):
        net = ipaddress.ip_network(r.dst)
        if net.version == addr.version and addr in net:
            return route(spec, r.via, depth + 1)
    return None


def _scope_name(model: Model, scope: Scope) -> str:
    return "no scope" if scope.id is None else f"scope {model.name('scope', scope.id)}"


def _subnet(model: Model, port: RouterPort, family: int) -> Subnet | None:
    for a in port.addresses:
        if ipaddress.ip_address(a.ip_address).version == family:
            return model.subnet(a.subnet_id)
    return None


def move_fix(model: Model, subnet: Subnet | None, target: Scope) -> str | None:
    """ "Move subnet-pool X into scope Y" for the pool of ``subnet`` (or onboard a pool-less subnet)."""
    if subnet is None:
        return None
    pool = model.pools.get(subnet.subnetpool_id) if subnet.subnetpool_id else None
    if target.id is None:
        if pool is None or pool.address_scope_id is None:
            return None
        cmd = f"openstack subnet pool set --no-address-scope {pool.id}"
        return f"take subnet-pool {pool.name} out of its address scope ({cmd})"
    scope = model.name("scope", target.id)
    if pool is None:
        name = subnet.name or subnet.id
        return f"onboard subnet {name} into a subnet pool of scope {scope} (openstack network onboard subnets)"
    cmd = f"openstack subnet pool set --address-scope {target.id} {pool.id}"
    return f"move subnet-pool {pool.name} into scope {scope} ({cmd})"


def _pf_match(pfs: list[PortForwarding], protocol: str, port: int | None) -> PortForwarding | None:
    for p in pfs:
        if p.protocol == protocol and port is not None and p.external_port_start <= port <= p.external_port_end:
            return p
    return None


def through(
    model: Model,
    router: Router,
    ingress: RouterPort,
    w: Walk,
    *,
    protocol: str,
    destination_port: int | None,
) -> RouterPort | None:
    """Follow the packet entering ``router`` by ``ingress``; returns the egress port (None: no route)."""
    spec, fam = router.spec, w.family
    rname = router.name or str(spec.router_id)
    w.hops.append(Hop("router", spec.router_id, router.name))
    if not spec.admin_state_up:
        w.block(
            "ROUTER_DOWN",
            f"router {rname} is administratively down: its namespace does not exist",
            f"openstack router set --enable {spec.router_id}",
        )
    if not spec.agent_id:
        w.block("ROUTER_UNSCHEDULED", f"no L3 agent hosts router {rname}", "start an L3 agent")
    gw = spec.gateway
    qg = names.gateway_ifname(gw.port_id) if gw else None
    in_dev = ifname(spec, ingress)
    scope = port_scope(ingress, fam)  # chain scope_mark
    gw_v4 = _gw_v4(spec)
    nat_rules = fam == 4 and gw is not None and gw_v4 is not None
    ext_scope = gw.scope_v4 if gw else Scope()
    ext_mark = names.scope_mark(ext_scope)
    snat = gw is not None and gw.enable_snat and gw_v4 is not None

    def decide(
        chain: str, *contains: str, outcome: str, excludes: tuple[str, ...] = (), counter: str | None = None
    ) -> None:
        w.decision = Decision(spec.router_id, spec.agent_id, chain, contains, excludes, counter, outcome)  # type: ignore[arg-type]

    # chains floatingip (re-mark) and nat_prerouting (DNAT): any ingress, IPv4, with a gateway.
    dst = w.dst
    dnat_rule: tuple[str, ...] = ()
    if nat_rules:
        fip = next((f for f in spec.floating_ips if f.floating_ip_address == dst), None)
        pfs = [p for p in spec.port_forwardings if p.floating_ip_address == dst]
        if fip is not None:
            if names.scope_mark(fip.fixed_scope) != ext_mark:
                scope = fip.fixed_scope
            dst, dnat_rule = (
                fip.fixed_ip_address,
                (f"ip daddr {fip.floating_ip_address} ", f"dnat ip to {fip.fixed_ip_address}"),
            )
        elif pfs:
            pf = _pf_match(pfs, protocol, destination_port)
            if pf is None:
                forwarded = ", ".join(f"{p.protocol}/{p.external_port_start}-{p.external_port_end}" for p in pfs)
                w.block(
                    "NOT_FORWARDED",
                    f"{dst} forwards only {forwarded}; {protocol}/{destination_port or 'any'} reaches the router",
                    f"openstack floating ip port forwarding create --protocol {protocol} ... {dst}",
                )
                return None
            if names.scope_mark(pf.internal_scope) != ext_mark:
                scope = pf.internal_scope
            dst = pf.internal_ip_address
            dnat_rule = (f"ip daddr {pf.floating_ip_address} ", f"l4proto {pf.protocol}", f"dnat ip to {dst}")
    if dnat_rule:
        w.new_dst = dst

    egress = route(spec, dst)
    if egress is None:
        if gw is None:
            w.block(
                "NO_EXTERNAL_GATEWAY",
                f"router {rname} has no external gateway, so nothing leads to {dst}",
                f"openstack router set --external-gateway <external network> {spec.router_id}",
            )
        else:
            w.block("NO_ROUTE", f"router {rname} has no IPv{fam} route to {dst}")
        return None
    out_dev = ifname(spec, egress)
    net = model.networks.get(egress.network_id)
    w.hops.append(Hop("external_network" if out_dev == qg else "network", egress.network_id, net.name if net else ""))

    # chain float_snat_mangle: a fixed address with a floating IP leaves into the external scope.
    if nat_rules and out_dev and 4 in families(egress) and names.scope_mark(egress.scope_v4) == ext_mark:
        if any(f.fixed_ip_address == w.src and names.scope_mark(f.fixed_scope) != ext_mark for f in spec.floating_ips):
            scope = ext_scope

    # chain scope_filter: leave only with the egress interface's scope (IPv4 by the gateway: NATed instead).
    other = f"meta nfproto ipv{10 - fam}"
    if not (out_dev == qg and fam == 4 and snat):
        want = port_scope(egress, fam)
        oif, counter = f'oifname "{out_dev}"', f"drop_{out_dev}"
        if names.scope_mark(scope) != names.scope_mark(want):
            _blocked(model, router, ingress, egress, scope, want, w, is_gw=out_dev == qg)
            decide("scope_filter", oif, outcome="drop", excludes=(other,), counter=counter)
            return egress
        decide("scope_filter", oif, outcome="pass", excludes=(other,), counter=counter)
    if in_dev == qg and not dnat_rule and model.announced is not None:
        sub = _subnet(model, egress, fam)
        if sub is not None and sub.cidr not in model.announced:
            w.reasons.append(
                Reason(
                    "NOT_ANNOUNCED",
                    f"no BGP speaker announces {sub.cidr}: the external side needs a static route to it",
                    False,
                )
            )
    if not nat_rules:
        return egress

    # chains nat_postrouting, l3_snat, float_snat.
    if dnat_rule:
        decide("nat_prerouting", *dnat_rule, outcome="dnat")
    if in_dev != qg and out_dev != qg and not dnat_rule:
        decide("nat_postrouting", f'iifname != "{qg}"', "accept", outcome="accept")
        return egress
    fip_src = next((f for f in spec.floating_ips if f.fixed_ip_address == w.src), None)
    if fip_src is not None:
        w.new_src = fip_src.floating_ip_address
        decide("float_snat", f"ip saddr {w.src} ", f"snat ip to {fip_src.floating_ip_address}", outcome="snat")
    elif snat and ext_scope.id is not None and out_dev == qg and names.scope_mark(scope) == ext_mark:
        decide("l3_snat", f'oifname "{qg}"', "ct mark", "accept", outcome="accept")
    elif snat and out_dev == qg:
        w.new_src = gw_v4
        decide("l3_snat", f'oifname "{qg}"', f"snat ip to {gw_v4}", outcome="snat")
    elif in_dev != qg and dnat_rule:
        w.new_src = gw_v4
        decide("l3_snat", "ct status dnat", f"snat ip to {gw_v4}", outcome="snat")
    return egress


def _blocked(
    model: Model,
    router: Router,
    ingress: RouterPort,
    egress: RouterPort,
    scope: Scope,
    want: Scope,
    w: Walk,
    *,
    is_gw: bool,
) -> None:
    fam, spec = w.family, router.spec
    rname = router.name or str(spec.router_id)
    net = model.name("network", egress.network_id) or str(egress.network_id)
    src_sub, dst_sub = _subnet(model, ingress, fam), _subnet(model, egress, fam)
    if is_gw and fam == 6 and scope.id is None:
        w.block(
            "UNSCOPED_NO_NAT66",
            f"IPv6 is never NATed, and the source has no address scope: only {_scope_name(model, want)} "
            f"may leave by router {rname}'s gateway",
            move_fix(model, src_sub, want),
        )
        return
    if is_gw and fam == 4 and spec.gateway is not None and not spec.gateway.enable_snat:
        w.block(
            "SNAT_DISABLED",
            f"SNAT is off on router {rname}, so only {_scope_name(model, want)} may leave by its gateway "
            f"and the packet is in {_scope_name(model, scope)}",
            f"openstack router set --external-gateway {spec.gateway.network_id} --enable-snat {spec.router_id}",
            move_fix(model, src_sub, want),
        )
        return
    ingress_is_gw = spec.gateway is not None and ingress.port_id == spec.gateway.port_id
    fixes = [move_fix(model, src_sub, want)] if not ingress_is_gw else []
    fixes.append(move_fix(model, dst_sub, scope))
    if ingress_is_gw and fam == 4 and w.new_dst is None:
        port = model.port_by_ip(w.dst)
        fixes.append(f"associate a floating IP with port {port.name or port.id}" if port else None)
    w.block(
        "SCOPE_MISMATCH",
        f"router {rname} drops it: the packet is in {_scope_name(model, scope)} and network {net} is in "
        f"{_scope_name(model, want)} for IPv{fam}; scopes never route into each other without NAT",
        *fixes,
    )
