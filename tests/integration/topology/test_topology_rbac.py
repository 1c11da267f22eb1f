"""Network RBAC (``access_as_shared``, ``access_as_external``): rules 63 and 65 of docs/neutron.md#sharing-and-rbac
applied to networks (scope and pool RBAC are IPAM's)."""

from __future__ import annotations

from tests.integration.conftest import ADMIN, fails
from tests.integration.topology.conftest import Build, Topo, project


def _rbac(net: object, action: str, target: str) -> dict[str, str]:
    return {"object_type": "network", "object_id": str(net.id), "action": action, "target_tenant": target}  # type: ignore[attr-defined]


async def test_sharing_a_network_with_one_project(topo: Topo, mk: Build) -> None:
    alice, bob, carol = project(), project(), project()
    net = await mk.network(alice)
    await mk.subnet(alice, net, cidr="10.110.0.0/24")
    await fails(topo("network.get", bob, id=str(net.id)), 404, "NetworkNotFound")
    await fails(
        topo("rbac_policy.create", alice, rbac_policy=_rbac(net, "access_as_shared", "*")), 403, "PolicyNotAuthorized"
    )
    await fails(
        topo("rbac_policy.create", alice, rbac_policy=_rbac(net, "access_as_shared", "bob")),
        400,
        "BadRequest",
        "target_tenant",
    )
    await fails(
        topo("rbac_policy.create", bob, rbac_policy=_rbac(net, "access_as_shared", bob.project_id)),
        404,
        "NetworkNotFound",
    )
    entry = (
        await topo("rbac_policy.create", alice, rbac_policy=_rbac(net, "access_as_shared", bob.project_id))
    ).rbac_policy
    assert (entry.object_type, entry.target_tenant, entry.project_id) == ("network", bob.project_id, alice.project_id)
    await fails(
        topo("rbac_policy.create", alice, rbac_policy=_rbac(net, "access_as_shared", bob.project_id)),
        409,
        "DuplicateEntry",
    )
    seen = (await topo("network.get", bob, id=str(net.id))).network
    assert seen.shared is True
    assert (await topo("network.get", alice, id=str(net.id))).network.shared is False  # relative to the caller
    await fails(topo("network.get", carol, id=str(net.id)), 404, "NetworkNotFound")
    port = await mk.port(bob, net)
    # rule 65: bob depends on the entry while he has a port there
    await fails(topo("rbac_policy.delete", alice, id=str(entry.id)), 409, "RbacPolicyInUse")
    await fails(
        topo("rbac_policy.update", alice, id=str(entry.id), target_tenant=carol.project_id), 409, "RbacPolicyInUse"
    )
    await topo("port.delete", bob, id=str(port.id))
    moved = (await topo("rbac_policy.update", alice, id=str(entry.id), target_tenant=carol.project_id)).rbac_policy
    assert moved.target_tenant == carol.project_id
    await fails(topo("network.get", bob, id=str(net.id)), 404, "NetworkNotFound")
    await topo("rbac_policy.delete", alice, id=str(entry.id))
    assert [e.id for e in (await topo("rbac_policy.list", alice)).rbac_policies if e.object_id == net.id] == []


async def test_shared_and_external_flags_are_wildcard_entries(topo: Topo, mk: Build) -> None:
    bob = project()
    net = await mk.network(ADMIN, shared=True)
    entries = (await topo("rbac_policy.list", ADMIN, filters={"object_id": str(net.id)})).rbac_policies
    assert [(e.action, e.target_tenant) for e in entries] == [("access_as_shared", "*")]
    await mk.subnet(ADMIN, net, cidr="10.111.0.0/24")
    await mk.port(bob, net)
    await fails(topo("network.update", ADMIN, id=str(net.id), network={"shared": False}), 409, "RbacPolicyInUse")
    ext = await mk.network(ADMIN, **{"router:external": True})
    await mk.subnet(ADMIN, ext, cidr="192.0.9.0/24")
    assert (await topo("network.get", bob, id=str(ext.id))).network.router_external is True  # visible, not shared
    assert (await topo("network.get", bob, id=str(ext.id))).network.shared is False
    await fails(mk.port(bob, ext), 403, "PolicyNotAuthorized")
    r = await mk.router(bob, external_gateway_info={"network_id": str(ext.id)})
    await fails(
        topo("network.update", ADMIN, id=str(ext.id), network={"router:external": False}), 409, "RbacPolicyInUse"
    )
    await topo("router.delete", bob, id=str(r.id))
    internal = (await topo("network.update", ADMIN, id=str(ext.id), network={"router:external": False})).network
    assert internal.router_external is False
    await fails(topo("network.get", bob, id=str(ext.id)), 404, "NetworkNotFound")
