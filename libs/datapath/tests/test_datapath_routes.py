"""Extra routes in the desired state (pure): which ones are programmed, and that every one leads out
of an interface the scope filter knows.

The scope rules key on the egress interface, and a route's next hop decides the egress interface: so
extra routes are as safe as the filter only if each programmed route's next hop is on one of the
router's ports. The property below holds that for arbitrary routes on the seed's router1, both
scope layouts, SNAT on and off.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts.routerspec import RouterSpec, StaticRoute
from scopenet.datapath import desired_state, names, nft
from scopenet.datapath.example import GW_PORT, NET1_PORT, NET2_PORT, router1

QR1, QR2, QG = names.internal_ifname(NET1_PORT), names.internal_ifname(NET2_PORT), names.gateway_ifname(GW_PORT)


def _routes(spec: RouterSpec) -> set[tuple[str, str]]:
    state = desired_state(spec, owner="agent-1")
    assert state is not None
    return {(r.dst, r.via) for r in state.routes}


def _with(*routes: tuple[str, str]) -> RouterSpec:
    extra = [StaticRoute(destination=d, nexthop=n) for d, n in routes]
    return router1().model_copy(update={"routes": extra})


DEFAULTS = {("0.0.0.0/0", "203.0.113.65"), ("::/0", "2001:db8::65")}


def test_routes_via_each_kind_of_port_are_programmed() -> None:
    spec = _with(
        ("10.1.0.0/16", "198.51.100.10"),  # behind a host on network1 (no scope)
        ("10.2.0.0/16", "203.0.113.10"),  # behind a host on network2 (scope A)
        ("10.3.0.0/16", "203.0.113.70"),  # behind a host on the external network
        ("2001:db8:ffff::/48", "2001:db8:a583::10"),
    )
    assert _routes(spec) == DEFAULTS | {
        ("10.1.0.0/16", "198.51.100.10"),
        ("10.2.0.0/16", "203.0.113.10"),
        ("10.3.0.0/16", "203.0.113.70"),
        ("2001:db8:ffff::/48", "2001:db8:a583::10"),
    }


def test_an_extra_default_route_wins_over_the_gateway_one() -> None:
    assert _routes(_with(("0.0.0.0/0", "203.0.113.10"))) == {("0.0.0.0/0", "203.0.113.10"), ("::/0", "2001:db8::65")}


def test_routes_the_kernel_would_refuse_or_that_would_hide_a_subnet_are_left_out() -> None:
    spec = _with(
        ("10.9.0.0/16", "192.0.2.1"),  # next hop on none of the router's subnets (its gateway went, say)
        ("10.8.0.0/16", "203.0.113.1"),  # the router's own address on network2
        ("198.51.100.0/26", "203.0.113.10"),  # network1's own prefix: the connected route stays
    )
    assert _routes(spec) == DEFAULTS


def test_one_destination_with_two_next_hops_programs_the_first() -> None:
    spec = _with(("10.1.0.0/16", "198.51.100.10"), ("10.1.0.0/16", "198.51.100.11"))
    assert ("10.1.0.0/16", "198.51.100.10") in _routes(spec)
    assert ("10.1.0.0/16", "198.51.100.11") not in _routes(spec)


def test_routes_do_not_change_the_rules() -> None:
    """Nothing route-specific is needed in the ruleset: the egress-keyed filter already judges them."""
    plain = router1()
    assert nft.render_rules(_with(("10.1.0.0/16", "203.0.113.10"))) == nft.render_rules(plain)


ADDRESSES_BY_FAMILY = {
    4: [st.ip_addresses(v=4, network=n) for n in ("198.51.100.0/26", "203.0.113.0/25", "192.0.2.0/24")],
    6: [st.ip_addresses(v=6, network=n) for n in ("2001:db8:a583::/64", "2001:db8::/64", "2001:db8:80d2:c4d3::/64")],
}


@st.composite
def routes(draw: st.DrawFn) -> StaticRoute:
    family = draw(st.sampled_from([4, 6]))
    hop = draw(st.one_of(*ADDRESSES_BY_FAMILY[family]))
    base = draw(st.one_of(*ADDRESSES_BY_FAMILY[family]))
    prefixlen = draw(st.integers(min_value=0, max_value=hop.max_prefixlen))
    dst = ipaddress.ip_network(f"{base}/{prefixlen}", strict=False)
    return StaticRoute(destination=str(dst), nexthop=str(hop))


@given(
    extra=st.lists(routes(), max_size=12),
    scoped=st.booleans(),
    snat=st.booleans(),
)
def test_every_programmed_route_leaves_by_a_filtered_port(extra: list[StaticRoute], scoped: bool, snat: bool) -> None:
    spec = router1(network2_scoped=scoped, enable_snat=snat).model_copy(update={"routes": extra})
    state = desired_state(spec, owner="agent-1")
    assert state is not None
    ports = {QR1: spec.interfaces[0], QR2: spec.interfaces[1], QG: spec.gateway}
    rules = nft.render_rules(spec)
    for route in state.routes:
        via = ipaddress.ip_address(route.via)
        out = [
            name
            for name, port in ports.items()
            if port is not None and any(via in ipaddress.ip_network(a.cidr) for a in port.addresses)
        ]
        assert len(out) == 1, route  # exactly one egress port: no overlap on a router
        (dev,) = out
        family = f"ipv{via.version}"
        filtered = [line for line in rules.splitlines() if f'oifname "{dev}" meta mark !=' in line]
        covers = [f for f in filtered if "meta nfproto" not in f or family in f]
        # Only IPv4 out of the gateway with SNAT on goes unfiltered, and that is NATed (l3_snat).
        assert covers or (dev == QG and via.version == 4 and snat), (route, dev)
