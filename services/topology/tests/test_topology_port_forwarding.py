"""Port forwardings' pure rules (Neutron's ``pf_plugin`` checks) and their place in the RouterSpec."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts import routerspec as rs
from scopenet.contracts.errors import BadRequest, Conflict, DomainError
from scopenet.services.topology.portforwardings import rules
from scopenet.services.topology.specs import rules as b

U = uuid.UUID
NET1, NET2, EXT, POOL4, SCOPE4 = U(int=101), U(int=102), U(int=103), U(int=110), U(int=120)
S41, S42, SE4 = U(int=131), U(int=132), U(int=133)
GW = b.PortRow(U(int=140), EXT, "fa:16:3e:00:00:01", ((SE4, "203.0.113.66"),))
IF41 = b.PortRow(U(int=141), NET1, "fa:16:3e:00:00:02", ((S41, "198.51.100.1"),))
IF42 = b.PortRow(U(int=142), NET2, "fa:16:3e:00:00:03", ((S42, "203.0.113.1"),))
ROUTER = b.RouterRow(U(int=150), True, "agent-a", 7, True)


def world() -> b.World:
    """The seed's router1: the external network and network2 in scope A, network1 unscoped."""
    return b.World(
        networks={n: b.NetworkRow(n, seg, 1450) for n, seg in ((NET1, 94), (NET2, 81), (EXT, 7))},
        subnets=[
            b.SubnetRow(SE4, EXT, 4, "203.0.113.64/26", "203.0.113.65", POOL4),
            b.SubnetRow(S41, NET1, 4, "198.51.100.0/26", "198.51.100.1", None),
            b.SubnetRow(S42, NET2, 4, "203.0.113.0/26", "203.0.113.1", POOL4),
        ],
        pools={POOL4: (4, SCOPE4)},
        marks={SCOPE4: 1025},
    )


FIP_ID, PORT, OTHER_PORT = U(int=1), U(int=2), U(int=3)


def ports(ext: int | str, inner: int | str) -> rules.Ports:
    return rules.ports(
        external_port=ext if isinstance(ext, int) else None,
        external_range=ext if isinstance(ext, str) else None,
        internal_port=inner if isinstance(inner, int) else None,
        internal_range=inner if isinstance(inner, str) else None,
    )


@pytest.mark.parametrize(
    ("given_", "expected"),
    [("TCP", "tcp"), ("udp", "udp"), ("6", "tcp"), ("132", "sctp"), ("dccp", "dccp")],
)
def test_protocols_with_ports(given_: str, expected: str) -> None:
    assert rules.protocol(given_) == expected


@pytest.mark.parametrize("value", ["icmp", "ipv6-icmp", "1"])
def test_protocols_without_ports_are_refused_with_the_reason(value: str) -> None:
    with pytest.raises(BadRequest, match="no ports"):
        rules.protocol(value)


def test_ports_and_ranges() -> None:
    assert ports(8080, 80) == rules.Ports((8080, 8080), (80, 80))
    assert ports("5000:5010", "6000:6010") == rules.Ports((5000, 5010), (6000, 6010))
    assert ports("5000:5010", 22) == rules.Ports((5000, 5010), (22, 22))  # N to 1
    assert ports("443", "443") == rules.Ports((443, 443), (443, 443))


@pytest.mark.parametrize(
    ("ext", "inner", "words"),
    [
        ("100:110", "200:205", "N-N or 1-N"),
        (80, "80:81", "N-N or 1-N"),
        ("10:5", 80, "Invalid port range"),
        ("0:5", 80, "Invalid port range"),
        ("1:70000", 80, "Invalid port range"),
        (0, 80, "1 through 65535"),
        (None, 80, "is required"),
    ],
)
def test_bad_ports_are_named(ext: Any, inner: Any, words: str) -> None:
    with pytest.raises(DomainError, match=words) as info:
        rules.ports(
            external_port=ext if not isinstance(ext, str) else None,
            external_range=ext if isinstance(ext, str) else None,
            internal_port=inner if isinstance(inner, int) else None,
            internal_range=inner if isinstance(inner, str) else None,
        )
    assert info.value.code == 400


def test_both_a_port_and_a_range_is_refused() -> None:
    with pytest.raises(BadRequest, match="not both"):
        rules.ports(external_port=80, external_range="80:81", internal_port=80, internal_range=None)


def row(fip: U, port: U, proto: str, ext: tuple[int, int], inner: tuple[int, int], address: str = "10.0.0.5") -> Any:
    return {
        "floatingip_id": fip,
        "internal_port_id": port,
        "protocol": proto,
        "internal_ip_address": address,
        "external_port_start": ext[0],
        "external_port_end": ext[1],
        "internal_port_start": inner[0],
        "internal_port_end": inner[1],
    }


def collide(others: list[Any], want: rules.Ports, *, port: U = PORT, proto: str = "tcp") -> None:
    rules.check_collisions(others, fip_id=FIP_ID, port_id=port, address="10.0.0.5", proto=proto, want=want)


@given(st.integers(1, 200), st.integers(0, 20), st.integers(1, 200), st.integers(0, 20))
def test_external_ranges_of_one_floating_ip_and_protocol_never_overlap(a: int, la: int, c: int, lc: int) -> None:
    existing = [row(FIP_ID, OTHER_PORT, "tcp", (a, a + la), (1000, 1000))]
    overlap = a <= c + lc and c <= a + la
    try:
        collide(existing, rules.Ports((c, c + lc), (2000, 2000)))
    except BadRequest as exc:
        assert overlap and "external_port_range" in exc.message
    else:
        assert not overlap
    collide(existing, rules.Ports((c, c + lc), (2000, 2000)), proto="udp")  # another protocol: free
    other_fip = [row(U(int=9), OTHER_PORT, "tcp", (a, a + la), (1000, 1000))]
    collide(other_fip, rules.Ports((c, c + lc), (2000, 2000)))  # another floating IP: free


def test_one_internal_socket_takes_one_forwarding() -> None:
    existing = [row(U(int=9), PORT, "tcp", (8080, 8080), (80, 80))]
    with pytest.raises(BadRequest, match="internal_port_range"):
        collide(existing, rules.Ports((9090, 9090), (80, 80)))
    collide(existing, rules.Ports((9090, 9090), (81, 81)))
    collide(existing, rules.Ports((9090, 9090), (80, 80)), port=OTHER_PORT)


def test_the_internal_address_is_one_of_the_ports_ipv4_addresses() -> None:
    ips = [{"subnet_id": U(int=7), "ip_address": "10.0.0.5"}, {"subnet_id": U(int=8), "ip_address": "2001:db8::5"}]
    assert rules.internal_subnet(PORT, ips, "10.0.0.5") == U(int=7)
    with pytest.raises(BadRequest, match="not suitable"):
        rules.internal_subnet(PORT, ips, "10.0.0.6")
    with pytest.raises(BadRequest, match="not suitable"):
        rules.internal_subnet(PORT, ips, "2001:db8::5")
    with pytest.raises(BadRequest, match="IPv4 address at least"):
        rules.internal_subnet(PORT, ips[1:], "2001:db8::5")


def test_a_floating_ip_forwards_all_its_ports_or_some() -> None:
    fip = {"id": FIP_ID, "port_id": PORT, "floating_ip_address": "203.0.113.80", "floating_network_id": EXT}
    with pytest.raises(Conflict) as info:
        rules.check_fip_free(fip, port_id=PORT, address="10.0.0.5")
    assert info.value.type == "FloatingIPPortAlreadyAssociated"
    with pytest.raises(Conflict) as info:
        rules.check_port_unbound({"id": FIP_ID, "floating_ip_address": "203.0.113.80"}, port_id=PORT, address="x")
    assert info.value.type == "PortHasBindingFloatingIP"
    assert rules.fip_in_use(FIP_ID).code == 409


def test_views_show_single_ports_and_ranges_as_neutron() -> None:
    base = {"id": U(int=5), "project_id": "p", "description": ""}
    single = rules.view({**base, **row(FIP_ID, PORT, "tcp", (8080, 8080), (80, 80))})
    assert (single.external_port, single.internal_port, single.external_port_range) == (8080, 80, "8080:8080")
    ranged = rules.view({**base, **row(FIP_ID, PORT, "udp", (5000, 5010), (22, 22))})
    assert (ranged.external_port, ranged.internal_port, ranged.external_port_range) == (None, 22, "5000:5010")


def test_the_spec_carries_forwardings_with_the_internal_networks_scope() -> None:
    across = b.PfRow(U(int=50), "203.0.113.81", "tcp", (8080, 8080), "198.51.100.3", (80, 80), NET1)
    within = b.PfRow(U(int=51), "203.0.113.81", "udp", (53, 53), "203.0.113.3", (53, 53), NET2)
    spec = b.build(
        ROUTER, gateway=GW, interfaces=[IF41, IF42], floating_ips=[], world=world(), port_forwardings=[within, across]
    )
    assert [(p.protocol, p.external_port_start, p.internal_scope) for p in spec.port_forwardings] == [
        ("tcp", 8080, rs.Scope()),
        ("udp", 53, rs.Scope(id=SCOPE4, mark_id=1025)),
    ]
    assert b.networks_of(interfaces=[], gateways=[], floating_ips=[], port_forwardings=[(ROUTER.id, across)]) == {NET1}
