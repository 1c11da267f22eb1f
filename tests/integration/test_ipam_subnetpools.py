"""Subnet pool create, update and delete over NATS (docs/neutron.md#subnet-pools)."""

from __future__ import annotations

import asyncio
from typing import Any

from scopenet.contracts.errors import DomainError
from tests.integration.conftest import ADMIN, Ipam, IpamFixtures, fails, new_id, own, project, sole_default, uniq


async def test_create_defaults_compaction_and_sorting(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.0.1.0/24", "192.168.7.9/24", "10.0.0.0/24", "10.1.2.3/16"])
    # adjacent blocks merge, host bits are dropped, the list is sorted by address
    assert pool.prefixes == ["10.0.0.0/23", "10.1.0.0/16", "192.168.7.0/24"]
    assert (pool.ip_version, pool.min_prefixlen, pool.max_prefixlen, pool.default_prefixlen) == (4, 8, 32, 8)
    assert (pool.default_quota, pool.address_scope_id, pool.is_default, pool.shared) == (None, None, False, False)
    assert pool.project_id == pool.tenant_id == alice.project_id
    assert (pool.revision_number, pool.description, pool.tags) == (0, "", [])

    v6 = await mk.pool(alice, ["2001:db8:1::/48", "2001:db8::/48"], description="d", tags=["a", "b"])
    assert v6.prefixes == ["2001:db8::/47"]
    assert (v6.ip_version, v6.min_prefixlen, v6.max_prefixlen, v6.default_prefixlen) == (6, 64, 128, 64)
    assert (v6.description, v6.tags) == ("d", ["a", "b"])
    assert (await ipam("subnetpool.get", alice, id=str(v6.id))).subnetpool == v6
    listed = (await ipam("subnetpool.list", alice, filters={"ip_version": 6, **own(alice)})).subnetpools
    assert [p.id for p in listed] == [v6.id]


async def test_create_validation(ipam: Ipam) -> None:
    alice = project()
    call = ipam.unchecked

    async def bad(body: dict[str, Any], type_: str, field: str) -> None:
        await fails(call("subnetpool.create", alice, subnetpool=body), 400, type_, field)

    await bad({"prefixes": ["10.0.0.0/8"]}, "HTTPBadRequest", "subnetpool.name")
    await bad({"name": "", "prefixes": ["10.0.0.0/8"]}, "HTTPBadRequest", "subnetpool.name")
    await bad({"name": "   ", "prefixes": ["10.0.0.0/8"]}, "HTTPBadRequest", "subnetpool.name")
    await bad({"name": "p"}, "HTTPBadRequest", "subnetpool.prefixes")
    await bad({"name": "p", "prefixes": "10.0.0.0/8"}, "HTTPBadRequest", "subnetpool.prefixes")
    await bad({"name": "p", "prefixes": []}, "EmptySubnetPoolPrefixList", "prefixes")
    await bad({"name": "p", "prefixes": ["10.0.0.0/8", "10.0.0.0/8"]}, "InvalidInput", "prefixes")
    await bad({"name": "p", "prefixes": ["10.0.0.0/33"]}, "InvalidInput", "prefixes")
    await bad({"name": "p", "prefixes": ["10.0.0.0"]}, "InvalidInput", "prefixes")
    await bad({"name": "p", "prefixes": ["banana/8"]}, "InvalidInput", "prefixes")
    await bad({"name": "p", "prefixes": ["10.0.0.0/8", "2001:db8::/32"]}, "PrefixVersionMismatch", "prefixes")
    for key in ("min_prefixlen", "max_prefixlen", "default_prefixlen", "default_quota"):
        await bad({"name": "p", "prefixes": ["10.0.0.0/8"], key: -1}, "HTTPBadRequest", f"subnetpool.{key}")
        await bad({"name": "p", "prefixes": ["10.0.0.0/8"], key: "x"}, "HTTPBadRequest", f"subnetpool.{key}")
    await bad(
        {"name": "p", "prefixes": ["10.0.0.0/8"], "address_scope_id": "nope"},
        "HTTPBadRequest",
        "subnetpool.address_scope_id",
    )
    await bad({"name": "p", "prefixes": ["10.0.0.0/8"], "ip_version": 4}, "HTTPBadRequest", "subnetpool.ip_version")
    assert (await ipam("subnetpool.list", alice, filters=own(alice))).subnetpools == []


async def test_prefix_bounds(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()

    async def bounds(prefixes: list[str], field: str, **kw: int) -> None:
        await fails(mk.pool(alice, prefixes, **kw), 400, "IllegalSubnetPoolPrefixBounds", field)

    await bounds(["10.0.0.0/8"], "min_prefixlen", min_prefixlen=25, max_prefixlen=24)
    await bounds(["10.0.0.0/8"], "max_prefixlen", max_prefixlen=33)
    await bounds(["2001:db8::/32"], "max_prefixlen", max_prefixlen=129)
    await bounds(["10.0.0.0/8"], "default_prefixlen", min_prefixlen=16, default_prefixlen=12)
    await bounds(["10.0.0.0/8"], "default_prefixlen", max_prefixlen=24, default_prefixlen=26)
    assert (await ipam("subnetpool.list", alice, filters=own(alice))).subnetpools == []


async def test_min_prefixlen_zero_works(mk: IpamFixtures) -> None:
    """docs/neutron.md#min_prefixlen-0-works: Neutron answered 500 here."""
    pool = await mk.pool(project(), ["10.0.0.0/8"], min_prefixlen=0)
    assert (pool.min_prefixlen, pool.default_prefixlen, pool.max_prefixlen) == (0, 0, 32)
    v6 = await mk.pool(project(), ["2001:db8::/32"], min_prefixlen=0, default_prefixlen=48)
    assert (v6.min_prefixlen, v6.default_prefixlen, v6.max_prefixlen) == (0, 48, 128)


async def test_shared_and_default_need_admin(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    await fails(mk.pool(alice, ["10.0.0.0/8"], shared=True), 403, "PolicyNotAuthorized", "shared")
    await fails(mk.pool(alice, ["10.0.0.0/8"], is_default=True), 403, "PolicyNotAuthorized", "is_default")
    plain = await mk.pool(alice, ["10.0.0.0/8"], is_default=False)
    assert plain.is_default is False
    for value in (True, False):  # any is_default key on update
        await fails(
            ipam("subnetpool.update", alice, id=str(plain.id), subnetpool={"is_default": value}),
            403,
            "PolicyNotAuthorized",
        )
    await fails(mk.pool(alice, ["10.0.0.0/8"], project_id=bob.project_id), 400, "BadRequest", "project_id")
    shared = await mk.pool(ADMIN, ["10.0.0.0/8"], shared=True, project_id=bob.project_id)
    assert shared.project_id == bob.project_id
    seen = (await ipam("subnetpool.get", alice, id=str(shared.id))).subnetpool
    assert seen.shared is True
    await fails(
        ipam("subnetpool.update", alice, id=str(shared.id), subnetpool={"name": "x"}), 403, "PolicyNotAuthorized"
    )
    await fails(ipam("subnetpool.delete", alice, id=str(shared.id)), 403, "PolicyNotAuthorized")
    # read-only attributes are refused before anything else (rule 24), even on someone else's pool
    read_only: list[tuple[str, Any]] = [("shared", False), ("ip_version", 6), ("project_id", alice.project_id)]
    for key, value in [*read_only, ("id", new_id())]:
        await fails(
            ipam.unchecked("subnetpool.update", alice, id=str(shared.id), subnetpool={key: value}),
            400,
            "HTTPBadRequest",
            f"subnetpool.{key}",
        )


async def test_one_default_per_ip_version(ipam: Ipam, mk: IpamFixtures) -> None:
    async with sole_default(ipam, 4, shared=False, prefixes=["10.250.0.0/16"]) as default:
        assert default.is_default is True
        # every pool counts, even one the caller cannot see
        err = await fails(mk.pool(ADMIN, ["10.251.0.0/16"], is_default=True), 400, "InvalidInput", "is_default")
        assert "default subnetpool" in err.message
        other = await mk.pool(ADMIN, ["10.252.0.0/16"])
        await fails(
            ipam("subnetpool.update", ADMIN, id=str(other.id), subnetpool={"is_default": True}),
            400,
            "InvalidInput",
            "is_default",
        )
        # the default itself can be updated, is_default included
        again = await ipam("subnetpool.update", ADMIN, id=str(default.id), subnetpool={"is_default": True})
        assert again.subnetpool.is_default is True
        # the other family is independent
        async with sole_default(ipam, 6, shared=False, prefixes=["2001:db8:f000::/40"]) as v6:
            assert v6.is_default is True


async def test_update_only_grows_prefixes(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.10.0.0/24", "10.10.2.0/24"])

    async def put(prefixes: list[str]) -> Any:
        return await ipam("subnetpool.update", alice, id=str(pool.id), subnetpool={"prefixes": prefixes})

    await fails(put(["10.10.0.0/24"]), 400, "IllegalSubnetPoolPrefixUpdate", "prefixes")  # shrink
    await fails(put(["10.10.0.0/24", "10.20.0.0/24"]), 400, "IllegalSubnetPoolPrefixUpdate", "prefixes")  # replace
    await fails(put(["10.10.0.0/24", "10.10.2.0/24", "2001:db8::/64"]), 400, "PrefixVersionMismatch", "prefixes")
    await fails(put(["2001:db8::/64"]), 400, "PrefixVersionMismatch", "prefixes")
    grown = (await put(["10.10.0.0/24", "10.10.2.0/24", "10.10.1.0/24", "172.16.0.0/30"])).subnetpool
    assert grown.prefixes == ["10.10.0.0/23", "10.10.2.0/24", "172.16.0.0/30"]
    assert grown.revision_number == pool.revision_number + 1
    covering = (await put(["10.0.0.0/8", "172.16.0.0/30"])).subnetpool  # absorbs the old blocks
    assert covering.prefixes == ["10.0.0.0/8", "172.16.0.0/30"]
    assert covering.updated_at >= pool.updated_at


async def test_update_bounds_and_quota(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.11.0.0/16"], min_prefixlen=16, default_prefixlen=24, max_prefixlen=28)
    sub = await mk.subnet(alice, pool, prefixlen=28)
    assert sub.cidr == "10.11.0.0/28"

    async def put(**body: Any) -> Any:
        return (await ipam("subnetpool.update", alice, id=str(pool.id), subnetpool=body)).subnetpool

    await fails(put(min_prefixlen=29), 400, "IllegalSubnetPoolPrefixBounds", "min_prefixlen")
    await fails(put(default_prefixlen=12), 400, "IllegalSubnetPoolPrefixBounds", "default_prefixlen")
    await fails(put(max_prefixlen=20), 400, "IllegalSubnetPoolPrefixBounds", "default_prefixlen")
    await fails(put(max_prefixlen=33), 400, "IllegalSubnetPoolPrefixBounds", "max_prefixlen")
    # existing subnets are not re-checked (rule 26): a /28 stays under max 24, quota below usage is accepted
    changed = await put(max_prefixlen=24, default_quota=1, name=uniq("renamed"))
    assert (changed.max_prefixlen, changed.default_quota) == (24, 1)
    assert (await ipam("subnet.get", alice, id=str(sub.id))).subnet.cidr == "10.11.0.0/28"
    assert (await put(default_quota=0)).default_quota is None  # 0 means unlimited, as null does
    await fails(
        ipam("subnetpool.update", alice, id=str(pool.id), subnetpool={"name": "x"}, if_revision=0),
        412,
        "RevisionNumberConstraintFailed",
    )
    current = (await ipam("subnetpool.get", alice, id=str(pool.id))).subnetpool
    ok = await ipam(
        "subnetpool.update", alice, id=str(pool.id), subnetpool={"name": "y"}, if_revision=current.revision_number
    )
    assert ok.subnetpool.revision_number == current.revision_number + 1
    await fails(ipam("subnetpool.update", alice, id=new_id(), subnetpool={"name": "x"}), 404, "SubnetPoolNotFound")


async def test_scope_association_rules(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    private = await mk.scope(bob)
    v6_scope = await mk.scope(ADMIN, 6, shared=True)
    shared = await mk.scope(ADMIN, shared=True)

    await fails(mk.pool(alice, ["10.0.0.0/16"], address_scope_id=private.id), 404, "AddressScopeNotFound")  # invisible
    await fails(mk.pool(alice, ["10.0.0.0/16"], address_scope_id=new_id()), 404, "AddressScopeNotFound")
    await fails(
        mk.pool(alice, ["10.0.0.0/16"], address_scope_id=v6_scope.id),
        400,
        "IllegalSubnetPoolIpVersionAssociationToAddressScope",
        "address_scope_id",
    )
    # a project may join an admin's shared scope
    alices = await mk.pool(alice, ["10.0.0.0/16"], address_scope_id=shared.id)
    assert alices.address_scope_id == shared.id
    # docs/neutron.md#overlap-is-checked-against-every-pool: Bob cannot see Alice's pool, and still may
    # not overlap it inside the scope
    await fails(ipam("subnetpool.get", bob, id=str(alices.id)), 404, "SubnetPoolNotFound")
    err = await fails(
        mk.pool(bob, ["10.0.128.0/17"], address_scope_id=shared.id), 409, "AddressScopePrefixConflict", "prefixes"
    )
    assert "10.0.0.0/16" in err.message
    await fails(
        mk.pool(bob, ["9.0.0.0/8", "10.0.0.0/8"], address_scope_id=shared.id), 409, "AddressScopePrefixConflict"
    )
    bobs = await mk.pool(bob, ["10.1.0.0/16"], address_scope_id=shared.id)
    # outside any scope, overlap is free (docs/neutron.md#the-unscoped-space)
    free = await mk.pool(bob, ["10.0.0.0/16"])
    assert free.address_scope_id is None
    # another scope is another overlap domain
    mine = await mk.scope(bob)
    assert (await mk.pool(bob, ["10.0.0.0/16"], address_scope_id=mine.id)).address_scope_id == mine.id
    # growing into the neighbour's space is a conflict as well (rule 29), as admin too
    await fails(
        ipam("subnetpool.update", ADMIN, id=str(bobs.id), subnetpool={"prefixes": ["10.0.0.0/15"]}),
        409,
        "AddressScopePrefixConflict",
    )


async def test_pool_in_foreign_scope_is_frozen_for_its_owner(ipam: Ipam, mk: IpamFixtures) -> None:
    """Rule 28: only admin or the scope's owner may change a pool inside a scope.

    docs/neutron.md#pools-in-a-foreign-scope
    """
    bob = project()
    scope = await mk.scope(ADMIN, shared=True)
    pool = await mk.pool(bob, ["10.60.0.0/16"], address_scope_id=scope.id)
    for body in ({"name": "x"}, {"description": "d"}, {"address_scope_id": None}, {"prefixes": ["10.60.0.0/15"]}):
        await fails(ipam("subnetpool.update", bob, id=str(pool.id), subnetpool=body), 400, "IllegalSubnetPoolUpdate")
    await fails(
        ipam("subnetpool.add_prefixes", bob, id=str(pool.id), prefixes=["10.62.0.0/16"]),
        400,
        "IllegalSubnetPoolUpdate",
    )
    await fails(
        ipam("subnetpool.remove_prefixes", bob, id=str(pool.id), prefixes=["10.60.0.0/17"]),
        400,
        "IllegalSubnetPoolUpdate",
    )
    assert (await ipam("subnetpool.get", bob, id=str(pool.id))).subnetpool.prefixes == ["10.60.0.0/16"]
    # the scope's owner (here admin) can; the pool's owner can still delete it
    name = uniq("admin-renamed")
    assert (await ipam("subnetpool.update", ADMIN, id=str(pool.id), subnetpool={"name": name})).subnetpool.name == name
    await ipam("subnetpool.delete", bob, id=str(pool.id))
    # a pool in the owner's own scope is the owner's to change
    own_scope = await mk.scope(bob)
    own = await mk.pool(bob, ["10.61.0.0/16"], address_scope_id=own_scope.id)
    moved = await ipam("subnetpool.update", bob, id=str(own.id), subnetpool={"address_scope_id": None})
    assert moved.subnetpool.address_scope_id is None


async def test_rescoping(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    s1, s2 = await mk.scope(alice), await mk.scope(alice)
    v6 = await mk.scope(alice, 6)
    pool = await mk.pool(alice, ["10.70.0.0/16"], address_scope_id=s1.id, default_prefixlen=24)
    sub = await mk.subnet(alice, pool)
    assert sub.address_scope_id == s1.id

    async def put(scope_id: Any) -> Any:
        body = {"address_scope_id": str(scope_id) if scope_id else None}
        return (await ipam("subnetpool.update", alice, id=str(pool.id), subnetpool=body)).subnetpool

    await fails(put(v6.id), 400, "IllegalSubnetPoolIpVersionAssociationToAddressScope")
    await fails(put(new_id()), 404, "AddressScopeNotFound")
    await fails(put((await mk.scope(project())).id), 404, "AddressScopeNotFound")
    # a pool of s2 holds the same space: moving there would overlap
    blocker = await mk.pool(alice, ["10.70.128.0/17"], address_scope_id=s2.id)
    await fails(put(s2.id), 409, "AddressScopePrefixConflict")
    await ipam("subnetpool.delete", alice, id=str(blocker.id))

    # the subnet's scope follows its pool (get and list)
    assert (await put(s2.id)).address_scope_id == s2.id
    assert (await ipam("subnet.get", alice, id=str(sub.id))).subnet.address_scope_id == s2.id
    assert (await put(None)).address_scope_id is None
    listed = (await ipam("subnet.list", alice, filters={"id": str(sub.id)})).subnets
    assert [s.address_scope_id for s in listed] == [None]
    assert (await put(s1.id)).address_scope_id == s1.id
    assert (await ipam("subnet.get", alice, id=str(sub.id))).subnet.address_scope_id == s1.id
    # the rescoped pool's allocations now block its prefixes in the new scope
    await fails(mk.pool(alice, ["10.70.0.0/24"], address_scope_id=s1.id), 409, "AddressScopePrefixConflict")


async def test_rescoping_blocked_by_network_affinity(ipam: Ipam, mk: IpamFixtures) -> None:
    """Rule 29: a network with subnets from two pools of one scope pins both pools to it.
    Other updates of those pools (a rename) are fine: docs/neutron.md#affinity-is-checked-only-when-the-scope-changes
    """
    alice = project()
    scope, other = await mk.scope(alice), await mk.scope(alice)
    p1 = await mk.pool(alice, ["10.80.0.0/16"], address_scope_id=scope.id, default_prefixlen=24)
    p2 = await mk.pool(alice, ["10.81.0.0/16"], address_scope_id=scope.id, default_prefixlen=24)
    net = new_id()
    await mk.subnet(alice, p1, network=net)
    await mk.subnet(alice, p2, network=net)
    for target in (str(other.id), None):
        await fails(
            ipam("subnetpool.update", alice, id=str(p1.id), subnetpool={"address_scope_id": target}),
            400,
            "NetworkAddressScopeAffinityError",
        )
    name = uniq("renamed")
    assert (await ipam("subnetpool.update", alice, id=str(p1.id), subnetpool={"name": name})).subnetpool.name == name
    grown = await ipam("subnetpool.add_prefixes", alice, id=str(p1.id), prefixes=["10.82.0.0/16"])
    assert grown.prefixes == ["10.80.0.0/16", "10.82.0.0/16"]


async def test_delete_with_subnets_of_any_project(ipam: Ipam, mk: IpamFixtures) -> None:
    """Rule 38, every project counting: Bob's subnet, invisible to Alice, keeps Alice's pool alive.

    docs/neutron.md#in-use-checks-see-every-project
    """
    alice, bob = project(), project()
    pool = await mk.pool(alice, ["10.90.0.0/16"], default_prefixlen=24)
    await mk.share(alice, "subnetpool", pool.id, bob.project_id)
    sub = await mk.subnet(bob, pool)
    err = await fails(ipam("subnetpool.delete", alice, id=str(pool.id)), 400, "SubnetPoolDeleteError")
    assert "existing allocations" in err.message
    await fails(ipam("subnetpool.delete", ADMIN, id=str(pool.id)), 400, "SubnetPoolDeleteError")
    await fails(ipam("subnetpool.delete", bob, id=str(pool.id)), 403, "PolicyNotAuthorized")
    await fails(ipam("subnetpool.delete", project(), id=str(pool.id)), 404, "SubnetPoolNotFound")
    await fails(
        ipam("subnetpool.delete", alice, id=str(pool.id), if_revision=pool.revision_number + 5),
        412,
        "RevisionNumberConstraintFailed",
    )
    await ipam("subnet.release", bob, id=str(sub.id))
    await ipam("subnetpool.delete", alice, id=str(pool.id), if_revision=pool.revision_number)
    await fails(ipam("subnetpool.get", alice, id=str(pool.id)), 404, "SubnetPoolNotFound")
    await fails(ipam("subnetpool.delete", alice, id=str(pool.id)), 404, "SubnetPoolNotFound")
    rbac = (await ipam("rbac_policy.list", alice, filters={"object_id": str(pool.id)})).rbac_policies
    assert rbac == []  # rule 66: its RBAC entries went with it


async def test_usage(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    pool = await mk.pool(alice, ["10.95.0.0/24", "10.96.0.0/25"], default_prefixlen=26)
    await mk.subnet(alice, pool)
    await mk.subnet(alice, pool)
    usages = {u.subnetpool_id: u for u in (await ipam("subnetpool.usage", alice)).usages}
    u = usages[pool.id]
    assert (u.total_ips, u.used_ips, u.subnet_count, u.ip_version) == (384, 128, 2, 4)


async def test_concurrent_claims(ipam: Ipam, mk: IpamFixtures) -> None:
    """Races end the way the serial case does: one winner, the others get the same refusal."""
    scope = await mk.scope(ADMIN, shared=True)
    results = await asyncio.gather(
        *(mk.pool(project(), ["10.120.0.0/16"], address_scope_id=scope.id) for _ in range(6)),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert {(e.code, e.type) for e in lost if isinstance(e, DomainError)} == {(409, "AddressScopePrefixConflict")}
    assert len(lost) == 5

    async with sole_default(ipam, 4, shared=False, prefixes=["10.121.0.0/16"]) as mine:
        await ipam("subnetpool.update", ADMIN, id=str(mine.id), subnetpool={"is_default": False})
        results = await asyncio.gather(
            *(mk.pool(ADMIN, [f"10.{122 + i}.0.0/16"], is_default=True) for i in range(4)), return_exceptions=True
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        for pool in won:
            await ipam("subnetpool.update", ADMIN, id=str(pool.id), subnetpool={"is_default": False})
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1
        assert {(e.code, e.type) for e in lost if isinstance(e, DomainError)} == {(400, "InvalidInput")}
        assert len(lost) == 3
