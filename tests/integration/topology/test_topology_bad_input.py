"""Whatever a client sends, the answer is a 4xx naming the problem, never a 500, and nothing is
left half-written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from scopenet.contracts.errors import DomainError
from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import Build, Topo, project

NUL = "bad\x00value"
WEIRD: list[Any] = [NUL, "", "x" * 300, -1, 2**70, None, [], {}, "::", "300.1.1.1", "10.0.0.0/33", True]


@pytest.mark.parametrize(
    ("tail", "key", "fields"),
    [
        ("network.create", "network", ["name", "mtu", "provider:segmentation_id", "description", "tags"]),
        (
            "subnet.create",
            "subnet",
            [
                "cidr",
                "gateway_ip",
                "prefixlen",
                "allocation_pools",
                "dns_nameservers",
                "host_routes",
                "ipv6_ra_mode",
                "service_types",
                "subnetpool_id",
                "name",
            ],
        ),
        ("port.create", "port", ["mac_address", "fixed_ips", "device_owner", "device_id", "name"]),
        ("router.create", "router", ["external_gateway_info", "name", "admin_state_up"]),
        ("floatingip.create", "floatingip", ["floating_ip_address", "port_id", "fixed_ip_address", "subnet_id"]),
    ],
)
async def test_garbage_fields_get_4xx(topo: Topo, mk: Build, tail: str, key: str, fields: list[str]) -> None:
    alice = project()
    net = await mk.network(alice)
    await mk.subnet(alice, net, cidr="10.123.0.0/24")
    ext = await mk.external(v4="192.0.123.0/24")
    base: dict[str, dict[str, Any]] = {
        "network": {},
        "subnet": {"network_id": str(net.id), "ip_version": 4, "cidr": "10.124.0.0/24"},
        "port": {"network_id": str(net.id)},
        "router": {},
        "floatingip": {"floating_network_id": str(ext.id)},
    }
    for field in fields:
        for value in WEIRD:
            body = {**base[key], field: value}
            try:
                await topo.unchecked(tail, alice, **{key: body})
            except DomainError as exc:
                assert 400 <= exc.code < 500, f"{tail} {field}={value!r}: {exc.code} {exc.type} {exc.message}"
    # nothing half-written: the subnets that failed left neither a row nor an IPAM allocation
    subnets = (await topo("subnet.list", alice, filters={"network_id": str(net.id)})).subnets
    held = {s.id for s in (await mk.ipam("subnet.list", ADMIN, filters={"network_id": str(net.id)})).subnets}
    assert {s.id for s in subnets} == held


async def test_unknown_ids_are_404_with_the_resource_type(topo: Topo) -> None:
    alice = project()
    missing = str(uuid.uuid4())
    for tail, type_ in (
        ("network.get", "NetworkNotFound"),
        ("subnet.get", "SubnetNotFound"),
        ("port.get", "PortNotFound"),
        ("router.get", "RouterNotFound"),
        ("floatingip.get", "FloatingIPNotFound"),
        ("rbac_policy.get", "RbacPolicyNotFound"),
        ("network.delete", "NetworkNotFound"),
        ("router.add_router_interface", "RouterNotFound"),
    ):
        body: dict[str, Any] = {"id": missing}
        if tail == "router.add_router_interface":
            body["subnet_id"] = missing
        with pytest.raises(DomainError) as info:
            await topo(tail, alice, **body)
        assert (info.value.code, info.value.type) == (404, type_), tail
