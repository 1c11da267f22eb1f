"""The RouterSpec builder is pure: rows in, the spec an agent applies out (address scopes, datapath marks)."""

from __future__ import annotations

import uuid

import pytest

from scopenet.contracts import routerspec as rs
from scopenet.services.topology.specs import rules as b

U = uuid.UUID


def uid(n: int) -> U:
    return U(int=n)


NET1, NET2, EXT = uid(1), uid(2), uid(3)
POOL4, POOL6, POOL_UNSCOPED = uid(10), uid(11), uid(12)
SCOPE4, SCOPE6 = uid(20), uid(21)
S41, S61, S42, S62, SE4, SE6 = (uid(30 + i) for i in range(6))


def world(**over: object) -> b.World:
    args: dict[str, object] = {
        "networks": {n: b.NetworkRow(n, seg, 1450) for n, seg in ((NET1, 94), (NET2, 81), (EXT, 7))},
        "subnets": [
            b.SubnetRow(SE4, EXT, 4, "203.0.113.64/26", "203.0.113.65", POOL4),
            b.SubnetRow(SE6, EXT, 6, "2001:db8::/64", "2001:db8::1", POOL6),
            b.SubnetRow(S41, NET1, 4, "198.51.100.0/26", "198.51.100.1", None),
            b.SubnetRow(S61, NET1, 6, "2001:db8:80d2:c4d3::/64", "2001:db8:80d2:c4d3::1", None),
            b.SubnetRow(S42, NET2, 4, "203.0.113.0/26", "203.0.113.1", POOL4),
            b.SubnetRow(S62, NET2, 6, "2001:db8:a583::/64", "2001:db8:a583::1", POOL6),
        ],
        "pools": {POOL4: (4, SCOPE4), POOL6: (6, SCOPE6), POOL_UNSCOPED: (4, None)},
        "marks": {SCOPE4: 1025, SCOPE6: 1026},
    }
    args.update(over)
    return b.World(**args)  # type: ignore[arg-type]


GW = b.PortRow(uid(100), EXT, "fa:16:3e:00:00:01", ((SE4, "203.0.113.66"), (SE6, "2001:db8::66")))
IF41 = b.PortRow(uid(101), NET1, "fa:16:3e:00:00:02", ((S41, "198.51.100.1"),))
IF42 = b.PortRow(uid(102), NET2, "fa:16:3e:00:00:03", ((S42, "203.0.113.1"), (S62, "2001:db8:a583::1")))
ROUTER = b.RouterRow(uid(200), True, "agent-a", 7, True, (("10.0.0.0/8", "198.51.100.9"),))
FIP = b.FipRow(uid(300), "203.0.113.80", "198.51.100.3", uid(400), NET1)


def test_seed_router_marks_per_interface_and_family() -> None:
    spec = b.build(ROUTER, gateway=GW, interfaces=[IF41, IF42], floating_ips=[FIP], world=world())
    assert (spec.router_id, spec.revision, spec.agent_id, spec.present) == (uid(200), 7, "agent-a", True)
    assert spec.gateway is not None and spec.gateway.enable_snat
    assert (spec.gateway.scope_v4, spec.gateway.scope_v6) == (
        rs.Scope(id=SCOPE4, mark_id=1025),
        rs.Scope(id=SCOPE6, mark_id=1026),
    )
    assert [a.ip_address for a in spec.gateway.addresses] == ["203.0.113.66", "2001:db8::66"]
    assert spec.gateway.addresses[0].prefixlen == 26 and spec.gateway.addresses[0].gateway_ip == "203.0.113.65"
    unscoped, scoped = spec.interfaces
    assert (unscoped.scope_v4, unscoped.scope_v6) == (rs.Scope(), rs.Scope())  # noscope, mark 1024
    assert unscoped.scope_v4.mark_id == rs.NOSCOPE_MARK_ID
    assert (scoped.scope_v4.id, scoped.scope_v6.id) == (SCOPE4, SCOPE6)
    assert (unscoped.segmentation_id, scoped.segmentation_id) == (94, 81)
    assert spec.floating_ips == [
        rs.FloatingIp(
            id=uid(300),
            floating_ip_address="203.0.113.80",
            fixed_ip_address="198.51.100.3",
            port_id=uid(400),
            fixed_scope=rs.Scope(),
        )
    ]
    assert spec.routes == [rs.StaticRoute(destination="10.0.0.0/8", nexthop="198.51.100.9")]


def test_port_scope_comes_from_the_network_not_the_port() -> None:
    """A v4-only router port on a dual-stack network still carries the network's v6 scope."""
    v4_only = b.PortRow(uid(103), NET2, "fa:16:3e:00:00:04", ((S42, "203.0.113.1"),))
    spec = b.build(ROUTER, gateway=None, interfaces=[v4_only], floating_ips=[], world=world())
    assert spec.interfaces[0].scope_v6.id == SCOPE6 and spec.gateway is None


def test_unscoped_pool_and_rescoped_pool() -> None:
    subnets = [b.SubnetRow(S42, NET2, 4, "203.0.113.0/26", "203.0.113.1", POOL_UNSCOPED)]
    port = b.PortRow(uid(104), NET2, "fa:16:3e:00:00:05", ((S42, "203.0.113.1"),))
    before = b.build(ROUTER, gateway=None, interfaces=[port], floating_ips=[], world=world(subnets=subnets))
    assert before.interfaces[0].scope_v4 == rs.Scope()
    moved = world(subnets=subnets, pools={POOL_UNSCOPED: (4, SCOPE4)})
    after = b.build(ROUTER, gateway=None, interfaces=[port], floating_ips=[], world=moved)
    assert after.interfaces[0].scope_v4 == rs.Scope(id=SCOPE4, mark_id=1025)


def test_floating_ip_scope_is_the_fixed_network_v4_scope() -> None:
    fip = b.FipRow(uid(301), "203.0.113.81", "203.0.113.5", uid(401), NET2)
    spec = b.build(ROUTER, gateway=GW, interfaces=[IF42], floating_ips=[fip], world=world())
    assert spec.floating_ips[0].fixed_scope == rs.Scope(id=SCOPE4, mark_id=1025)


def test_unknown_mark_is_refused_not_guessed() -> None:
    with pytest.raises(b.UnknownScope):
        b.build(ROUTER, gateway=GW, interfaces=[], floating_ips=[], world=world(marks={}))


def test_network_scopes_last_pooled_subnet_wins_and_plain_subnets_count_for_nothing() -> None:
    assert b.network_scopes(NET1, world()) == {4: None, 6: None}
    assert b.network_scopes(NET2, world()) == {4: SCOPE4, 6: SCOPE6}
    assert b.network_scopes(uid(99), world()) == {4: None, 6: None}


def test_removal_spec() -> None:
    gone = b.removal(uid(200), agent_id="agent-a", revision=9)
    assert (gone.present, gone.interfaces, gone.gateway, gone.revision) == (False, [], None, 9)


def test_build_all_groups_rows_per_router_and_sets_aside_the_unbuildable() -> None:
    other = b.RouterRow(uid(201), True, "agent-b", 2, False)
    lagging = b.RouterRow(uid(202), True, "agent-b", 3, True)
    unknown = b.SubnetRow(uid(39), uid(4), 4, "192.0.2.0/24", "192.0.2.1", uid(13))
    w = world(
        networks={**world().networks, uid(4): b.NetworkRow(uid(4), 5, 1500)},
        subnets=[*world().subnets, unknown],
        pools={**world().pools, uid(13): (4, uid(22))},
    )
    stray = b.PortRow(uid(105), uid(4), "fa:16:3e:00:00:06", ((uid(39), "192.0.2.1"),))
    second_gw = b.PortRow(uid(106), EXT, "fa:16:3e:00:00:07", ((SE4, "203.0.113.67"),))
    interfaces = [(ROUTER.id, IF41), (other.id, IF42), (ROUTER.id, IF42), (lagging.id, stray)]
    gateways = [(ROUTER.id, GW), (ROUTER.id, second_gw)]
    fips = [(ROUTER.id, FIP)]
    assert b.networks_of(interfaces=interfaces, gateways=gateways, floating_ips=fips) == {NET1, NET2, EXT, uid(4)}
    specs, unbuildable = b.build_all(
        [ROUTER, other, lagging], interfaces=interfaces, gateways=gateways, floating_ips=fips, world=w
    )
    assert [s.router_id for s in specs] == [ROUTER.id, other.id]
    mine, theirs = specs
    assert mine == b.build(ROUTER, gateway=GW, interfaces=[IF41, IF42], floating_ips=[FIP], world=w)
    assert theirs.gateway is None and [p.port_id for p in theirs.interfaces] == [IF42.id] and not theirs.floating_ips
    assert [rid for rid, _ in unbuildable] == [lagging.id]
