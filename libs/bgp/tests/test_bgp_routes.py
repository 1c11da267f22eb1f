"""What a BGP speaker announces (rule 68): only subnets in the external network's scope."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from scopenet.bgp.routes import Speaker, advertised_routes
from scopenet.contracts import routerspec as rs
from scopenet.contracts.bgp import AdvertisedRoute

U = uuid.UUID


def uid(n: int) -> U:
    return U(int=n)


EXT, OTHER_EXT, NET1, NET2 = uid(1), uid(2), uid(3), uid(4)
SCOPE4, SCOPE6, OTHER_SCOPE = uid(20), uid(21), uid(22)
N1_V6 = "2001:db8:80d2:c4d3::/64"


def addr(ip: str, cidr: str) -> rs.PortAddress:
    return rs.PortAddress(ip_address=ip, prefixlen=int(cidr.split("/")[1]), subnet_id=uuid.uuid4(), cidr=cidr)


def port(net: U, addresses: list[rs.PortAddress], s4: U | None = None, s6: U | None = None) -> dict[str, object]:
    return {
        "port_id": uuid.uuid4(),
        "mac_address": "fa:16:3e:00:00:01",
        "network_id": net,
        "segmentation_id": 7,
        "addresses": addresses,
        "scope_v4": rs.Scope(id=s4, mark_id=1025) if s4 else rs.Scope(),
        "scope_v6": rs.Scope(id=s6, mark_id=1026) if s6 else rs.Scope(),
    }


def seed_router(
    *, net2_scope4: U | None = SCOPE4, net2_scope6: U | None = SCOPE6, gw_net: U = EXT, fips: int = 0
) -> rs.RouterSpec:
    """The seed: router1's gateway .66/::66 on the scoped external network, network1 unscoped,
    network2 from the scoped pools."""
    gw = rs.Gateway(
        **port(
            gw_net,
            [addr("203.0.113.66", "203.0.113.64/26"), addr("2001:db8::66", "2001:db8::/64")],
            SCOPE4,
            SCOPE6,
        )  # type: ignore[arg-type]
    )
    net1 = rs.RouterPort(
        **port(
            NET1, [addr("198.51.100.1", "198.51.100.0/26"), addr("2001:db8:80d2:c4d3::1", "2001:db8:80d2:c4d3::/64")]
        )  # type: ignore[arg-type]
    )
    net2 = rs.RouterPort(
        **port(
            NET2,
            [addr("203.0.113.1", "203.0.113.0/26"), addr("2001:db8:a583::1", "2001:db8:a583::/64")],
            net2_scope4,
            net2_scope6,
        )  # type: ignore[arg-type]
    )
    floating = [
        rs.FloatingIp(
            id=uuid.uuid4(),
            floating_ip_address=f"203.0.113.{80 + i}",
            fixed_ip_address=f"198.51.100.{10 + i}",
            port_id=uuid.uuid4(),
        )
        for i in range(fips)
    ]
    return rs.RouterSpec(
        router_id=uuid.uuid4(), revision=1, agent_id="a", gateway=gw, interfaces=[net1, net2], floating_ips=floating
    )


def route(dest: str, hop: str) -> AdvertisedRoute:
    return AdvertisedRoute(destination=dest, next_hop=hop)


def test_seed_v4_announces_only_the_scoped_subnet_via_the_gateway() -> None:
    got = advertised_routes(Speaker(4), [seed_router()], {EXT: SCOPE4})
    assert got == [route("203.0.113.0/26", "203.0.113.66")]


def test_seed_v6_announces_only_the_scoped_subnet_via_the_v6_gateway() -> None:
    got = advertised_routes(Speaker(6), [seed_router()], {EXT: SCOPE6})
    assert got == [route("2001:db8:a583::/64", "2001:db8::66")]


def test_unscoped_external_network_announces_nothing() -> None:
    assert advertised_routes(Speaker(4, advertise_floating_ip_host_routes=False), [seed_router()], {EXT: None}) == []


def test_pool_leaving_the_scope_withdraws_its_subnet() -> None:
    assert advertised_routes(Speaker(4), [seed_router(net2_scope4=None)], {EXT: SCOPE4}) == []
    assert advertised_routes(Speaker(4), [seed_router(net2_scope4=OTHER_SCOPE)], {EXT: SCOPE4}) == []


def test_router_on_another_external_network_contributes_nothing() -> None:
    assert advertised_routes(Speaker(4), [seed_router(gw_net=OTHER_EXT, fips=1)], {EXT: SCOPE4}) == []


def test_floating_ips_are_host_routes_only_when_asked() -> None:
    spec = seed_router(fips=2)
    with_fips = advertised_routes(Speaker(4), [spec], {EXT: SCOPE4})
    assert with_fips == [
        route("203.0.113.0/26", "203.0.113.66"),
        route("203.0.113.80/32", "203.0.113.66"),
        route("203.0.113.81/32", "203.0.113.66"),
    ]
    without = advertised_routes(Speaker(4, advertise_floating_ip_host_routes=False), [spec], {EXT: SCOPE4})
    assert without == [route("203.0.113.0/26", "203.0.113.66")]
    # Floating IPs are host routes even on an unscoped external network (they are its addresses).
    only_fips = advertised_routes(Speaker(4, advertise_tenant_networks=False), [spec], {EXT: None})
    assert [r.destination for r in only_fips] == ["203.0.113.80/32", "203.0.113.81/32"]


def test_removed_router_and_gatewayless_router_contribute_nothing() -> None:
    gone = rs.RouterSpec(router_id=uuid.uuid4(), revision=2, agent_id="a", present=False)
    no_gw = seed_router().model_copy(update={"gateway": None})
    assert advertised_routes(Speaker(4), [gone, no_gw], {EXT: SCOPE4}) == []


def test_gateway_without_an_address_of_the_family_announces_nothing_of_it() -> None:
    spec = seed_router()
    assert spec.gateway is not None
    v4_only = spec.model_copy(
        update={"gateway": spec.gateway.model_copy(update={"addresses": spec.gateway.addresses[:1]})}
    )
    assert advertised_routes(Speaker(6), [v4_only], {EXT: SCOPE6}) == []
    assert advertised_routes(Speaker(4), [v4_only], {EXT: SCOPE4}) == [route("203.0.113.0/26", "203.0.113.66")]


scopes = st.sampled_from([None, SCOPE4, SCOPE6, OTHER_SCOPE])


@settings(max_examples=150, deadline=None)
@given(
    ext=scopes,
    net2_s4=scopes,
    net2_s6=scopes,
    version=st.sampled_from([4, 6]),
    tenant=st.booleans(),
    fips=st.integers(0, 3),
)
def test_property_every_announced_prefix_is_in_the_external_scope(
    ext: U | None, net2_s4: U | None, net2_s6: U | None, version: int, tenant: bool, fips: int
) -> None:
    spec = seed_router(net2_scope4=net2_s4, net2_scope6=net2_s6, fips=fips)
    got = advertised_routes(Speaker(version, tenant, True), [spec, spec], {EXT: ext})
    assert got == sorted(set(got), key=lambda r: got.index(r))  # no duplicates
    gw_hop = "203.0.113.66" if version == 4 else "2001:db8::66"
    net2_scope = net2_s4 if version == 4 else net2_s6
    prefixes = {r.destination for r in got if not r.destination.endswith(("/32", "/128"))}
    expected = {"203.0.113.0/26" if version == 4 else "2001:db8:a583::/64"}
    assert prefixes == (expected if tenant and ext is not None and ext == net2_scope else set())
    assert all(r.next_hop == gw_hop for r in got)
    # network1 (unscoped) is never announced, whatever the scopes.
    assert not any(r.destination.startswith(("198.51.100.", "2001:db8:80d2:")) for r in got)
    assert len(got) - len(prefixes) == (fips if version == 4 else 0)
