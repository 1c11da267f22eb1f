"""IP address allocation for ports over NATS (docs/neutron.md#ports-and-ip-allocation) and subnet release (rule 53)."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import Ipam, IpamFixtures, fails, new_id, project


async def test_next_free_is_lowest_and_gateway_is_reserved(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["203.0.113.0/24"], default_prefixlen=26)
    sub = await mk.subnet(alice, pool)
    assert sub.gateway_ip == "203.0.113.1"
    assert [await mk.ip(alice, sub) for _ in range(3)] == ["203.0.113.2", "203.0.113.3", "203.0.113.4"]
    # docs/neutron.md#the-gateway-address-is-reserved
    err = await fails(mk.ip(alice, sub, ip="203.0.113.1"), 409, "IpAddressAlreadyAllocated")
    assert "gateway" in err.message
    await fails(mk.ip(alice, sub, ip="203.0.113.3"), 409, "IpAddressAlreadyAllocated")
    # rule 57: a specific address may lie outside the allocation pools (none here: the pool is .2-.62)
    # but never be the network or broadcast address, or outside the subnet
    for bad in ("203.0.113.0", "203.0.113.63", "203.0.113.64", "2001:db8::1"):
        await fails(mk.ip(alice, sub, ip=bad), 400, "InvalidIpForSubnet", "ip_address")
    await fails(mk.ip(alice, sub, ip="not-an-ip"), 400, "BadRequest", "ip_address")
    assert await mk.ip(alice, sub, ip="203.0.113.10") == "203.0.113.10"
    assert await mk.ip(alice, sub) == "203.0.113.5"
    await fails(ipam("ip.allocate", alice, subnet_id=new_id(), port_id=new_id()), 404, "SubnetNotFound")


async def test_specific_address_outside_the_pools(mk: IpamFixtures) -> None:
    alice = project()
    sub = await mk.subnet(alice, cidr="10.40.0.0/24", allocation_pools=[{"start": "10.40.0.100", "end": "10.40.0.101"}])
    assert await mk.ip(alice, sub, ip="10.40.0.7") == "10.40.0.7"
    assert [await mk.ip(alice, sub) for _ in range(2)] == ["10.40.0.100", "10.40.0.101"]
    err = await fails(mk.ip(alice, sub), 409, "IpAddressGenerationFailure")
    assert "No more IP addresses" in err.message
    assert await mk.ip(alice, sub, ip="10.40.0.254") == "10.40.0.254"  # specific still works


async def test_exhaustion_and_release(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    sub = await mk.subnet(alice, cidr="10.41.0.0/29")  # gateway .1, pool .2-.6
    ports = [new_id() for _ in range(5)]
    got = [await mk.ip(alice, sub, port=p) for p in ports]
    assert got == [f"10.41.0.{i}" for i in range(2, 7)]
    await fails(mk.ip(alice, sub), 409, "IpAddressGenerationFailure")
    released = (await ipam("ip.release", alice, port_id=ports[1])).allocations
    assert [(a.ip_address, str(a.port_id), a.subnet_id) for a in released] == [("10.41.0.3", ports[1], sub.id)]
    assert (await ipam("ip.release", alice, port_id=ports[1])).allocations == []  # idempotent
    assert await mk.ip(alice, sub) == "10.41.0.3"  # freed, and reused at once
    await fails(mk.ip(alice, sub), 409, "IpAddressGenerationFailure")
    # releasing by address, or on another subnet, only touches what matches
    assert (await ipam("ip.release", alice, port_id=ports[0], ip_address="10.41.0.9")).allocations == []
    assert (await ipam("ip.release", alice, port_id=ports[0], subnet_id=new_id())).allocations == []
    gone = (await ipam("ip.release", alice, port_id=ports[0], ip_address="10.41.0.2")).allocations
    assert [a.ip_address for a in gone] == ["10.41.0.2"]
    assert await mk.ip(alice, sub, ip="10.41.0.2") == "10.41.0.2"


async def test_idempotent_retry(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    sub = await mk.subnet(alice, cidr="10.42.0.0/24")
    port = new_id()
    first = await mk.ip(alice, sub, port=port)
    assert await mk.ip(alice, sub, port=port) == first
    assert await mk.ip(alice, sub, port=port, ip="10.42.0.50") == "10.42.0.50"
    assert await mk.ip(alice, sub, port=port, ip="10.42.0.50") == "10.42.0.50"
    # concurrent retries of one port agree
    other = new_id()
    replies = await asyncio.gather(*(mk.ip(alice, sub, port=other) for _ in range(5)))
    assert len(set(replies)) == 1
    listed = (await ipam("ip.list", alice, filters={"subnet_id": str(sub.id)})).allocations
    assert sorted((str(a.port_id), a.ip_address) for a in listed) == sorted(
        [(port, first), (port, "10.42.0.50"), (other, replies[0])]
    )
    by_port = (await ipam("ip.list", alice, filters={"port_id": port})).allocations
    assert sorted(a.ip_address for a in by_port) == sorted([first, "10.42.0.50"])
    await fails(ipam("ip.list", alice, filters={"mac": "x"}), 400, "BadRequest", "mac")
    await fails(ipam("ip.list", alice, filters={"port_id": "x"}), 400, "BadRequest", "filters")


async def test_concurrent_allocations_are_distinct(mk: IpamFixtures) -> None:
    alice = project()
    sub = await mk.subnet(alice, cidr="10.43.0.0/27")  # .2-.30: 29 addresses
    got = await asyncio.gather(*(mk.ip(alice, sub) for _ in range(29)))
    assert sorted(got, key=lambda a: int(a.rsplit(".", 1)[1])) == [f"10.43.0.{i}" for i in range(2, 31)]
    await fails(mk.ip(alice, sub), 409, "IpAddressGenerationFailure")


async def test_ipv6(mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["2001:db8:a583::/48"], default_prefixlen=64)
    sub = await mk.subnet(alice, pool)
    assert await mk.ip(alice, sub) == "2001:db8:a583::2"
    await fails(mk.ip(alice, sub, ip="2001:db8:a583::1"), 409, "IpAddressAlreadyAllocated")
    assert await mk.ip(alice, sub, ip="2001:db8:a583:0:ffff:ffff:ffff:ffff") == "2001:db8:a583:0:ffff:ffff:ffff:ffff"
    await fails(mk.ip(alice, sub, ip="2001:db8:a584::5"), 400, "InvalidIpForSubnet", "ip_address")


async def test_subnet_release_refused_while_addresses_are_held(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.44.0.0/24"], default_prefixlen=26)
    sub = await mk.subnet(alice, pool)
    port = new_id()
    await mk.ip(alice, sub, port=port)
    err = await fails(ipam("subnet.release", alice, id=str(sub.id)), 409, "SubnetInUse")
    assert "1 address" in err.message
    assert (await ipam("subnet.get", alice, id=str(sub.id))).subnet.cidr == "10.44.0.0/26"
    await ipam("ip.release", alice, port_id=port)
    await ipam("subnet.release", alice, id=str(sub.id))
    await fails(mk.ip(alice, sub), 404, "SubnetNotFound")
    # the prefix went back to the pool
    assert (await mk.subnet(alice, pool)).cidr == "10.44.0.0/26"


async def test_gateway_moves_with_subnet_update(ipam: Ipam, mk: IpamFixtures) -> None:
    """The reservation follows the gateway (the in-memory free list is rebuilt after an update)."""
    alice = project()
    sub = await mk.subnet(alice, cidr="10.45.0.0/29")  # gateway .1, pool .2-.6
    assert await mk.ip(alice, sub) == "10.45.0.2"
    moved = await ipam(
        "subnet.update",
        alice,
        id=str(sub.id),
        gateway_ip="10.45.0.6",
        allocation_pools=[{"start": "10.45.0.1", "end": "10.45.0.5"}],
    )
    assert moved.subnet.gateway_ip == "10.45.0.6"
    assert [await mk.ip(alice, sub) for _ in range(4)] == ["10.45.0.1", "10.45.0.3", "10.45.0.4", "10.45.0.5"]
    await fails(mk.ip(alice, sub), 409, "IpAddressGenerationFailure")
    await fails(mk.ip(alice, sub, ip="10.45.0.6"), 409, "IpAddressAlreadyAllocated")


async def test_a_released_subnet_id_allocated_again(ipam: Ipam, mk: IpamFixtures) -> None:
    """A subnet id may come back with another cidr: its addresses come from the new cidr only."""
    alice = project()
    subnet_id, port = new_id(), new_id()
    old = await mk.subnet(alice, cidr="10.46.0.0/24", subnet_id=subnet_id)
    assert await mk.ip(alice, old, port=port) == "10.46.0.2"
    await ipam("ip.release", alice, port_id=port)
    await ipam("subnet.release", alice, id=subnet_id)
    new = await mk.subnet(alice, cidr="10.47.0.0/24", subnet_id=subnet_id)
    await ipam("subnet.update", alice, id=subnet_id, gateway_ip="10.47.0.1")
    assert await mk.ip(alice, new) == "10.47.0.2"
