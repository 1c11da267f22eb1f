from tests.integration.conftest import ADMIN, Ipam


async def test_scope_pool_subnet(ipam: Ipam) -> None:
    scope = (
        await ipam("address_scope.create", ADMIN, address_scope={"name": "s4", "ip_version": 4, "shared": True})
    ).address_scope
    pool = (
        await ipam(
            "subnetpool.create",
            ADMIN,
            subnetpool={
                "name": "p4",
                "prefixes": ["203.0.113.0/24"],
                "default_prefixlen": 26,
                "address_scope_id": str(scope.id),
                "shared": True,
            },
        )
    ).subnetpool
    import uuid

    sub = (
        await ipam(
            "subnet.allocate",
            ADMIN,
            subnet_id=str(uuid.uuid4()),
            network_id=str(uuid.uuid4()),
            project_id=ADMIN.project_id,
            ip_version=4,
            subnetpool_id=str(pool.id),
        )
    ).subnet
    assert sub.cidr == "203.0.113.0/26"
    assert sub.gateway_ip == "203.0.113.1"


async def test_ip_allocation_smoke(ipam: Ipam) -> None:
    import uuid

    sub = (
        await ipam(
            "subnet.allocate",
            ADMIN,
            subnet_id=str(uuid.uuid4()),
            network_id=str(uuid.uuid4()),
            project_id=ADMIN.project_id,
            ip_version=4,
            cidr="192.0.2.0/29",
        )
    ).subnet
    got = [
        (await ipam("ip.allocate", ADMIN, subnet_id=str(sub.id), port_id=str(uuid.uuid4()))).allocation.ip_address
        for _ in range(5)
    ]
    assert got == ["192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6"]
