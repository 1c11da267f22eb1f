"""add_prefixes / remove_prefixes over NATS (docs/neutron.md#prefix-operations)."""

from __future__ import annotations

from tests.integration.conftest import ADMIN, Ipam, IpamFixtures, fails, new_id, project


async def test_add_prefixes_compacts(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["192.168.0.0/24"])
    got = await ipam("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes=["192.168.1.0/24", "10.0.0.0/24"])
    assert got.prefixes == ["10.0.0.0/24", "192.168.0.0/23"]
    # overlapping the pool's own prefixes is fine: it compacts
    got = await ipam("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes=["192.168.0.128/25", "10.0.0.0/23"])
    assert got.prefixes == ["10.0.0.0/23", "192.168.0.0/23"]
    after = (await ipam("subnetpool.get", alice, id=str(pool.id))).subnetpool
    assert after.prefixes == got.prefixes
    assert after.revision_number == pool.revision_number + 2


async def test_add_prefixes_refusals(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    pool = await mk.pool(alice, ["192.168.0.0/24"])
    await fails(
        ipam("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes=["2001:db8::/64"]),
        400,
        "PrefixVersionMismatch",
        "prefixes",
    )
    # docs/neutron.md#prefix-actions-validate-their-cidrs: an invalid CIDR is a 400 naming the field, not a 500
    for bad in ("192.168.300.0/24", "nonsense", "192.168.1.0"):
        await fails(
            ipam("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes=[bad]), 400, "InvalidInput", "prefixes"
        )
    await fails(
        ipam.unchecked("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes=[]),
        400,
        "HTTPBadRequest",
        "prefixes",
    )
    await fails(ipam.unchecked("subnetpool.add_prefixes", alice, id=str(pool.id)), 400, "HTTPBadRequest", "prefixes")
    await fails(
        ipam.unchecked("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes="10.0.0.0/8"),
        400,
        "HTTPBadRequest",
        "prefixes",
    )
    await fails(ipam("subnetpool.add_prefixes", alice, id=new_id(), prefixes=["10.0.0.0/8"]), 404, "SubnetPoolNotFound")
    await fails(
        ipam("subnetpool.add_prefixes", bob, id=str(pool.id), prefixes=["10.0.0.0/8"]), 404, "SubnetPoolNotFound"
    )
    assert (await ipam("subnetpool.get", alice, id=str(pool.id))).subnetpool.prefixes == ["192.168.0.0/24"]


async def test_add_prefixes_respects_the_scope(ipam: Ipam, mk: IpamFixtures) -> None:
    """Rule 33: add_prefixes is an update, so the scope's overlap rule applies, across projects."""
    alice, bob = project(), project()
    scope = await mk.scope(ADMIN, shared=True)
    await mk.pool(alice, ["10.30.0.0/16"], address_scope_id=scope.id)
    bobs = await mk.pool(bob, ["10.31.0.0/16"], address_scope_id=scope.id)
    err = await fails(
        ipam("subnetpool.add_prefixes", ADMIN, id=str(bobs.id), prefixes=["10.30.128.0/24"]),
        409,
        "AddressScopePrefixConflict",
        "prefixes",
    )
    assert "10.30.0.0/16" in err.message
    got = await ipam("subnetpool.add_prefixes", ADMIN, id=str(bobs.id), prefixes=["10.32.0.0/16"])
    assert got.prefixes == ["10.31.0.0/16", "10.32.0.0/16"]


async def test_add_prefixes_grows_an_exhausted_pool(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.33.0.0/26"], default_prefixlen=26)
    assert (await mk.subnet(alice, pool)).cidr == "10.33.0.0/26"
    await fails(mk.subnet(alice, pool), 409, "SubnetAllocationError")
    await ipam("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes=["10.33.0.64/26"])
    assert (await mk.subnet(alice, pool)).cidr == "10.33.0.64/26"


async def test_remove_prefixes(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["192.168.0.0/24", "10.0.0.0/16"], default_prefixlen=24)

    async def remove(*prefixes: str) -> list[str]:
        return list(
            (await ipam("subnetpool.remove_prefixes", alice, id=str(pool.id), prefixes=list(prefixes))).prefixes
        )

    # a request missing the pool entirely changes nothing
    assert await remove("172.16.0.0/12") == ["10.0.0.0/16", "192.168.0.0/24"]
    # partial blocks are fine
    assert await remove("192.168.0.128/25") == ["10.0.0.0/16", "192.168.0.0/25"]
    sub = await mk.subnet(alice, pool)  # best fit: the /25 is too small, so 10.0.0.0/24
    assert sub.cidr == "10.0.0.0/24"
    err = await fails(remove("10.0.0.128/25"), 400, "IllegalSubnetPoolPrefixUpdate", "prefixes")
    assert "in use" in err.message
    await fails(remove("10.0.0.0/8"), 400, "IllegalSubnetPoolPrefixUpdate", "prefixes")
    assert await remove("10.0.128.0/17") == ["10.0.0.0/17", "192.168.0.0/25"]
    # removed space is no longer handed out
    await fails(mk.subnet(alice, pool, cidr="10.0.200.0/24"), 409, "SubnetAllocationError")
    await fails(remove("2001:db8::/64"), 400, "PrefixVersionMismatch", "prefixes")
    await fails(remove("10.0.0.0/33"), 400, "InvalidInput", "prefixes")
    await fails(
        ipam("subnetpool.remove_prefixes", alice, id=new_id(), prefixes=["10.0.0.0/8"]), 404, "SubnetPoolNotFound"
    )
    await fails(
        ipam("subnetpool.remove_prefixes", project(), id=str(pool.id), prefixes=["10.0.0.0/8"]),
        404,
        "SubnetPoolNotFound",
    )
    # once the subnet is gone its space can be removed too
    await ipam("subnet.release", alice, id=str(sub.id))
    assert await remove("10.0.0.0/17") == ["192.168.0.0/25"]
    # like Neutron, a pool may lose every prefix; it then has nothing to give until it grows again
    assert await remove("192.168.0.0/24") == []
    err = await fails(mk.subnet(alice, pool, prefixlen=26), 409, "SubnetAllocationError")
    assert "no prefixes" in err.message
    await ipam("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes=["172.20.0.0/24"])
    assert (await mk.subnet(alice, pool, prefixlen=26)).cidr == "172.20.0.0/26"


async def test_remove_prefixes_needs_the_owner(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    pool = await mk.pool(ADMIN, ["10.34.0.0/16"], shared=True)
    await fails(
        ipam("subnetpool.remove_prefixes", bob, id=str(pool.id), prefixes=["10.34.0.0/24"]),
        403,
        "PolicyNotAuthorized",
    )
    await fails(
        ipam("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes=["10.35.0.0/24"]),
        403,
        "PolicyNotAuthorized",
    )
    assert (await ipam("subnetpool.get", bob, id=str(pool.id))).subnetpool.prefixes == ["10.34.0.0/16"]
