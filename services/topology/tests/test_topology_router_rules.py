"""Router rules without a database: overlap on a router, interface and gateway checks, removal."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, InvalidInput, NotAuthorized, NotFound
from scopenet.services.topology.routers import rules

U = uuid.UUID
ADMIN = CallContext(project_id="admin", roles=["admin"])
ALICE = CallContext(project_id="alice", roles=["member"])
BOB = CallContext(project_id="bob", roles=["member"])
R1, NET, EXT, P1 = U(int=1), U(int=2), U(int=3), U(int=4)


def uid(n: int) -> U:
    return U(int=1000 + n)


def subnet(n: int, cidr: str, **over: Any) -> dict[str, Any]:
    net = IPNetwork(cidr)
    row: dict[str, Any] = {
        "id": uid(n),
        "cidr": cidr,
        "ip_version": net.version,
        "network_id": NET,
        "project_id": "alice",
        "gateway_ip": str(net[1]),
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
        "kind": "interface",
    }
    row.update(over)
    return row


# ---------------------------------------------------------------- overlap (rule 60)


def test_overlap_refused_within_a_family() -> None:
    with pytest.raises(BadRequest, match="overlaps"):
        rules.check_overlap([subnet(1, "10.0.0.0/24")], [subnet(2, "10.0.0.128/25")])


def test_no_overlap_across_families_nor_with_itself() -> None:
    rules.check_overlap([subnet(1, "10.0.0.0/24")], [subnet(2, "::/0"), subnet(1, "10.0.0.0/24")])


prefixes = st.builds(
    lambda a, p: IPNetwork(f"10.{a >> 8 & 255}.{a & 255}.0/{p}").cidr, st.integers(0, 0xFFFF), st.integers(8, 24)
)


@given(prefixes, st.lists(prefixes, max_size=6))
def test_overlap_exactly_when_ranges_meet(new: IPNetwork, attached: list[IPNetwork]) -> None:
    rows = [subnet(i + 2, str(c)) for i, c in enumerate(attached)]
    meets = any(new.first <= c.last and c.first <= new.last for c in attached)
    if meets:
        with pytest.raises(BadRequest):
            rules.check_overlap([subnet(1, str(new))], rows)
    else:
        rules.check_overlap([subnet(1, str(new))], rows)


# ---------------------------------------------------------------- the router


def test_router_visible_to_owner_and_admin_only() -> None:
    row = {"project_id": "alice"}
    assert rules.check_router(ALICE, row, R1, "update") is row
    assert rules.check_router(ADMIN, row, R1, "update") is row
    with pytest.raises(NotFound):
        rules.check_router(BOB, row, R1, "update")
    with pytest.raises(NotFound):
        rules.check_router(ADMIN, None, R1, "update")


def test_gateway_policy_snat_and_fixed_ips_are_admin_only() -> None:
    rules.gateway_policy(ALICE, t.ExternalGatewayInfoRequest(network_id=EXT), "create_router")
    with pytest.raises(NotAuthorized):
        rules.gateway_policy(ALICE, t.ExternalGatewayInfoRequest(network_id=EXT, enable_snat=True), "create_router")
    with pytest.raises(NotAuthorized):
        rules.gateway_policy(
            ALICE, t.ExternalGatewayInfoRequest(network_id=EXT, external_fixed_ips=[]), "update_router"
        )
    rules.gateway_policy(ADMIN, t.ExternalGatewayInfoRequest(network_id=EXT, enable_snat=False), "create_router")


def test_gateway_moves() -> None:
    current = t.ExternalGatewayInfo(network_id=EXT, enable_snat=True, external_fixed_ips=[])
    assert rules.gateway_moves(None, current)
    assert rules.gateway_moves(t.ExternalGatewayInfoRequest(network_id=EXT), None)
    assert rules.gateway_moves(t.ExternalGatewayInfoRequest(network_id=NET), current)
    assert not rules.gateway_moves(t.ExternalGatewayInfoRequest(network_id=EXT), current)


def test_nexthops_must_be_on_an_attached_subnet() -> None:
    rules.check_nexthops([{"destination": "0.0.0.0/0", "nexthop": "10.0.0.9"}], ["10.0.0.0/24"])
    with pytest.raises(BadRequest) as err:
        rules.check_nexthops([{"destination": "0.0.0.0/0", "nexthop": "10.9.0.9"}], ["10.0.0.0/24"])
    assert err.value.type == "InvalidRoutes"
    with pytest.raises(InvalidInput):
        rules.check_nexthops([{"destination": "0.0.0.0/0", "nexthop": "nope"}], ["10.0.0.0/24"])


def test_in_use_and_fip_guards() -> None:
    rules.check_unused(R1, 0)
    with pytest.raises(Conflict, match="still has ports"):
        rules.check_unused(R1, 2)
    rules.check_no_fips(R1, None)
    with pytest.raises(Conflict) as err:
        rules.check_no_fips(R1, uid(9))
    assert err.value.type == "RouterExternalGatewayInUseByFloatingIp"


# ---------------------------------------------------------------- adding an interface


def test_exactly_one_of_subnet_or_port() -> None:
    rules.check_one_of(uid(1), None)
    rules.check_one_of(None, P1)
    for both in ((None, None), (uid(1), P1)):
        with pytest.raises(BadRequest):
            rules.check_one_of(*both)


def test_subnet_interface_checks() -> None:
    rules.check_subnet_interface(subnet(1, "10.0.0.0/24"), [subnet(2, "10.1.0.0/24")])
    with pytest.raises(BadRequest, match="does not have a gateway IP"):
        rules.check_subnet_interface(subnet(1, "10.0.0.0/24", gateway_ip=None), [])
    with pytest.raises(BadRequest, match="receive RAs"):
        rules.check_subnet_interface(subnet(1, "2001:db8::/64", ipv6_address_mode="slaac"), [])
    rules.check_subnet_interface(subnet(1, "2001:db8::/64", ipv6_address_mode="slaac", ipv6_ra_mode="slaac"), [])
    with pytest.raises(BadRequest, match="already has a port"):
        rules.check_subnet_interface(subnet(1, "10.0.0.0/24"), [subnet(1, "10.0.0.0/24")])
    # Its own network's gateway side is not "already attached": only the overlap check applies.
    with pytest.raises(BadRequest, match="overlaps"):
        rules.check_subnet_interface(subnet(1, "10.0.0.0/24"), [subnet(2, "10.0.0.0/16", kind="gateway")])


def test_another_projects_subnet_needs_sharing_by_name() -> None:
    assert rules.owns(ALICE, subnet(1, "10.0.0.0/24"))
    assert not rules.owns(BOB, subnet(1, "10.0.0.0/24"))
    rules.check_subnet_shared(BOB, uid(1), {"bob"})
    with pytest.raises(BadRequest, match="not shared"):
        rules.check_subnet_shared(BOB, uid(1), {"carol"})


def port(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": P1, "network_id": NET, "project_id": "alice", "net_owner": "alice", "device_id": ""}
    row.update(over)
    return row


def ip(n: int, address: str, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "port_id": P1,
        "subnet_id": uid(n),
        "ip_address": address,
        "ip_version": IPNetwork(address).version,
        "subnet_owner": "alice",
        "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.20"}],
        "ipam_held": True,
    }
    row.update(over)
    return row


def port_check(ctx: CallContext = ALICE, **over: Any) -> None:
    args: dict[str, Any] = {
        "port": port(),
        "service_owned": False,
        "ips": [ip(1, "10.0.0.5")],
        "attached": [],
        "v6_taken": False,
        "network_subnets": [subnet(1, "10.0.0.0/24")],
    }
    args.update(over)
    rules.check_port_interface(ctx, **args)


def test_port_interface_accepted() -> None:
    port_check()


@pytest.mark.parametrize(
    ("over", "error", "text"),
    [
        ({"port": port(device_id="vm1")}, Conflict, "attached device"),
        ({"service_owned": True}, Conflict, "attached device"),
        ({"ips": []}, BadRequest, "at least one fixed IP"),
        ({"ips": [ip(1, "10.0.0.5"), ip(2, "10.0.1.5")]}, BadRequest, "multiple IPv4 subnets"),
        ({"attached": [subnet(1, "10.0.0.0/24")]}, BadRequest, "already has a port"),
        ({"ips": [ip(3, "2001:db8::5")], "v6_taken": True}, BadRequest, "multiple IPv6 ports"),
        ({"attached": [subnet(7, "10.0.0.0/16")]}, BadRequest, "overlaps"),
        ({"ips": [ip(1, "10.0.0.5", subnet_owner="bob")]}, BadRequest, "outside the allocation pools"),
    ],
)
def test_port_interface_refusals(over: dict[str, Any], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        port_check(**over)


def test_admin_may_use_an_address_outside_the_pools() -> None:
    port_check(ADMIN, ips=[ip(1, "10.0.0.5", subnet_owner="bob")])
    port_check(ips=[ip(1, "10.0.0.15", subnet_owner="bob")])


def test_port_visibility() -> None:
    assert rules.check_port_visible(BOB, port(net_owner="bob"), P1)["id"] == P1
    with pytest.raises(NotFound):
        rules.check_port_visible(BOB, port(), P1)
    with pytest.raises(NotFound):
        rules.check_port_visible(ADMIN, None, P1)


# ---------------------------------------------------------------- removing an interface

P2 = U(int=5)


def test_interface_to_remove_by_subnet_and_by_port() -> None:
    ports = [{"id": P1}, {"id": P2}]
    ips = [ip(1, "2001:db8::1"), ip(2, "2001:db8:1::1"), ip(3, "10.0.0.1", port_id=P2)]
    assert rules.interface_to_remove(R1, subnet_id=uid(2), port_id=None, ports=ports, ips=ips) == (P1, [ips[1]])
    assert rules.interface_to_remove(R1, subnet_id=None, port_id=P1, ports=ports, ips=ips) == (P1, ips[:2])
    with pytest.raises(NotFound) as err:
        rules.interface_to_remove(R1, subnet_id=uid(9), port_id=None, ports=ports, ips=ips)
    assert err.value.type == "RouterInterfaceNotFoundForSubnet"
    with pytest.raises(NotFound) as err:
        rules.interface_to_remove(R1, subnet_id=None, port_id=uid(9), ports=ports, ips=ips)
    assert err.value.type == "RouterInterfaceNotFound"


def test_interface_in_use_stays() -> None:
    rules.check_interface_unused(R1, cidrs=["10.0.0.0/24"], fips=[{"id": uid(1), "fixed_ip_address": None}], routes=[])
    with pytest.raises(Conflict) as err:
        rules.check_interface_unused(
            R1, cidrs=["10.0.0.0/24"], fips=[{"id": uid(1), "fixed_ip_address": "10.0.0.7"}], routes=[]
        )
    assert err.value.type == "RouterInterfaceInUseByFloatingIP"
    with pytest.raises(Conflict) as err:
        rules.check_interface_unused(
            R1, cidrs=["10.0.0.0/24"], fips=[], routes=[{"destination": "0.0.0.0/0", "nexthop": "10.0.0.254"}]
        )
    assert err.value.type == "RouterInterfaceInUseByRoute"


def test_removal_kind() -> None:
    held, gateway = ip(1, "2001:db8::5"), ip(2, "2001:db8:1::1", ipam_held=False)
    assert rules.removal_kind(P1, ips=[held, gateway], gone=[gateway]) == "shrink"
    assert rules.removal_kind(P1, ips=[held], gone=[held]) == "saga"
    assert rules.removal_kind(P1, ips=[gateway], gone=[gateway]) == "drop"


# ---------------------------------------------------------------- the gateway (rule 59)

EXT_NET = {"id": EXT, "router_external": True}
EXT4 = subnet(40, "203.0.113.0/24", network_id=EXT, kind="gateway")
EXT4B = subnet(41, "198.51.100.0/24", network_id=EXT, kind="gateway")
EXT6 = subnet(60, "2001:db8:e::/64", network_id=EXT, kind="gateway")


def wants(gw: t.ExternalGatewayInfoRequest, **over: Any) -> list[Any]:
    args: dict[str, Any] = {"network": EXT_NET, "subnets": [EXT4, EXT4B, EXT6], "attached": []}
    args.update(over)
    return rules.gateway_wants(gw, **args)


def test_gateway_takes_one_address_per_family_by_default() -> None:
    got = wants(t.ExternalGatewayInfoRequest(network_id=EXT))
    assert [(w.subnet_id, w.ip, w.candidates) for w in got] == [
        (EXT4["id"], None, (EXT4B["id"],)),
        (EXT6["id"], None, ()),
    ]


def test_gateway_explicit_addresses() -> None:
    fixed = [t.FixedIpRequest(ip_address="198.51.100.7"), t.FixedIpRequest(subnet_id=EXT6["id"])]
    got = wants(t.ExternalGatewayInfoRequest(network_id=EXT, external_fixed_ips=fixed))
    assert [(w.subnet_id, w.ip) for w in got] == [(EXT4B["id"], "198.51.100.7"), (EXT6["id"], None)]


@pytest.mark.parametrize(
    ("gw", "over", "error", "text"),
    [
        (t.ExternalGatewayInfoRequest(network_id=EXT), {"network": None}, NotFound, "could not be found"),
        (
            t.ExternalGatewayInfoRequest(network_id=EXT),
            {"network": {"router_external": False}},
            BadRequest,
            "not an external",
        ),
        (t.ExternalGatewayInfoRequest(network_id=EXT), {"subnets": []}, BadRequest, "no subnet"),
        (
            t.ExternalGatewayInfoRequest(network_id=EXT),
            {"attached": [subnet(1, "203.0.113.128/25")]},
            BadRequest,
            "overlaps",
        ),
        (
            t.ExternalGatewayInfoRequest(network_id=EXT, external_fixed_ips=[t.FixedIpRequest(subnet_id=uid(99))]),
            {},
            InvalidInput,
            "not on external network",
        ),
        (
            t.ExternalGatewayInfoRequest(network_id=EXT, external_fixed_ips=[t.FixedIpRequest(ip_address="192.0.2.1")]),
            {},
            BadRequest,
            "not a valid IP",
        ),
        (
            t.ExternalGatewayInfoRequest(network_id=EXT, external_fixed_ips=[t.FixedIpRequest()]),
            {},
            InvalidInput,
            "subnet_id or an ip_address",
        ),
        (
            t.ExternalGatewayInfoRequest(
                network_id=EXT, external_fixed_ips=[t.FixedIpRequest(ip_address="203.0.113.1")]
            ),
            {},
            BadRequest,
            "is the gateway",
        ),
    ],
)
def test_gateway_refusals(
    gw: t.ExternalGatewayInfoRequest, over: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        wants(gw, **over)


def test_gateway_overlap_ignores_the_old_gateway_network() -> None:
    wants(t.ExternalGatewayInfoRequest(network_id=EXT), attached=[subnet(1, "203.0.113.0/25", kind="gateway")])
