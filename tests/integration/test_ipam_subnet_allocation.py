"""Subnet (prefix) allocation over NATS (docs/neutron.md#prefix-allocation)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.conftest import ADMIN, Ipam, IpamFixtures, fails, new_id, project, sole_default


def pools(sub: Any) -> list[tuple[str, str]]:
    return [(p.start, p.end) for p in sub.allocation_pools]


async def test_seed_walkthrough_values(mk: IpamFixtures) -> None:
    """The seed document's pools: the first /26 and the first /64, gateway at network+1."""
    scope4, scope6 = await mk.scope(ADMIN, 4, shared=True), await mk.scope(ADMIN, 6, shared=True)
    p4 = await mk.pool(ADMIN, ["203.0.113.0/24"], default_prefixlen=26, address_scope_id=scope4.id, shared=True)
    p6 = await mk.pool(ADMIN, ["2001:db8:a583::/48"], default_prefixlen=64, address_scope_id=scope6.id, shared=True)
    alice = project()
    net = new_id()
    s4 = await mk.subnet(alice, p4, network=net)
    assert (s4.cidr, s4.gateway_ip, pools(s4)) == ("203.0.113.0/26", "203.0.113.1", [("203.0.113.2", "203.0.113.62")])
    assert (s4.subnetpool_id, s4.address_scope_id, s4.project_id, s4.ip_version) == (
        p4.id,
        scope4.id,
        alice.project_id,
        4,
    )
    s6 = await mk.subnet(alice, p6, network=net)  # dual stack on one network (rule 49 f)
    assert (s6.cidr, s6.gateway_ip) == ("2001:db8:a583::/64", "2001:db8:a583::1")
    assert pools(s6) == [("2001:db8:a583::2", "2001:db8:a583:0:ffff:ffff:ffff:ffff")]
    assert s6.address_scope_id == scope6.id
    second = await mk.subnet(alice, p4)
    assert second.cidr == "203.0.113.64/26"


async def test_best_fit_order(mk: IpamFixtures) -> None:
    """docs/neutron.md#prefix-allocation example: the smallest hole that fits, lowest address first."""
    alice = project()
    pool = await mk.pool(alice, ["10.0.0.0/16", "192.168.0.0/24"], min_prefixlen=16)
    got = [(await mk.subnet(alice, pool, prefixlen=n)).cidr for n in (24, 24, 26, 26, 25)]
    assert got == ["192.168.0.0/24", "10.0.0.0/24", "10.0.1.0/26", "10.0.1.64/26", "10.0.1.128/25"]


async def test_specific_requests(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.1.0.0/16"], default_prefixlen=24)
    taken = await mk.subnet(alice, pool, cidr="10.1.5.0/24")
    assert (taken.cidr, taken.gateway_ip, taken.subnetpool_id) == ("10.1.5.0/24", "10.1.5.1", pool.id)
    assert pools(taken) == [("10.1.5.2", "10.1.5.254")]
    # docs/neutron.md#allocation-failures-are-409-not-500: taken or outside is a 409 that says why, never a 500
    err = await fails(mk.subnet(alice, pool, cidr="10.1.5.0/25"), 409, "SubnetAllocationError")
    assert "10.1.5.0/24" in err.message
    await fails(mk.subnet(alice, pool, cidr="10.1.0.0/20"), 409, "SubnetAllocationError")
    err = await fails(mk.subnet(alice, pool, cidr="10.2.0.0/24"), 409, "SubnetAllocationError")
    assert "outside" in err.message
    # best fit: an "any" request takes the smallest hole first, the buddy the specific request left
    assert (await mk.subnet(alice, pool)).cidr == "10.1.4.0/24"
    assert (await mk.subnet(alice, pool)).cidr == "10.1.6.0/24"
    # a gateway without a cidr makes the request specific (rule 40)
    by_gw = await mk.subnet(alice, pool, gateway_ip="10.1.9.1")
    assert (by_gw.cidr, by_gw.gateway_ip) == ("10.1.9.0/24", "10.1.9.1")
    by_gw = await mk.subnet(alice, pool, gateway_ip="10.1.10.77", prefixlen=28)
    assert (by_gw.cidr, by_gw.gateway_ip) == ("10.1.10.64/28", "10.1.10.77")
    assert pools(by_gw) == [("10.1.10.65", "10.1.10.76"), ("10.1.10.78", "10.1.10.78")]
    await fails(mk.subnet(alice, pool, gateway_ip="10.1.11.0"), 409, "IpamValueInvalid")
    # an explicit null gateway on an "any" request: no gateway, the whole usable range
    bare = await mk.subnet(alice, pool, gateway_ip=None)
    assert (bare.cidr, bare.gateway_ip, pools(bare)) == ("10.1.7.0/24", None, [("10.1.7.1", "10.1.7.254")])
    # a specific request may carry allocation pools
    custom = await mk.subnet(
        alice, pool, cidr="10.1.20.0/24", allocation_pools=[{"start": "10.1.20.100", "end": "10.1.20.199"}]
    )
    assert pools(custom) == [("10.1.20.100", "10.1.20.199")]


async def test_exhaustion_and_size_limits(mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.2.0.0/24"], min_prefixlen=24, default_prefixlen=25, max_prefixlen=26)
    assert [(await mk.subnet(alice, pool)).cidr for _ in range(2)] == ["10.2.0.0/25", "10.2.0.128/25"]
    err = await fails(mk.subnet(alice, pool), 409, "SubnetAllocationError")
    assert "/25" in err.message
    await fails(mk.subnet(alice, pool, prefixlen=27), 400, "MaxPrefixSubnetAllocationError", "prefixlen")
    await fails(mk.subnet(alice, pool, prefixlen=23), 400, "MinPrefixSubnetAllocationError", "prefixlen")
    await fails(mk.subnet(alice, pool, prefixlen=33), 400, "AddrFormatError")
    # docs/neutron.md#default-prefix-length, as Neutron has it: a /16 pool with the default
    # default_prefixlen (8) cannot serve "any"
    wide = await mk.pool(alice, ["10.3.0.0/16"])
    await fails(mk.subnet(alice, wide), 409, "SubnetAllocationError")


async def test_small_prefixes_get_no_gateway(mk: IpamFixtures) -> None:
    """docs/neutron.md#point-to-point-subnets: /31 and /32 from a pool are usable point-to-point / host subnets."""
    alice = project()
    pool = await mk.pool(alice, ["10.4.0.0/29"], default_prefixlen=31)
    s31 = await mk.subnet(alice, pool)
    assert (s31.cidr, s31.gateway_ip, pools(s31)) == ("10.4.0.0/31", None, [("10.4.0.0", "10.4.0.1")])
    s32 = await mk.subnet(alice, pool, prefixlen=32)
    assert (s32.cidr, s32.gateway_ip, pools(s32)) == ("10.4.0.2/32", None, [("10.4.0.2", "10.4.0.2")])


async def test_quota_counts_the_requesters_usage(ipam: Ipam, mk: IpamFixtures) -> None:
    """Each project is limited by its own allocations, not by the pool owner's.

    docs/neutron.md#quota-counts-the-requesting-project
    """
    alice, bob = project(), project()
    pool = await mk.pool(ADMIN, ["10.5.0.0/16"], default_prefixlen=24, default_quota=512, shared=True)
    assert [(await mk.subnet(alice, pool)).cidr for _ in range(2)] == ["10.5.0.0/24", "10.5.1.0/24"]
    err = await fails(mk.subnet(alice, pool), 409, "SubnetPoolQuotaExceeded")
    assert "quota" in err.message
    await fails(mk.subnet(alice, pool, prefixlen=30), 409, "SubnetPoolQuotaExceeded")
    # the subnet's project is what counts (Bob allocates for himself, even through Alice's call)
    assert (await mk.subnet(bob, pool)).cidr == "10.5.2.0/24"
    assert (await mk.subnet(alice, pool, project_id=bob.project_id)).cidr == "10.5.3.0/24"
    await fails(mk.subnet(bob, pool), 409, "SubnetPoolQuotaExceeded")
    assert (await mk.subnet(ADMIN, pool)).cidr == "10.5.4.0/24"
    # releasing gives quota back
    first = (await ipam("subnet.list", alice, filters={"cidr": "10.5.0.0/24", "subnetpool_id": str(pool.id)})).subnets
    await ipam("subnet.release", alice, id=str(first[0].id))
    assert (await mk.subnet(alice, pool, prefixlen=25)).cidr == "10.5.0.0/25"
    # IPv6 counts /64s
    v6 = await mk.pool(alice, ["2001:db8:50::/48"], min_prefixlen=60, default_prefixlen=64, default_quota=2)
    await mk.subnet(alice, v6)
    await mk.subnet(alice, v6)
    await fails(mk.subnet(alice, v6), 409, "SubnetPoolQuotaExceeded")
    await fails(mk.subnet(alice, v6, prefixlen=63), 409, "SubnetPoolQuotaExceeded")
    # an IPv6 prefix longer than /64 costs a fraction of a /64
    fine = await mk.pool(alice, ["2001:db8:51::/48"], default_prefixlen=65, default_quota=1)
    assert [(await mk.subnet(alice, fine)).cidr for _ in range(2)] == ["2001:db8:51::/65", "2001:db8:51:0:8000::/65"]
    await fails(mk.subnet(alice, fine, prefixlen=66), 409, "SubnetPoolQuotaExceeded")
    # 0 is unlimited
    unlimited = await mk.pool(alice, ["10.6.0.0/28"], default_prefixlen=30, default_quota=0)
    assert len([await mk.subnet(alice, unlimited) for _ in range(4)]) == 4


async def test_pool_resolution_errors(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    pool = await mk.pool(alice, ["10.7.0.0/16"], default_prefixlen=24)
    v6 = await mk.pool(alice, ["2001:db8:70::/48"])
    err = await fails(mk.subnet(alice, pool, cidr="10.7.1.0/24", prefixlen=24), 400, "BadRequest", "prefixlen")
    assert "together" in err.message
    await fails(mk.subnet(alice, pool, use_default_subnetpool=True), 400, "BadRequest", "use_default_subnetpool")
    await fails(mk.subnet(alice, version=4), 400, "BadRequest", "cidr")
    await fails(
        mk.subnet(alice, pool, allocation_pools=[{"start": "10.7.0.5", "end": "10.7.0.9"}]),
        400,
        "BadRequest",
        "allocation_pools",
    )
    await fails(mk.subnet(bob, pool), 404, "SubnetPoolNotFound")  # invisible
    await fails(mk.subnet(alice, version=4, subnetpool_id=new_id()), 404, "SubnetPoolNotFound")
    await fails(mk.subnet(alice, v6, version=4), 400, "BadRequest", "ip_version")
    await fails(mk.subnet(alice, pool, version=6), 400, "BadRequest", "ip_version")
    await fails(mk.subnet(alice, pool, cidr="2001:db8:70::/64", version=4), 400, "InvalidInput", "cidr")
    assert (await ipam("subnet.list", alice, filters={"subnetpool_id": str(pool.id)})).subnets == []


async def test_explicit_cidr_validation(mk: IpamFixtures) -> None:
    """Rule 45, and a plain subnet (no pool) in the implicit unscoped space."""
    alice = project()
    for cidr in ("0.0.0.0/0", "::/0", "10.8.0.0/31", "224.0.0.0/24", "127.0.0.0/8", "0.0.0.0/8", "::/64"):
        await fails(mk.subnet(alice, cidr=cidr), 400, "InvalidInput", "cidr")
    await fails(mk.subnet(alice, cidr="10.8.0.0/33"), 400, "InvalidInput", "cidr")
    p2p = await mk.subnet(alice, cidr="10.8.0.0/31", enable_dhcp=False)
    assert (p2p.gateway_ip, pools(p2p)) == (None, [("10.8.0.0", "10.8.0.1")])
    plain = await mk.subnet(alice, cidr="10.8.1.0/24")
    assert (plain.subnetpool_id, plain.address_scope_id, plain.gateway_ip) == (None, None, "10.8.1.1")
    # an explicit IPv6 cidr gets ::1 as gateway, like a pool subnet (Neutron: ``::``)
    v6 = await mk.subnet(alice, cidr="2001:db8:80::/64")
    assert (v6.gateway_ip, pools(v6)) == ("2001:db8:80::1", [("2001:db8:80::2", "2001:db8:80:0:ffff:ffff:ffff:ffff")])
    # plain subnets of different networks may overlap (docs/neutron.md#the-unscoped-space)
    assert (await mk.subnet(project(), cidr="10.8.1.0/24")).cidr == "10.8.1.0/24"


async def test_gateway_and_allocation_pools(mk: IpamFixtures) -> None:
    alice = project()
    none = await mk.subnet(alice, cidr="10.9.0.0/24", gateway_ip=None)
    assert (none.gateway_ip, pools(none)) == (None, [("10.9.0.1", "10.9.0.254")])
    middle = await mk.subnet(alice, cidr="10.9.1.0/24", gateway_ip="10.9.1.100")
    assert pools(middle) == [("10.9.1.1", "10.9.1.99"), ("10.9.1.101", "10.9.1.254")]
    outside = await mk.subnet(alice, cidr="10.9.2.0/24", gateway_ip="10.99.0.1")  # on-link, allowed
    assert outside.gateway_ip == "10.99.0.1"
    # IPv6 has no network or broadcast address to refuse
    for gw in ("2001:db8:90::", "2001:db8:90:0:ffff:ffff:ffff:ffff"):
        assert (await mk.subnet(alice, cidr="2001:db8:90::/64", gateway_ip=gw)).gateway_ip == gw
    for gw in ("10.9.3.0", "10.9.3.255", "2001:db8::1", "bogus"):
        await fails(mk.subnet(alice, cidr="10.9.3.0/24", gateway_ip=gw), 400, "InvalidInput", "gateway_ip")

    async def bad_pools(allocation_pools: list[dict[str, str]], code: int, type_: str) -> None:
        await fails(
            mk.subnet(alice, cidr="10.9.4.0/24", allocation_pools=allocation_pools),
            code,
            type_,
        )

    await bad_pools([{"start": "10.9.4.300", "end": "10.9.4.310"}], 400, "InvalidAllocationPool")
    await bad_pools([{"start": "2001:db8::1", "end": "2001:db8::5"}], 400, "InvalidAllocationPool")
    await bad_pools([{"start": "10.9.4.0", "end": "10.9.4.10"}], 400, "OutOfBoundsAllocationPool")
    await bad_pools([{"start": "10.9.4.250", "end": "10.9.5.10"}], 400, "OutOfBoundsAllocationPool")
    await bad_pools(
        [{"start": "10.9.4.10", "end": "10.9.4.20"}, {"start": "10.9.4.15", "end": "10.9.4.30"}],
        409,
        "OverlappingAllocationPools",
    )
    await bad_pools([{"start": "10.9.4.1", "end": "10.9.4.20"}], 409, "GatewayConflictWithAllocationPools")
    fine = await mk.subnet(
        alice,
        cidr="10.9.4.0/24",
        allocation_pools=[{"start": "10.9.4.100", "end": "10.9.4.110"}, {"start": "10.9.4.10", "end": "10.9.4.20"}],
    )
    assert sorted(pools(fine)) == [("10.9.4.10", "10.9.4.20"), ("10.9.4.100", "10.9.4.110")]


async def test_overlap_inside_a_network(mk: IpamFixtures) -> None:
    """Rule 48: never inside one network, whatever the pools; across networks it is allowed."""
    alice = project()
    net = new_id()
    await mk.subnet(alice, cidr="10.10.0.0/24", network=net)
    err = await fails(mk.subnet(alice, cidr="10.10.0.128/25", network=net), 400, "InvalidInput", "cidr")
    assert "overlaps" in err.message
    await fails(mk.subnet(alice, cidr="10.10.0.0/16", network=net), 400, "InvalidInput", "cidr")
    assert (await mk.subnet(alice, cidr="10.10.0.0/24")).cidr == "10.10.0.0/24"
    # two unscoped pools hand out the same space to two subnets of one network: refused, and the
    # overlap is reported before the pool affinity (Neutron's order)
    p1 = await mk.pool(alice, ["10.11.0.0/24"], default_prefixlen=24)
    p2 = await mk.pool(alice, ["10.11.0.0/24"], default_prefixlen=24)
    net2 = new_id()
    await mk.subnet(alice, p1, network=net2)
    await fails(mk.subnet(alice, p2, network=net2), 400, "InvalidInput", "cidr")
    assert (await mk.subnet(alice, p2)).cidr == "10.11.0.0/24"  # p2 still has it: nothing was taken


async def test_network_affinity_rules(mk: IpamFixtures) -> None:
    """Rule 49 a-f."""
    alice = project()
    s, t = await mk.scope(alice), await mk.scope(alice)
    s_a = await mk.pool(alice, ["10.12.0.0/16"], address_scope_id=s.id, default_prefixlen=24)
    s_b = await mk.pool(alice, ["10.13.0.0/16"], address_scope_id=s.id, default_prefixlen=24)
    t_a = await mk.pool(alice, ["10.14.0.0/16"], address_scope_id=t.id, default_prefixlen=24)
    unscoped = await mk.pool(alice, ["10.15.0.0/16"], default_prefixlen=24)
    unscoped2 = await mk.pool(alice, ["10.16.0.0/16"], default_prefixlen=24)
    v6 = await mk.pool(alice, ["2001:db8:120::/48"], default_prefixlen=64)

    scoped_net = new_id()
    await mk.subnet(alice, s_a, network=scoped_net)
    # a: scoped network, pool unscoped or in another scope
    await fails(mk.subnet(alice, unscoped, network=scoped_net), 400, "NetworkAddressScopeAffinityError")
    await fails(mk.subnet(alice, t_a, network=scoped_net), 400, "NetworkAddressScopeAffinityError")
    # b: another pool of the same scope is fine
    assert (await mk.subnet(alice, s_b, network=scoped_net)).address_scope_id == s.id
    # c: scoped network, no pool
    await fails(mk.subnet(alice, cidr="10.99.0.0/24", network=scoped_net), 400, "NetworkSubnetPoolAffinityError")
    # f: the other family is independent
    assert (await mk.subnet(alice, v6, network=scoped_net)).ip_version == 6

    plain_net = new_id()
    await mk.subnet(alice, cidr="10.98.0.0/24", network=plain_net)
    # d: unscoped network, a pool while another subnet has no pool (or another pool)
    await fails(mk.subnet(alice, unscoped, network=plain_net), 400, "NetworkSubnetPoolAffinityError")
    pooled_net = new_id()
    await mk.subnet(alice, unscoped, network=pooled_net)
    await fails(mk.subnet(alice, unscoped2, network=pooled_net), 400, "NetworkSubnetPoolAffinityError")
    # ... a second subnet from the same unscoped pool is fine
    assert (await mk.subnet(alice, unscoped, network=pooled_net)).cidr == "10.15.1.0/24"
    # e: unscoped network with a pooled subnet, then a plain cidr
    await fails(mk.subnet(alice, cidr="10.97.0.0/24", network=pooled_net), 400, "NetworkSubnetPoolAffinityError")
    # and a plain network takes more plain subnets
    assert (await mk.subnet(alice, cidr="10.98.1.0/24", network=plain_net)).subnetpool_id is None


async def test_use_default_subnetpool(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    async with sole_default(ipam, 4, shared=True, prefixes=["10.17.0.0/16"]) as default:
        sub = await mk.subnet(alice, version=4, use_default_subnetpool=True)
        assert (sub.subnetpool_id, sub.cidr) == (default.id, "10.17.0.0/26")
        specific = await mk.subnet(alice, version=4, use_default_subnetpool=True, cidr="10.17.5.0/24")
        assert (specific.subnetpool_id, specific.cidr) == (default.id, "10.17.5.0/24")
        await fails(
            mk.subnet(alice, version=4, use_default_subnetpool=True, cidr="10.18.0.0/24"), 409, "SubnetAllocationError"
        )
        # a cidr without any pool flag does not use the default pool
        assert (await mk.subnet(alice, cidr="10.17.6.0/24")).subnetpool_id is None
        for s in (sub, specific):
            await ipam("subnet.release", alice, id=str(s.id))
    # a default that is not shared is invisible to projects
    async with sole_default(ipam, 4, shared=False, prefixes=["10.19.0.0/16"]):
        err = await fails(
            mk.subnet(alice, version=4, use_default_subnetpool=True), 400, "BadRequest", "use_default_subnetpool"
        )
        assert "No default subnetpool found for IPv4" in err.message
        assert (await mk.subnet(ADMIN, version=4, use_default_subnetpool=True)).cidr == "10.19.0.0/26"


async def test_idempotent_retry(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.20.0.0/16"], default_prefixlen=24)
    request = mk.subnet_request(alice, new_id(), 4, None, {"subnetpool_id": str(pool.id)})
    first = (await ipam("subnet.allocate", alice, **request)).subnet
    again = (await ipam("subnet.allocate", alice, **request)).subnet
    assert again == first
    assert first.cidr == "10.20.0.0/24"
    # concurrent retries of the same request agree, and take one block only
    request2 = mk.subnet_request(alice, new_id(), 4, None, {"subnetpool_id": str(pool.id)})
    replies = await asyncio.gather(*(ipam("subnet.allocate", alice, **request2) for _ in range(5)))
    assert {r.subnet.cidr for r in replies} == {"10.20.1.0/24"}
    # the same subnet id with another request is a conflict, and changes nothing
    for change in ({"prefixlen": 25}, {"network_id": new_id()}, {"cidr": "10.20.9.0/24"}):
        await fails(ipam("subnet.allocate", alice, **{**request, **change}), 409, "SubnetInUse")
    assert (await ipam("subnet.get", alice, id=request["subnet_id"])).subnet == first
    assert (await mk.subnet(alice, pool)).cidr == "10.20.2.0/24"
    # a retry in the same batch as other requests
    request3 = mk.subnet_request(alice, new_id(), 4, None, {"subnetpool_id": str(pool.id)})
    mixed = await asyncio.gather(
        *(ipam("subnet.allocate", alice, **request3) for _ in range(3)),
        *(mk.subnet(alice, pool) for _ in range(3)),
    )
    cidrs = [r.subnet.cidr for r in mixed[:3]] + [s.cidr for s in mixed[3:]]
    assert len(set(cidrs[:3])) == 1 and len(set(cidrs[2:])) == 4
    assert sorted(set(cidrs)) == [f"10.20.{i}.0/24" for i in range(3, 7)]
    # the same holds for a plain subnet
    plain = mk.subnet_request(alice, new_id(), 4, None, {"cidr": "10.21.0.0/24"})
    assert (await ipam("subnet.allocate", alice, **plain)).subnet.cidr == "10.21.0.0/24"
    assert (await ipam("subnet.allocate", alice, **plain)).subnet.cidr == "10.21.0.0/24"
    await fails(ipam("subnet.allocate", alice, **{**plain, "cidr": "10.21.1.0/24"}), 409, "SubnetInUse")


async def test_concurrent_allocations_are_distinct(mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.22.0.0/22"], default_prefixlen=26)
    subs = await asyncio.gather(*(mk.subnet(alice, pool) for _ in range(16)))
    assert sorted(s.cidr for s in subs) == sorted(f"10.22.{i // 4}.{(i % 4) * 64}/26" for i in range(16))
    await fails(mk.subnet(alice, pool), 409, "SubnetAllocationError")


async def test_release(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.23.0.0/24"], default_prefixlen=25)
    a, b = await mk.subnet(alice, pool), await mk.subnet(alice, pool)
    assert (a.cidr, b.cidr) == ("10.23.0.0/25", "10.23.0.128/25")
    assert (await ipam("subnet.release", alice, id=str(a.id))).id == a.id
    await fails(ipam("subnet.get", alice, id=str(a.id)), 404, "SubnetNotFound")
    assert (await ipam("subnet.release", alice, id=str(a.id))).id == a.id  # idempotent
    assert (await mk.subnet(alice, pool)).cidr == "10.23.0.0/25"  # the space came back
    await fails(ipam("subnet.get", alice, id=new_id()), 404, "SubnetNotFound")
