"""RBAC for address scopes and subnet pools over NATS (rules 63-66, docs/neutron.md#sharing-and-rbac)."""

from __future__ import annotations

from tests.integration.conftest import ADMIN, Ipam, IpamFixtures, fails, new_id, project


async def test_create_rules(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    scope = await mk.scope(alice)
    pool = await mk.pool(alice, ["10.50.0.0/16"])
    await fails(mk.share(alice, "address_scope", scope.id, "*"), 403, "PolicyNotAuthorized", "target_tenant")
    for bad in ("bob", "", "12345"):
        await fails(mk.share(alice, "subnetpool", pool.id, bad), 400, "BadRequest", "target_tenant")
    await fails(
        ipam.unchecked(
            "rbac_policy.create",
            alice,
            rbac_policy={"object_type": "network", "object_id": str(pool.id), "action": "access_as_shared"},
        ),
        400,
        "HTTPBadRequest",
        "rbac_policy.object_type",
    )
    await fails(
        ipam.unchecked(
            "rbac_policy.create",
            alice,
            rbac_policy={
                "object_type": "subnetpool",
                "object_id": str(pool.id),
                "action": "access_as_external",
                "target_tenant": bob.project_id,
            },
        ),
        400,
        "HTTPBadRequest",
        "rbac_policy.action",
    )
    await fails(mk.share(bob, "subnetpool", pool.id, bob.project_id), 404, "SubnetPoolNotFound")
    await fails(mk.share(alice, "address_scope", new_id(), bob.project_id), 404, "AddressScopeNotFound")

    entry = await mk.share(alice, "subnetpool", pool.id, bob.project_id)
    assert (entry.project_id, entry.target_tenant, entry.target_project) == (
        alice.project_id,
        bob.project_id,
        bob.project_id,
    )
    await fails(mk.share(alice, "subnetpool", pool.id, bob.project_id), 409, "DuplicateEntry")
    # Bob now sees the pool, but may not share what he does not own
    assert (await ipam("subnetpool.get", bob, id=str(pool.id))).subnetpool.shared is True
    carol = project()
    err = await fails(mk.share(bob, "subnetpool", pool.id, carol.project_id), 400, "InvalidInput")
    assert "do not own" in err.message
    # admin may share anyone's object, with everyone
    wildcard = await mk.share(ADMIN, "address_scope", scope.id, "*")
    assert wildcard.project_id == alice.project_id  # the entry belongs to the object's owner
    assert (await ipam("address_scope.get", carol, id=str(scope.id))).address_scope.shared is True


async def test_shared_is_relative_to_the_caller(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob, carol = project(), project(), project()
    scope = await mk.scope(alice, 6)
    await mk.share(alice, "address_scope", scope.id, bob.project_id)
    assert (await ipam("address_scope.get", alice, id=str(scope.id))).address_scope.shared is False
    assert (await ipam("address_scope.get", bob, id=str(scope.id))).address_scope.shared is True
    await fails(ipam("address_scope.get", carol, id=str(scope.id)), 404, "AddressScopeNotFound")
    for ctx, shared in ((bob, True), (alice, False)):
        listed = (await ipam("address_scope.list", ctx, filters={"shared": shared})).address_scopes
        assert scope.id in {s.id for s in listed}
        listed = (await ipam("address_scope.list", ctx, filters={"shared": not shared})).address_scopes
        assert scope.id not in {s.id for s in listed}
    # and Bob may now put a pool in it
    pool = await mk.pool(bob, ["2001:db8:500::/48"], address_scope_id=scope.id)
    assert pool.address_scope_id == scope.id


async def test_sharing_a_scoped_pool_needs_scope_access(ipam: Ipam, mk: IpamFixtures) -> None:
    """Rule 64."""
    alice, bob, carol = project(), project(), project()
    scope = await mk.scope(alice)
    pool = await mk.pool(alice, ["10.51.0.0/16"], address_scope_id=scope.id)
    err = await fails(mk.share(alice, "subnetpool", pool.id, bob.project_id), 400, "InvalidInput", "target_tenant")
    assert str(scope.id) in err.message
    await mk.share(alice, "address_scope", scope.id, bob.project_id)
    entry = await mk.share(alice, "subnetpool", pool.id, bob.project_id)
    # re-targeting to a project without scope access is refused the same way
    await fails(
        ipam("rbac_policy.update", alice, id=str(entry.id), target_tenant=carol.project_id), 400, "InvalidInput"
    )
    # a pool in a scope shared with everyone can be shared with anyone
    open_scope = await mk.scope(ADMIN, shared=True)
    open_pool = await mk.pool(alice, ["10.52.0.0/16"], address_scope_id=open_scope.id)
    assert (await mk.share(alice, "subnetpool", open_pool.id, carol.project_id)).target_tenant == carol.project_id


async def test_entries_in_use_cannot_go(ipam: Ipam, mk: IpamFixtures) -> None:
    """Rule 65: removing or re-targeting an entry a project depends on is 409 RbacPolicyInUse."""
    alice, bob, carol = project(), project(), project()
    scope = await mk.scope(alice)
    to_bob = await mk.share(alice, "address_scope", scope.id, bob.project_id)
    to_alice = await mk.share(ADMIN, "address_scope", scope.id, alice.project_id)  # the owner itself
    bobs_pool = await mk.pool(bob, ["10.53.0.0/16"], address_scope_id=scope.id, default_prefixlen=24)
    await fails(ipam("rbac_policy.delete", alice, id=str(to_bob.id)), 409, "RbacPolicyInUse")
    await fails(
        ipam("rbac_policy.update", alice, id=str(to_bob.id), target_tenant=carol.project_id), 409, "RbacPolicyInUse"
    )
    await ipam("rbac_policy.delete", alice, id=str(to_alice.id))  # never blocked

    # a pool: the dependants are the projects with subnets from it
    pool = await mk.pool(alice, ["10.54.0.0/16"], default_prefixlen=24)
    pool_to_carol = await mk.share(alice, "subnetpool", pool.id, carol.project_id)
    sub = await mk.subnet(carol, pool)
    await fails(ipam("rbac_policy.delete", ADMIN, id=str(pool_to_carol.id)), 409, "RbacPolicyInUse")
    # a wildcard entry covers the targeted one; then the wildcard itself is the one in use
    wildcard = await mk.share(ADMIN, "subnetpool", pool.id, "*")
    await ipam("rbac_policy.delete", alice, id=str(pool_to_carol.id))
    await fails(ipam("rbac_policy.delete", ADMIN, id=str(wildcard.id)), 409, "RbacPolicyInUse")
    # ... unless every dependant keeps access through a targeted entry
    await mk.share(alice, "subnetpool", pool.id, carol.project_id)
    await ipam("rbac_policy.delete", ADMIN, id=str(wildcard.id))
    assert (await ipam("subnetpool.get", carol, id=str(pool.id))).subnetpool.shared is True
    # once the dependants are gone, so is the block
    await ipam("subnet.release", carol, id=str(sub.id))
    await ipam("subnetpool.delete", bob, id=str(bobs_pool.id))
    await ipam("rbac_policy.delete", alice, id=str(to_bob.id))
    await fails(ipam("address_scope.get", bob, id=str(scope.id)), 404, "AddressScopeNotFound")


async def test_scope_wildcard_removal_and_retarget(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob, carol = project(), project(), project()
    scope = await mk.scope(alice)
    wildcard = await mk.share(ADMIN, "address_scope", scope.id, "*")
    await mk.pool(bob, ["10.55.0.0/16"], address_scope_id=scope.id)
    await fails(ipam("rbac_policy.delete", ADMIN, id=str(wildcard.id)), 409, "RbacPolicyInUse")
    to_carol = await mk.share(alice, "address_scope", scope.id, carol.project_id)
    # a targeted entry may go while the wildcard stays; re-targeting it is fine too
    moved = await ipam("rbac_policy.update", alice, id=str(to_carol.id), target_tenant=bob.project_id)
    assert moved.rbac_policy.target_tenant == bob.project_id
    await fails(ipam("rbac_policy.update", alice, id=str(to_carol.id), target_tenant="*"), 403, "PolicyNotAuthorized")
    await ipam("rbac_policy.delete", ADMIN, id=str(wildcard.id))  # Bob keeps access through his entry
    assert (await ipam("address_scope.get", bob, id=str(scope.id))).address_scope.shared is True
    await fails(ipam("address_scope.get", carol, id=str(scope.id)), 404, "AddressScopeNotFound")


async def test_read_and_list(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    pool = await mk.pool(alice, ["10.56.0.0/16"])
    entry = await mk.share(alice, "subnetpool", pool.id, bob.project_id)
    assert (await ipam("rbac_policy.get", alice, id=str(entry.id))).rbac_policy == entry
    assert (await ipam("rbac_policy.get", ADMIN, id=str(entry.id))).rbac_policy == entry
    await fails(ipam("rbac_policy.get", bob, id=str(entry.id)), 404, "RbacPolicyNotFound")
    await fails(ipam("rbac_policy.delete", bob, id=str(entry.id)), 404, "RbacPolicyNotFound")
    await fails(ipam("rbac_policy.get", alice, id=new_id()), 404, "RbacPolicyNotFound")
    assert [p.id for p in (await ipam("rbac_policy.list", alice)).rbac_policies] == [entry.id]
    assert (await ipam("rbac_policy.list", bob)).rbac_policies == []
    await ipam("rbac_policy.delete", alice, id=str(entry.id))
    await fails(ipam("subnetpool.get", bob, id=str(pool.id)), 404, "SubnetPoolNotFound")
