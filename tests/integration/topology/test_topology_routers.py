"""Routers, interfaces and floating IPs through the NATS commands: rules 59-62 of docs/neutron.md."""

from __future__ import annotations

from typing import Any

from tests.helpers import eventually
from tests.integration.conftest import ADMIN, EventTap, fails
from tests.integration.topology.conftest import Build, Topo, project


async def held_on(topo: Topo, mk: Build, network: Any) -> set[str]:
    """Addresses IPAM holds on the subnets of one network (other tests allocate elsewhere)."""
    subnets = (await topo("network.get", ADMIN, id=str(network.id))).network.subnets
    listed = await mk.ipam("ip.list", ADMIN, filters={"subnet_id": [str(s) for s in subnets]})
    return {a.ip_address for a in listed.allocations}


async def _true(value: bool) -> bool:
    return value


async def gateway_port(topo: Topo, router: Any) -> Any:
    ports = (await topo("port.list", ADMIN, filters={"device_id": str(router.id)})).ports
    return next(p.id for p in ports if p.device_owner == "network:router_gateway")


async def set_gateway(topo: Topo, router: Any, ext: Any, addresses: list[str], **extra: Any) -> Any:
    gw = {"network_id": str(ext.id), "external_fixed_ips": [{"ip_address": a} for a in addresses], **extra}
    return (await topo("router.update", ADMIN, id=str(router.id), router={"external_gateway_info": gw})).router


async def test_gateway_rules(topo: Topo, mk: Build, events: EventTap) -> None:
    alice = project()
    ext = await mk.external(v4="192.0.2.0/24", v6="2001:db8:e::/64")
    internal = await mk.network(alice)
    await fails(mk.router(alice, external_gateway_info={"network_id": str(internal.id)}), 400, "BadRequest")
    await fails(
        mk.router(alice, external_gateway_info={"network_id": str(ext.id), "enable_snat": True}),
        403,
        "PolicyNotAuthorized",
    )
    await fails(
        mk.router(
            alice,
            external_gateway_info={"network_id": str(ext.id), "external_fixed_ips": [{"ip_address": "192.0.2.9"}]},
        ),
        403,
        "PolicyNotAuthorized",
    )
    await fails(
        mk.router(
            ADMIN,
            external_gateway_info={"network_id": str(ext.id), "external_fixed_ips": [{"ip_address": "192.0.2.1"}]},
        ),
        400,
        "BadRequest",
    )
    r = await mk.router(alice, external_gateway_info={"network_id": str(ext.id)})
    gw = r.external_gateway_info
    assert gw.network_id == ext.id and gw.enable_snat is True and r.status == "PENDING"
    assert [f.ip_address for f in gw.external_fixed_ips] == ["192.0.2.2", "2001:db8:e::2"]  # ::1: gateway
    gw_port = await gateway_port(topo, r)
    # admin picks addresses and turns SNAT off: one change (one revision, one event); the gateway port
    # is re-addressed in place and the addresses it no longer has go back to IPAM
    r2 = await set_gateway(topo, r, ext, ["192.0.2.77"], enable_snat=False)
    assert r2.external_gateway_info.enable_snat is False
    assert [f.ip_address for f in r2.external_gateway_info.external_fixed_ips] == ["192.0.2.77"]
    assert r2.revision_number == r.revision_number + 1
    assert await held_on(topo, mk, ext) == {"192.0.2.77"}
    assert await gateway_port(topo, r) == gw_port
    # asking again for the address the gateway already holds is no conflict with itself
    r2b = await set_gateway(topo, r, ext, ["192.0.2.78", "192.0.2.77"])
    assert [f.ip_address for f in r2b.external_gateway_info.external_fixed_ips] == ["192.0.2.77", "192.0.2.78"]
    assert r2b.external_gateway_info.enable_snat is False and r2b.revision_number == r2.revision_number + 1
    r2c = await set_gateway(topo, r, ext, ["192.0.2.78"])
    assert [f.ip_address for f in r2c.external_gateway_info.external_fixed_ips] == ["192.0.2.78"]
    assert await held_on(topo, mk, ext) == {"192.0.2.78"}
    # another project's address is still refused, and the gateway keeps what it had
    other = await mk.port(ADMIN, ext, fixed_ips=[{"ip_address": "192.0.2.90"}])
    await fails(set_gateway(topo, r, ext, ["192.0.2.90"]), 409, "IpAddressAlreadyAllocated")
    assert await held_on(topo, mk, ext) == {"192.0.2.78", "192.0.2.90"}
    r2d = (await topo("router.get", ADMIN, id=str(r.id))).router
    assert r2d.revision_number == r2c.revision_number and await gateway_port(topo, r) == gw_port
    await topo("port.delete", ADMIN, id=str(other.id))
    # one router.updated event per change, each with its own revision (a marker update ends the list)
    marker = (await topo("router.update", ADMIN, id=str(r.id), router={"name": "marker"})).router.revision_number

    def revisions() -> list[int]:
        return [e["resource"]["revision_number"] for t, e in events.about(r.id) if t.endswith("router.updated")]

    await eventually(lambda: _true(marker in revisions()), timeout=5, every=0.02)
    assert revisions() == list(range(r.revision_number + 1, marker + 1)) == [marker - 3, marker - 2, marker - 1, marker]
    r3 = (await topo("router.update", alice, id=str(r.id), router={"external_gateway_info": None})).router
    assert r3.external_gateway_info is None
    assert await held_on(topo, mk, ext) == set()
    await topo("router.delete", alice, id=str(r.id))
    await fails(topo("router.get", alice, id=str(r.id)), 404, "RouterNotFound")


async def test_interface_rules(topo: Topo, mk: Build) -> None:
    alice, bob = project(), project()
    ext = await mk.external(v4="192.0.3.0/24")
    net = await mk.network(alice)
    a = await mk.subnet(alice, net, cidr="10.50.0.0/24")
    net_b = await mk.network(alice)
    overlapping = await mk.subnet(alice, net_b, cidr="10.50.0.128/25")
    no_gw = await mk.subnet(alice, await mk.network(alice), cidr="10.51.0.0/24", gateway_ip=None)
    near_ext = await mk.subnet(alice, await mk.network(alice), cidr="192.0.3.64/26")
    r = await mk.router(alice, external_gateway_info={"network_id": str(ext.id)})
    rid = str(r.id)
    await fails(topo("router.add_router_interface", alice, id=rid), 400, "BadRequest")
    await fails(
        topo("router.add_router_interface", alice, id=rid, subnet_id=str(a.id), port_id=str(a.id)), 400, "BadRequest"
    )
    info = await mk.attach(alice, r, a)
    assert (info.subnet_id, info.network_id, info.subnet_ids) == (a.id, net.id, [a.id])
    port = (await topo("port.get", alice, id=str(info.port_id))).port
    assert port.device_owner == "network:router_interface" and port.device_id == rid
    assert [f.ip_address for f in port.fixed_ips] == ["10.50.0.1"]
    await fails(mk.attach(alice, r, a), 400, "BadRequest")  # already has a port on it
    await fails(mk.attach(alice, r, overlapping), 400, "BadRequest")  # overlaps an interface
    await fails(mk.attach(alice, r, near_ext), 400, "BadRequest")  # overlaps the gateway network
    await fails(mk.attach(alice, r, no_gw), 400, "BadRequest")
    await fails(topo("port.delete", alice, id=str(info.port_id)), 409, "ServicePortInUse")
    await fails(topo("router.delete", alice, id=rid), 409, "RouterInUse")
    await fails(topo("subnet.delete", alice, id=str(a.id)), 409, "SubnetInUse")
    # another project's subnet: only with a targeted RBAC share of its network
    other = await mk.network(bob)
    bobs = await mk.subnet(bob, other, cidr="10.60.0.0/24")
    await fails(mk.attach(alice, r, bobs), 404, "SubnetNotFound")
    await topo(
        "rbac_policy.create",
        bob,
        rbac_policy={
            "object_type": "network",
            "object_id": str(other.id),
            "action": "access_as_shared",
            "target_tenant": alice.project_id,
        },
    )
    await mk.attach(alice, r, bobs)
    # by port
    free = await mk.port(alice, net_b, fixed_ips=[{"subnet_id": str(overlapping.id)}])
    await fails(topo("router.add_router_interface", alice, id=rid, port_id=str(free.id)), 400, "BadRequest")
    r2 = await mk.router(alice)
    by_port = await topo("router.add_router_interface", alice, id=str(r2.id), port_id=str(free.id))
    assert by_port.port_id == free.id and by_port.subnet_ids == [overlapping.id]
    await fails(topo("router.add_router_interface", alice, id=rid, port_id=str(free.id)), 409, "PortInUse")
    empty = await mk.port(alice, net_b, fixed_ips=[])
    await fails(topo("router.add_router_interface", alice, id=str(r2.id), port_id=str(empty.id)), 400, "BadRequest")
    # routes need a connected nexthop; a route holds its interface
    await fails(
        topo(
            "router.update",
            alice,
            id=rid,
            router={"routes": [{"destination": "172.16.0.0/12", "nexthop": "10.99.0.1"}]},
        ),
        400,
        "InvalidRoutes",
    )
    routed = (
        await topo(
            "router.update",
            alice,
            id=rid,
            router={"routes": [{"destination": "172.16.0.0/12", "nexthop": "10.50.0.10"}]},
        )
    ).router
    assert [x.model_dump() for x in routed.routes] == [{"destination": "172.16.0.0/12", "nexthop": "10.50.0.10"}]
    await fails(
        topo("router.remove_router_interface", alice, id=rid, subnet_id=str(a.id)), 409, "RouterInterfaceInUseByRoute"
    )
    await topo("router.update", alice, id=rid, router={"routes": []})
    await topo("router.remove_router_interface", alice, id=rid, subnet_id=str(a.id))
    await fails(topo("port.get", alice, id=str(info.port_id)), 404, "PortNotFound")
    await fails(
        topo("router.remove_router_interface", alice, id=rid, subnet_id=str(a.id)),
        404,
        "RouterInterfaceNotFoundForSubnet",
    )
    await topo("router.remove_router_interface", alice, id=str(r2.id), port_id=str(free.id))
    assert (await mk.ipam("ip.list", ADMIN, filters={"port_id": str(free.id)})).allocations == []
    await topo("subnet.delete", alice, id=str(a.id))


async def test_ipv6_subnets_of_one_network_share_a_router_port(topo: Topo, mk: Build) -> None:
    alice = project()
    net = await mk.network(alice)
    v4 = await mk.subnet(alice, net, cidr="10.70.0.0/24")
    a = await mk.subnet(alice, net, cidr="2001:db8:70::/64", ip_version=6, gateway_ip="2001:db8:70::1")
    b = await mk.subnet(alice, net, cidr="2001:db8:71::/64", ip_version=6, gateway_ip="2001:db8:71::1")
    r = await mk.router(alice)
    p4 = (await mk.attach(alice, r, v4)).port_id
    pa = (await mk.attach(alice, r, a)).port_id
    pb = (await mk.attach(alice, r, b)).port_id
    assert pa == pb != p4
    merged = (await topo("port.get", alice, id=str(pa))).port
    assert sorted(f.ip_address for f in merged.fixed_ips) == ["2001:db8:70::1", "2001:db8:71::1"]
    await topo("router.remove_router_interface", alice, id=str(r.id), subnet_id=str(a.id))
    kept = (await topo("port.get", alice, id=str(pa))).port
    assert [f.ip_address for f in kept.fixed_ips] == ["2001:db8:71::1"]


async def test_floating_ips(topo: Topo, mk: Build) -> None:
    alice, bob = project(), project()
    ext = await mk.external(v4="192.0.4.0/24")
    v6only = await mk.network(ADMIN, **{"router:external": True})
    await mk.subnet(ADMIN, v6only, cidr="2001:db8:f::/64", ip_version=6)
    net = await mk.network(alice)
    sub = await mk.subnet(alice, net, cidr="10.80.0.0/24")
    vm = await mk.port(alice, net)
    fip_create = {"floating_network_id": str(ext.id), "port_id": str(vm.id)}
    await fails(topo("floatingip.create", alice, floatingip={"floating_network_id": str(net.id)}), 400, "BadRequest")
    await fails(topo("floatingip.create", alice, floatingip={"floating_network_id": str(v6only.id)}), 400, "BadRequest")
    await fails(topo("floatingip.create", alice, floatingip=fip_create), 404, "ExternalGatewayForFloatingIPNotFound")
    await fails(
        topo("floatingip.create", alice, floatingip={**fip_create, "floating_ip_address": "192.0.4.9"}),
        403,
        "PolicyNotAuthorized",
    )
    # nothing half-written by the failures: no floating port holds an external address
    assert await held_on(topo, mk, ext) == set()
    r = await mk.router(alice, external_gateway_info={"network_id": str(ext.id)})
    await mk.attach(alice, r, sub)
    fip = (await topo("floatingip.create", alice, floatingip=fip_create)).floatingip
    assert (fip.router_id, fip.port_id, fip.fixed_ip_address, fip.status) == (r.id, vm.id, "10.80.0.2", "ACTIVE")
    assert fip.floating_ip_address == "192.0.4.3"  # .1 gateway, .2 the router's gateway port
    await fails(topo("floatingip.create", alice, floatingip=fip_create), 409, "FloatingIPPortAlreadyAssociated")
    await fails(
        topo("floatingip.create", alice, floatingip={**fip_create, "fixed_ip_address": "2001:db8::1"}),
        400,
        "BadRequest",
    )
    bobs_net = await mk.network(bob)
    await mk.subnet(bob, bobs_net, cidr="10.81.0.0/24")
    bobs_vm = await mk.port(bob, bobs_net)
    await fails(
        topo("floatingip.update", ADMIN, id=str(fip.id), floatingip={"port_id": str(bobs_vm.id)}),
        404,
        "ExternalGatewayForFloatingIPNotFound",
    )
    two = await mk.port(
        alice, net, fixed_ips=[{"subnet_id": str(sub.id)}, {"subnet_id": str(sub.id), "ip_address": "10.80.0.50"}]
    )
    await fails(
        topo("floatingip.update", alice, id=str(fip.id), floatingip={"port_id": str(two.id)}),
        400,
        "BadRequest",
        "fixed_ip_address",
    )
    moved = (
        await topo(
            "floatingip.update",
            alice,
            id=str(fip.id),
            floatingip={"port_id": str(two.id), "fixed_ip_address": "10.80.0.50"},
        )
    ).floatingip
    assert (moved.port_id, moved.fixed_ip_address, moved.router_id) == (two.id, "10.80.0.50", r.id)
    await fails(
        topo("router.update", alice, id=str(r.id), router={"external_gateway_info": None}),
        409,
        "RouterExternalGatewayInUseByFloatingIp",
    )
    await fails(
        topo("router.remove_router_interface", alice, id=str(r.id), subnet_id=str(sub.id)),
        409,
        "RouterInterfaceInUseByFloatingIP",
    )
    free = (await topo("floatingip.update", alice, id=str(fip.id), floatingip={"port_id": None})).floatingip
    assert (free.port_id, free.fixed_ip_address, free.router_id, free.status) == (None, None, None, "DOWN")
    await topo("floatingip.delete", alice, id=str(fip.id))
    await fails(topo("floatingip.get", alice, id=str(fip.id)), 404, "FloatingIPNotFound")
    assert await held_on(topo, mk, ext) == {"192.0.4.2"}  # the router's gateway port keeps its address
