"""Fixed-IP planning and diffing of ports (pure): which addresses a port asks IPAM for, and which of
its current addresses an update keeps."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.errors import BadRequest, DomainError, InvalidInput, NotFound
from scopenet.services.topology.ports import rules
from scopenet.services.topology.ports.rules import Want

MAC = "fa:16:3e:52:b6:9f"
NET = uuid.UUID(int=1)
MODES = (None, "slaac", "dhcpv6-stateless", "dhcpv6-stateful")


def _subnet(n: int, version: int, mode: str | None = None) -> dict[str, Any]:
    cidr = f"10.{n // 256}.{n % 256}.0/24" if version == 4 else f"2001:db8:{n:x}::/64"
    return {"id": uuid.UUID(int=1000 + n), "ip_version": version, "cidr": cidr, "ipv6_address_mode": mode}


@st.composite
def subnet_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    kinds = draw(st.lists(st.tuples(st.sampled_from((4, 6)), st.sampled_from(MODES)), max_size=8))
    return [_subnet(n, v, m if v == 6 else None) for n, (v, m) in enumerate(kinds)]


def _auto(s: dict[str, Any]) -> bool:
    return s["ipv6_address_mode"] in ("slaac", "dhcpv6-stateless")


# ---------------------------------------------------------------- no fixed_ips given


@given(subnet_lists(), st.booleans())
def test_default_plan_takes_one_address_per_family_and_slaac_everywhere(
    subnets: list[dict[str, Any]], router_port: bool
) -> None:
    plan = rules.default_plan(subnets, router_port=router_port)
    v4 = [s["id"] for s in subnets if s["ip_version"] == 4]
    v6 = [s["id"] for s in subnets if s["ip_version"] == 6 and not _auto(s)]
    expected = [Want(f[0], candidates=tuple(f[1:])) for f in (v4, v6) if f]
    assert list(plan.wants) == expected
    assert all(w.ip is None for w in plan.wants)
    auto = [s["id"] for s in subnets if s["ip_version"] == 6 and _auto(s)]
    assert list(plan.eui64) == ([] if router_port else auto)
    resolved = plan.resolve(MAC, {s["id"]: s for s in subnets})
    assert resolved[: len(expected)] == expected
    for w in resolved[len(expected) :]:  # the SLAAC address of the MAC, inside its subnet
        cidr = next(s["cidr"] for s in subnets if s["id"] == w.subnet_id)
        assert w.ip == rules.eui64(cidr, MAC) and w.ip in IPNetwork(cidr)


# ---------------------------------------------------------------- explicit fixed_ips


@given(subnet_lists(), st.data())
def test_requested_addresses_are_planned_as_asked(subnets: list[dict[str, Any]], data: st.DataObject) -> None:
    stateful = [s for s in subnets if not _auto(s)]
    if not stateful:
        return
    picks = data.draw(st.lists(st.sampled_from(stateful), max_size=6))
    requests = []
    for i, s in enumerate(picks):
        addr = str(IPNetwork(s["cidr"])[10 + i])
        by = data.draw(st.sampled_from(("subnet", "address", "both")))
        requests.append(
            t.FixedIpRequest(
                subnet_id=None if by == "address" else s["id"], ip_address=None if by == "subnet" else addr
            )
        )
    plan = rules.requested_plan(NET, requests, subnets, mac=MAC, router_port=False)
    assert plan.eui64 == ()
    assert [(w.subnet_id, w.ip) for w in plan.wants] == [
        (s["id"], r.ip_address) for s, r in zip(picks, requests, strict=True)
    ]


@given(subnet_lists(), st.booleans())
def test_subnet_only_request_on_an_auto_subnet_is_its_slaac_address(
    subnets: list[dict[str, Any]], router_port: bool
) -> None:
    auto = [s for s in subnets if _auto(s)]
    plan = rules.requested_plan(
        NET, [t.FixedIpRequest(subnet_id=s["id"]) for s in auto], subnets, mac=MAC, router_port=router_port
    )
    if router_port:  # a router port takes an address from IPAM like on any other subnet
        assert [w.subnet_id for w in plan.wants] == [s["id"] for s in auto] and plan.eui64 == ()
    else:
        assert plan.wants == () and list(plan.eui64) == [s["id"] for s in auto]


def test_a_chosen_address_on_an_auto_subnet_must_be_the_slaac_one() -> None:
    s = _subnet(1, 6, "slaac")
    slaac = rules.eui64(s["cidr"], MAC)
    plan = rules.requested_plan(NET, [t.FixedIpRequest(ip_address=slaac)], [s], mac=MAC, router_port=False)
    assert plan.wants == (Want(s["id"], slaac),)
    with pytest.raises(BadRequest) as info:
        rules.requested_plan(NET, [t.FixedIpRequest(ip_address="2001:db8:1::5")], [s], mac=MAC, router_port=False)
    assert info.value.type == "AllocationOnAutoAddressSubnet"


def test_request_errors() -> None:
    v4 = _subnet(1, 4)
    elsewhere, unknown = uuid.UUID(int=7), uuid.UUID(int=8)
    cases: list[tuple[list[t.FixedIpRequest], list[dict[str, Any]], type[DomainError], str | None]] = [
        ([t.FixedIpRequest(subnet_id=v4["id"])], [], BadRequest, None),  # no subnets at all
        ([t.FixedIpRequest()], [v4], InvalidInput, None),
        ([t.FixedIpRequest(ip_address="10.0.1.5/24")], [v4], InvalidInput, None),
        ([t.FixedIpRequest(subnet_id=unknown)], [v4], NotFound, None),
        ([t.FixedIpRequest(subnet_id=elsewhere)], [v4], InvalidInput, None),
        ([t.FixedIpRequest(subnet_id=v4["id"], ip_address="10.9.9.9")], [v4], BadRequest, "InvalidIpForSubnet"),
        ([t.FixedIpRequest(ip_address="10.9.9.9")], [v4], BadRequest, "InvalidIpForNetwork"),
        ([t.FixedIpRequest(ip_address="10.0.1.0")], [v4], BadRequest, "InvalidIpForNetwork"),
        ([t.FixedIpRequest(ip_address="10.0.1.255")], [v4], BadRequest, "InvalidIpForNetwork"),
        ([t.FixedIpRequest(ip_address="10.0.1.5")] * 2, [v4], InvalidInput, None),
    ]
    for requests, subnets, kind, type_ in cases:
        with pytest.raises(kind) as info:
            rules.requested_plan(NET, requests, subnets, mac=MAC, router_port=False, existing={elsewhere})
        assert info.value.field == "fixed_ips"
        if type_ is not None:
            assert info.value.type == type_


def test_foreign_subnets_are_those_not_on_the_network() -> None:
    mine, other = _subnet(1, 4), uuid.UUID(int=9)
    requests = [t.FixedIpRequest(subnet_id=mine["id"]), t.FixedIpRequest(subnet_id=other), t.FixedIpRequest()]
    assert rules.foreign_subnets(requests, [mine]) == [other]


# ---------------------------------------------------------------- diffing an update

SUBNETS = [uuid.UUID(int=100 + i) for i in range(3)]


@st.composite
def current_ips(draw: st.DrawFn) -> list[dict[str, Any]]:
    hosts = draw(st.lists(st.tuples(st.sampled_from(SUBNETS), st.integers(2, 30)), unique=True, max_size=6))
    return [{"subnet_id": s, "ip_address": f"10.0.{SUBNETS.index(s)}.{h}", "ipam_held": True} for s, h in hosts]


@st.composite
def wants_for(draw: st.DrawFn, current: list[dict[str, Any]]) -> list[Want]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        if current and draw(st.booleans()):
            c = draw(st.sampled_from(current))
            out.append(Want(c["subnet_id"], c["ip_address"] if draw(st.booleans()) else None))
        else:
            s = draw(st.sampled_from(SUBNETS))
            out.append(Want(s, f"10.0.{SUBNETS.index(s)}.{draw(st.integers(31, 60))}"))
    return out


@given(st.data())
def test_diff_keeps_each_current_address_at_most_once_and_gets_the_rest(data: st.DataObject) -> None:
    current = data.draw(current_ips())
    wants = data.draw(wants_for(current))
    keep, add = rules.diff_fixed_ips(current, wants)
    assert len(keep) + len(add) == len(wants)
    assert all(k in current for k in keep)
    assert len({(k["subnet_id"], k["ip_address"]) for k in keep}) == len(keep)
    assert all(w in wants for w in add)
    gone = rules.dropped(current, keep)
    assert sorted(map(str, gone + keep)) == sorted(map(str, current))
    # an address asked again by value is kept, never got anew
    for w in wants:
        if w.ip is not None and any(c["ip_address"] == w.ip for c in current):
            assert any(k["ip_address"] == w.ip for k in keep)


@given(current_ips())
def test_asking_for_what_the_port_has_changes_nothing(current: list[dict[str, Any]]) -> None:
    keep, add = rules.diff_fixed_ips(current, [Want(c["subnet_id"], c["ip_address"]) for c in current])
    assert keep == current and add == [] and rules.dropped(current, keep) == []
    keep, add = rules.diff_fixed_ips(current, [Want(c["subnet_id"]) for c in current])  # by subnet only
    assert sorted(map(str, keep)) == sorted(map(str, current)) and add == []


@given(st.data())
def test_an_empty_port_gets_everything(data: st.DataObject) -> None:
    wants = data.draw(wants_for([]))
    assert rules.diff_fixed_ips([], wants) == ([], wants)
