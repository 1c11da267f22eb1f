"""network-ip-availability counted as Neutron 29 counts it (``network_ip_availability_db`` and
``_details_db``): allocation pools' size, else the whole cidr; fixed IPs used; networks summed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from scopenet.contracts.errors import BadRequest
from scopenet.services.topology.networks import availability as av

NET, NET2, S1, S2 = (uuid.uuid4() for _ in range(4))


def row(net: uuid.UUID, subnet: uuid.UUID | None = None, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "network_id": net,
        "network_name": "n",
        "project_id": "p",
        "subnet_id": subnet,
        "subnet_name": "s",
        "cidr": None,
        "ip_version": 4,
        "allocation_pools": [],
        "used_ips": 0,
        "used_in_pools": 0,
    }
    return {**base, **kw}


def test_pools_decide_the_total_and_the_network_sums_its_subnets() -> None:
    rows = [
        row(
            NET,
            S1,
            cidr="10.0.0.0/24",
            allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.254"}],
            used_ips=4,
            used_in_pools=3,
        ),
        row(
            NET,
            S2,
            cidr="10.0.1.0/24",
            allocation_pools=[{"start": "10.0.1.10", "end": "10.0.1.19"}, {"start": "10.0.1.100", "end": "10.0.1.100"}],
        ),
        row(NET2),
    ]
    first, empty = av.assemble(rows)
    assert (first.total_ips, first.used_ips) == (253 + 11, 4)
    assert [s.total_ips for s in first.subnet_ip_availability] == [253, 11]
    d = first.subnet_ip_availability[0].ip_availability_details
    assert (d.total_ips_in_subnet, d.total_ips_in_allocation_pool) == (254, 253)
    assert (d.used_ips_in_subnet, d.used_ips_in_allocation_pool) == (4, 3)
    assert first.ip_availability_details.total_ips_in_subnet == 508
    assert first.tenant_id == first.project_id == "p"
    # A network without subnets is listed, with zeros (Neutron's outer join).
    assert (empty.network_id, empty.total_ips, empty.subnet_ip_availability) == (NET2, 0, [])


def test_a_subnet_without_pools_counts_its_whole_cidr() -> None:
    assert av.subnet_total("10.0.0.0/29", []) == 8
    assert av.subnet_total("2001:db8::/64", [{"start": "2001:db8::2", "end": "2001:db8::ffff:ffff:ffff:ffff"}]) == (
        2**64 - 2
    )
    d = av.details("2001:db8::/64", [], 0, 0)
    assert (d.total_ips_in_subnet, d.total_ips_in_allocation_pool) == (2**64, 0)  # no -2 for IPv6


def test_filters_are_neutrons_and_bad_values_are_400() -> None:
    ids, names, projects, versions = av.parse_filters(
        {"network_id": str(NET), "tenant_id": "t", "project_id": ["p", "q"], "ip_version": "6", "other": "x"}
    )
    assert (ids, names, sorted(projects), versions) == ([NET], None, ["p", "q", "t"], [6])
    with pytest.raises(BadRequest, match="ip_version"):
        av.parse_filters({"ip_version": "5"})
    with pytest.raises(BadRequest, match="network_id"):
        av.parse_filters({"network_id": "not-a-uuid"})
