"""Topology's own input checks and list filters (pure)."""

from __future__ import annotations

import pytest

from scopenet.contracts import topology as t
from scopenet.contracts.errors import BadRequest, DomainError
from scopenet.services.topology import validate
from scopenet.services.topology.listing import apply_filters
from scopenet.services.topology.ports import rules as ports
from scopenet.services.topology.subnets import rules as subnets


def test_eui64_matches_the_seed_instance() -> None:
    # seed: instance1 on network1 (SLAAC) has 2001:db8:80d2:c4d3:f816:3eff:fe52:b69f for MAC fa:16:3e:52:b6:9f
    assert ports.eui64("2001:db8:80d2:c4d3::/64", "fa:16:3e:52:b6:9f") == "2001:db8:80d2:c4d3:f816:3eff:fe52:b69f"


def test_random_mac_has_neutron_prefix() -> None:
    macs = {ports.random_mac() for _ in range(200)}
    assert all(m.startswith("fa:16:3e:") and len(m) == 17 for m in macs) and len(macs) > 150


@pytest.mark.parametrize("bad", ["zz", "01:00:5e:00:00:01", "00:00:00:00:00:00", "fa:16:3e:00:00"])
def test_mac_refused(bad: str) -> None:
    with pytest.raises(DomainError) as info:
        ports.mac(bad)
    assert (info.value.code, info.value.field) == (400, "mac_address")


def test_mac_normalised() -> None:
    assert ports.mac("FA-16-3E-0A-0B-0C") == "fa:16:3e:0a:0b:0c"


def test_limits_and_duplicates() -> None:
    with pytest.raises(BadRequest) as info:
        subnets.dns_nameservers([f"192.0.2.{i}" for i in range(6)], 4)
    assert info.value.type == "DNSNameServersExhausted"
    with pytest.raises(BadRequest):
        subnets.dns_nameservers(["192.0.2.1", "192.0.2.1"], 4)
    route = t.HostRoute(destination="10.0.0.0/8", nexthop="192.0.2.1")
    assert validate.host_routes([route], 4) == [{"destination": "10.0.0.0/8", "nexthop": "192.0.2.1"}]
    with pytest.raises(BadRequest):
        validate.host_routes([route], 6)
    with pytest.raises(BadRequest) as info:
        validate.host_routes([route] * 31, 0, field="routes", limit=30, exhausted="RoutesExhausted")
    assert info.value.type == "RoutesExhausted"


def test_ipv6_modes() -> None:
    subnets.ipv6_modes(6, "slaac", "slaac")
    subnets.ipv6_modes(6, None, "dhcpv6-stateless")
    for args in ((4, "slaac", None), (6, "slaac", "dhcpv6-stateful")):
        with pytest.raises(BadRequest):
            subnets.ipv6_modes(*args)


def _port(**over: object) -> t.Port:
    base: dict[str, object] = {
        "id": "00000000-0000-0000-0000-000000000001",
        "name": "p",
        "network_id": "00000000-0000-0000-0000-000000000002",
        "project_id": "a",
        "tenant_id": "a",
        "mac_address": "fa:16:3e:00:00:01",
        "admin_state_up": True,
        "status": "DOWN",
        "device_owner": "",
        "device_id": "",
        "description": "",
        "tags": [],
        "revision_number": 0,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "fixed_ips": [{"subnet_id": "00000000-0000-0000-0000-000000000003", "ip_address": "10.0.0.5"}],
    }
    base.update(over)
    return t.Port.model_validate(base)


def test_filters() -> None:
    ports = [_port(), _port(name="q", fixed_ips=[])]
    assert [p.name for p in apply_filters(ports, {"name": ["q", "x"]}, t.Port)] == ["q"]
    assert [p.name for p in apply_filters(ports, {"fixed_ips": {"ip_address": "10.0.0.5"}}, t.Port)] == ["p"]
    assert apply_filters(ports, {"admin_state_up": "True"}, t.Port) == ports
    with pytest.raises(BadRequest):
        apply_filters(ports, {"fixed_ips": "ip_address=10.0.0.5"}, t.Port)
    with pytest.raises(BadRequest) as info:
        apply_filters(ports, {"bogus": 1}, t.Port)
    assert info.value.field == "bogus"
