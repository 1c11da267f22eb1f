"""Address scopes over NATS (docs/neutron.md#address-scopes)."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import ADMIN, Ipam, IpamFixtures, fails, new_id, own, project, uniq


async def test_create_defaults_and_visibility(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    scope = (await ipam("address_scope.create", alice, address_scope={"ip_version": 6})).address_scope
    assert (scope.name, scope.shared, scope.ip_version) == ("", False, 6)
    assert scope.project_id == scope.tenant_id == alice.project_id
    assert scope.mark_id >= 1025  # 1024 is "no scope"
    other = await mk.scope(alice)
    assert other.mark_id != scope.mark_id

    got = (await ipam("address_scope.get", alice, id=str(scope.id))).address_scope
    assert got == scope
    await fails(ipam("address_scope.get", bob, id=str(scope.id)), 404, "AddressScopeNotFound")
    await fails(ipam("address_scope.get", alice, id=new_id()), 404, "AddressScopeNotFound")
    assert (await ipam("address_scope.get", ADMIN, id=str(scope.id))).address_scope.id == scope.id

    mine = {s.id for s in (await ipam("address_scope.list", alice, filters=own(alice))).address_scopes}
    assert {scope.id, other.id} <= mine
    assert scope.id not in {s.id for s in (await ipam("address_scope.list", bob)).address_scopes}
    v6 = (await ipam("address_scope.list", alice, filters={"ip_version": 6, **own(alice)})).address_scopes
    assert scope.id in {s.id for s in v6} and other.id not in {s.id for s in v6}
    await fails(ipam("address_scope.list", alice, filters={"colour": "red"}), 400, "BadRequest", "colour")


async def test_create_validation(ipam: Ipam) -> None:
    alice = project()
    ipam = ipam.unchecked  # type: ignore[assignment]
    await fails(
        ipam("address_scope.create", alice, address_scope={"name": "x"}),
        400,
        "HTTPBadRequest",
        "address_scope.ip_version",
    )
    await fails(
        ipam("address_scope.create", alice, address_scope={"ip_version": 5}),
        400,
        "HTTPBadRequest",
        "address_scope.ip_version",
    )
    await fails(
        ipam("address_scope.create", alice, address_scope={"ip_version": 4, "id": new_id()}),
        400,
        "HTTPBadRequest",
        "address_scope.id",
    )
    await fails(
        ipam("address_scope.create", alice, address_scope={"ip_version": 4, "description": "d"}),
        400,
        "HTTPBadRequest",
        "address_scope.description",
    )
    for bad in (" lead", "trail ", "tab\there", "x" * 256):
        await fails(
            ipam("address_scope.create", alice, address_scope={"ip_version": 4, "name": bad}),
            400,
            "HTTPBadRequest",
            "address_scope.name",
        )
    names = {s.name for s in (await ipam("address_scope.list", alice, filters=own(alice))).address_scopes}
    assert names == set()  # nothing was written


async def test_sharing_is_admin_only(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    await fails(
        ipam("address_scope.create", alice, address_scope={"ip_version": 4, "shared": True}),
        403,
        "PolicyNotAuthorized",
        "shared",
    )
    scope = await mk.scope(alice)
    for value in (True, False):  # rule 10: any shared key from a non-admin
        await fails(
            ipam("address_scope.update", alice, id=str(scope.id), address_scope={"shared": value}),
            403,
            "PolicyNotAuthorized",
        )
    # admin: false on an unshared scope is a no-op, true shares it with everyone
    same = await ipam("address_scope.update", ADMIN, id=str(scope.id), address_scope={"shared": False})
    assert same.address_scope.shared is False
    await fails(ipam("address_scope.get", bob, id=str(scope.id)), 404, "AddressScopeNotFound")
    shared = await ipam("address_scope.update", ADMIN, id=str(scope.id), address_scope={"shared": True})
    assert shared.address_scope.shared is True
    assert (await ipam("address_scope.get", bob, id=str(scope.id))).address_scope.shared is True
    # rule 11: never unshared again, not even by admin
    err = await fails(
        ipam("address_scope.update", ADMIN, id=str(scope.id), address_scope={"shared": False}),
        400,
        "AddressScopeUpdateError",
    )
    assert "unshared" in err.message
    assert (await ipam("address_scope.get", bob, id=str(scope.id))).address_scope.shared is True


async def test_project_ids_on_create(ipam: Ipam) -> None:
    alice, bob = project(), project()
    await fails(
        ipam("address_scope.create", alice, address_scope={"ip_version": 4, "project_id": bob.project_id}),
        400,
        "BadRequest",
        "project_id",
    )
    await fails(
        ipam(
            "address_scope.create",
            ADMIN,
            address_scope={"ip_version": 4, "project_id": alice.project_id, "tenant_id": bob.project_id},
        ),
        400,
        "BadRequest",
        "project_id",
    )
    own = await ipam("address_scope.create", alice, address_scope={"ip_version": 4, "tenant_id": alice.project_id})
    assert own.address_scope.project_id == alice.project_id
    for_bob = await ipam("address_scope.create", ADMIN, address_scope={"ip_version": 4, "project_id": bob.project_id})
    assert for_bob.address_scope.project_id == bob.project_id
    assert (await ipam("address_scope.get", bob, id=str(for_bob.address_scope.id))).address_scope.shared is False


async def test_update_and_delete_permissions(ipam: Ipam, mk: IpamFixtures) -> None:
    alice, bob = project(), project()
    shared = await mk.scope(ADMIN, shared=True)
    private = await mk.scope(alice)
    # rule 12: a shared scope is readable, not writable, by others; an invisible one is not found
    await fails(
        ipam("address_scope.update", bob, id=str(shared.id), address_scope={"name": "mine"}), 403, "PolicyNotAuthorized"
    )
    await fails(ipam("address_scope.delete", bob, id=str(shared.id)), 403, "PolicyNotAuthorized")
    await fails(
        ipam("address_scope.update", bob, id=str(private.id), address_scope={"name": "mine"}),
        404,
        "AddressScopeNotFound",
    )
    await fails(ipam("address_scope.delete", bob, id=str(private.id)), 404, "AddressScopeNotFound")
    # the owner renames and deletes
    name = uniq("renamed")
    renamed = await ipam("address_scope.update", alice, id=str(private.id), address_scope={"name": name})
    assert renamed.address_scope.name == name
    assert renamed.address_scope.mark_id == private.mark_id
    await fails(
        ipam.unchecked("address_scope.update", alice, id=str(private.id), address_scope={"ip_version": 6}),
        400,
        "HTTPBadRequest",
        "address_scope.ip_version",
    )
    assert (await ipam("address_scope.delete", alice, id=str(private.id))).id == private.id
    await fails(ipam("address_scope.get", alice, id=str(private.id)), 404, "AddressScopeNotFound")
    await fails(ipam("address_scope.delete", alice, id=str(private.id)), 404, "AddressScopeNotFound")
    await fails(ipam("address_scope.delete", ADMIN, id=str(shared.id), if_revision=1), 400, "BadRequest", "If-Match")


async def test_delete_in_use_counts_every_project(ipam: Ipam, mk: IpamFixtures) -> None:
    """Rule 13, every project counting: a pool the caller cannot see still keeps the scope alive.

    docs/neutron.md#in-use-checks-see-every-project
    """
    alice, bob = project(), project()
    scope = await mk.scope(alice)
    await mk.share(alice, "address_scope", scope.id, bob.project_id)
    bobs_pool = await mk.pool(bob, ["10.40.0.0/16"], address_scope_id=scope.id)
    await fails(ipam("subnetpool.get", alice, id=str(bobs_pool.id)), 404, "SubnetPoolNotFound")
    await fails(ipam("address_scope.delete", alice, id=str(scope.id)), 409, "AddressScopeInUse")
    await fails(ipam("address_scope.delete", ADMIN, id=str(scope.id)), 409, "AddressScopeInUse")
    assert (await ipam("address_scope.get", bob, id=str(scope.id))).address_scope.id == scope.id

    await ipam("subnetpool.delete", bob, id=str(bobs_pool.id))
    await ipam("address_scope.delete", alice, id=str(scope.id))
    await fails(ipam("address_scope.get", bob, id=str(scope.id)), 404, "AddressScopeNotFound")
    # rule 66: its RBAC entries went with it
    assert not [
        p
        for p in (await ipam("rbac_policy.list", ADMIN, filters={"object_id": str(scope.id)})).rbac_policies
        if p.object_id == scope.id
    ]


async def test_admin_shared_scope_in_use_by_a_project_pool(ipam: Ipam, mk: IpamFixtures) -> None:
    bob = project()
    scope = await mk.scope(ADMIN, 6, shared=True)
    await mk.pool(bob, ["2001:db8:4000::/48"], address_scope_id=scope.id)
    err = await fails(ipam("address_scope.delete", ADMIN, id=str(scope.id)), 409, "AddressScopeInUse")
    assert str(scope.id) in err.message


async def test_concurrent_creates_all_get_a_mark(mk: IpamFixtures) -> None:
    """Every concurrent creator gets its own mark id: "lowest free" must not make them collide."""
    scopes = await asyncio.gather(*(mk.scope(project()) for _ in range(12)))
    assert len({s.mark_id for s in scopes}) == 12
