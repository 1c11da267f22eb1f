"""Pure rules of networks, network RBAC, subnets and ports: MTU bounds, visibility, who may create
or change what, when an RBAC entry may go, which ports keep a subnet, gateway changes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import Conflict, DomainError, InvalidInput, NotAuthorized, NotFound
from scopenet.services.topology.networks import rules as networks
from scopenet.services.topology.networks.rules import NetAccess
from scopenet.services.topology.ports import rules as ports
from scopenet.services.topology.rbac import rules as rbac
from scopenet.services.topology.subnets import rules as subnets

NET = uuid.UUID(int=1)
PORT = uuid.UUID(int=2)
ADMIN = CallContext(project_id="admin", roles=["admin"])
PROJECTS = ("a", "b", "c", "d")
projects = st.sampled_from(PROJECTS)


def ctx(project: str) -> CallContext:
    return CallContext(project_id=project)


# ---------------------------------------------------------------- networks


@given(st.integers(0, 9000), st.sets(st.sampled_from((4, 6))))
def test_mtu_conflict_exactly_below_each_version_minimum(mtu: int, versions: set[int]) -> None:
    too_small = (4 in versions and mtu < 68) or (6 in versions and mtu < 1280)
    err = networks.mtu_conflict(mtu, versions)
    assert (err is not None) == too_small
    if err is not None:
        assert err.type == "NetworkMTUSubnetConflict"


def test_network_create_and_update_attributes_for_admins_only() -> None:
    for body in (t.NetworkCreateBody(shared=True), t.NetworkCreateBody(router_external=True)):
        with pytest.raises(NotAuthorized):
            networks.check_create(ctx("a"), body)
        networks.check_create(ADMIN, body)
    with pytest.raises(NotAuthorized):
        networks.check_create(ctx("a"), t.NetworkCreateBody(provider_segmentation_id=7))
    assert networks.create_mtu(t.NetworkCreateBody()) == t.DEFAULT_MTU
    with pytest.raises(InvalidInput):
        networks.create_mtu(t.NetworkCreateBody(mtu=t.MAX_MTU + 1))
    with pytest.raises(NotAuthorized):
        networks.check_update(ctx("a"), t.NetworkUpdateBody(shared=False), {"shared"})
    networks.check_update(ctx("a"), t.NetworkUpdateBody(name="x"), {"name"})


@st.composite
def accesses(draw: st.DrawFn) -> NetAccess:
    rbac_entries = draw(
        st.lists(
            st.tuples(st.sampled_from(("access_as_shared", "access_as_external")), st.sampled_from(("*", *PROJECTS)))
        )
    )
    return NetAccess(NET, draw(projects), 1500, tuple(rbac_entries))


@given(accesses(), projects, st.booleans())
def test_network_visibility_is_owner_admin_or_an_entry(net: NetAccess, project: str, admin: bool) -> None:
    expected = admin or net.project_id == project or any(target in ("*", project) for _, target in net.rbac)
    assert net.visible(project, admin) == expected
    assert net.shared(project) == any(a == "access_as_shared" and tgt in ("*", project) for a, tgt in net.rbac)
    if net.shared(project):
        assert net.visible(project, False)


# ---------------------------------------------------------------- network RBAC


@given(
    target=st.sampled_from(("*", *PROJECTS)),
    owner=projects,
    network_owner=projects,
    others=st.sets(st.sampled_from(("*", *PROJECTS))),
    dependants=st.sets(projects),
)
def test_rbac_removal_only_strands_projects_the_entry_let_in(
    target: str, owner: str, network_owner: str, others: set[str], dependants: set[str]
) -> None:
    assume(target not in others)  # entries are unique per (network, action, target)
    losing = rbac.losing_projects(
        target=target, owner=owner, network_owner=network_owner, others=others, dependants=dependants
    )
    assert losing <= dependants - {owner, network_owner}
    assert not losing & others
    if target == owner or (target != "*" and "*" in others):
        assert losing == set()
    elif target != "*":
        assert losing == ({target} & dependants) - {owner, network_owner}
    else:
        assert losing == dependants - {owner, network_owner} - others
    assert (rbac.removal_conflict(NET, losing) is None) == (not losing)


def test_rbac_policy() -> None:
    with pytest.raises(NotAuthorized):
        rbac.check_target(ctx("a"), "*", "create")
    rbac.check_target(ctx("a"), "b", "create")
    rbac.check_target(ADMIN, "*", "update")
    with pytest.raises(InvalidInput):
        rbac.check_network_owner(ctx("a"), "b")
    rbac.check_network_owner(ctx("a"), "a")
    rbac.check_network_owner(ADMIN, "b")


# ---------------------------------------------------------------- subnets


def _new_subnet(caller: CallContext, version: int = 4) -> subnets.NewSubnet:
    body = t.SubnetCreateBody(network_id=NET, ip_version=version, cidr="10.0.0.0/24" if version == 4 else None)
    return subnets.NewSubnet.validated(id_=uuid.UUID(int=3), ctx=caller, body=body, owner=caller.project_id)


def test_subnet_create_needs_the_network_owner_and_a_big_enough_mtu() -> None:
    shared = NetAccess(NET, "a", 1500, (("access_as_shared", "*"),))
    subnets.check_create(_new_subnet(ctx("a")), shared)
    subnets.check_create(_new_subnet(ADMIN), shared)
    with pytest.raises(NotAuthorized):
        subnets.check_create(_new_subnet(ctx("b")), shared)  # sees it, does not own it
    with pytest.raises(NotFound):
        subnets.check_create(_new_subnet(ctx("b")), NetAccess(NET, "a", 1500, ()))
    with pytest.raises(NotFound):
        subnets.check_create(_new_subnet(ctx("a")), None)
    with pytest.raises(Conflict):
        subnets.check_create(_new_subnet(ctx("a"), 6), NetAccess(NET, "a", 1279, ()))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ("", "compute:nova", t.DEVICE_OWNER_DHCP, *t.ROUTER_DEVICE_OWNERS, t.DEVICE_OWNER_FLOATINGIP)
            )
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_only_dhcp_ports_and_automatic_addresses_let_a_subnet_go(owners: list[tuple[str]], auto: bool) -> None:
    users = [{"id": uuid.UUID(int=10 + i), "device_owner": o} for i, (o,) in enumerate(owners)]
    blocking, going = subnets.holders(users, auto=auto)
    assert sorted(blocking + going) == sorted(u["id"] for u in users)
    for u in users:
        service = u["device_owner"].startswith("network:")
        lets_go = u["device_owner"] == t.DEVICE_OWNER_DHCP or (not service and auto)
        assert (u["id"] in going) == lets_go


def test_gateway_changes() -> None:
    assert not subnets.gateway_changes(t.SubnetUpdateBody(name="x"), "10.0.0.1")
    assert not subnets.gateway_changes(t.SubnetUpdateBody(gateway_ip="10.0.0.1"), "10.0.0.1")
    assert not subnets.gateway_changes(t.SubnetUpdateBody(gateway_ip="2001:db8::0:1"), "2001:db8::1")
    assert subnets.gateway_changes(t.SubnetUpdateBody(gateway_ip="10.0.0.2"), "10.0.0.1")
    assert subnets.gateway_changes(t.SubnetUpdateBody(gateway_ip=None), "10.0.0.1")  # removed
    assert subnets.gateway_changes(t.SubnetUpdateBody(gateway_ip="10.0.0.1"), None)  # added
    with pytest.raises(InvalidInput):
        subnets.gateway_changes(t.SubnetUpdateBody(gateway_ip="10.0.0.0/24"), "10.0.0.1")


# ---------------------------------------------------------------- ports


def test_port_create_policy() -> None:
    shared = NetAccess(NET, "a", 1500, (("access_as_shared", "b"),))
    plain = t.PortCreateBody(network_id=NET)
    ports.check_create(ctx("a"), plain, shared, mac_given=True)
    ports.check_create(ctx("b"), plain, shared, mac_given=False)
    with pytest.raises(NotFound):
        ports.check_create(ctx("c"), plain, shared, mac_given=False)
    with pytest.raises(NotAuthorized):  # visible through an external entry, not shared
        ports.check_create(ctx("c"), plain, NetAccess(NET, "a", 1500, (("access_as_external", "*"),)), mac_given=False)
    refused: list[tuple[t.PortCreateBody, bool]] = [
        (t.PortCreateBody(network_id=NET, device_owner="network:dhcp"), False),
        (plain, True),
        (t.PortCreateBody(network_id=NET, fixed_ips=[t.FixedIpRequest(ip_address="10.0.0.5")]), False),
    ]
    for body, mac_given in refused:
        with pytest.raises(NotAuthorized):
            ports.check_create(ctx("b"), body, shared, mac_given=mac_given)
    ports.check_create(
        ctx("b"), t.PortCreateBody(network_id=NET, fixed_ips=[t.FixedIpRequest(subnet_id=NET)]), shared, mac_given=False
    )


def _row(project: str, net_owner: str, device_owner: str = "") -> dict[str, Any]:
    return {"project_id": project, "net_owner": net_owner, "device_owner": device_owner}


@pytest.mark.parametrize(
    ("caller", "row", "action", "error"),
    [
        (ctx("a"), _row("a", "n"), "update", None),
        (ctx("n"), _row("a", "n"), "update", NotAuthorized),  # the network's owner sees it, may not change it
        (ctx("n"), _row("a", "n"), "delete", None),  # ... but may delete it
        (ctx("n"), _row("a", "n", "compute:nova"), "delete", NotAuthorized),  # not an instance's
        (ctx("x"), _row("a", "n"), "update", NotFound),
        (ctx("x"), None, "delete", NotFound),
        (ADMIN, _row("a", "n", "compute:nova"), "delete", None),
    ],
)
def test_port_editable(
    caller: CallContext, row: dict[str, Any] | None, action: str, error: type[DomainError] | None
) -> None:
    if error is None:
        ports.check_editable(caller, PORT, row, action)
    else:
        with pytest.raises(error):
            ports.check_editable(caller, PORT, row, action)


def test_port_update_policy() -> None:
    row = _row("a", "n")
    body = t.PortUpdateBody(device_owner="network:dhcp", fixed_ips=[])
    with pytest.raises(Conflict):
        ports.check_update(ctx("a"), PORT, row, body, {"device_id"}, t.DEVICE_OWNER_ROUTER_INTERFACE)
    ports.check_update(ctx("a"), PORT, row, t.PortUpdateBody(name="x"), {"name"}, t.DEVICE_OWNER_ROUTER_INTERFACE)
    with pytest.raises(NotAuthorized):
        ports.check_update(ctx("a"), PORT, row, body, {"device_owner"}, None)
    with pytest.raises(NotAuthorized):
        ports.check_update(ctx("a"), PORT, row, body, {"fixed_ips"}, None)
    ports.check_update(ctx("n"), PORT, _row("n", "n"), body, {"device_owner", "fixed_ips"}, None)
    with pytest.raises(Conflict):
        ports.check_delete(PORT, t.DEVICE_OWNER_FLOATINGIP)
    ports.check_delete(PORT, None)
