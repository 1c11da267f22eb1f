"""Changes topology decided while IPAM was away (found by the kill -9 loop,
``tests/faults/test_kill_loop.py``).

A delete is committed before its addresses go back to IPAM: the client gets 503, the object answers
404 from then on, and the reconciler releases the addresses later. Until it does, nothing may act
as if the object were still there: no "in use by a floating IP" for a floating IP that answers 404,
no floating IP associated with a port that answers 404, no "subnet in use" or "network in use" for
ports nobody can see. A create that failed half-way (503) leaves nothing in the way of the next."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from scopenet.contracts.errors import TransientError
from scopenet.services.ipam.app import NAME, VERSION
from scopenet.services.ipam.handlers import routes
from scopenet.services.topology.app import TopologyRunning
from scopenet.store.service import Running
from tests.helpers import eventually
from tests.integration.conftest import ADMIN, fails, not_serving
from tests.integration.topology.conftest import Build, Topo, project


def ipam_away(svc: Running) -> contextlib.AbstractAsyncContextManager[None]:
    """The in-process IPAM stops answering (nobody serves its subjects), then serves again."""
    return not_serving(svc, name=NAME, version=VERSION, routes=routes(svc.db))


async def test_floating_ip_deleted_while_ipam_is_away_holds_nothing(
    topo: Topo, mk: Build, ipam_running: Running, topology_running: TopologyRunning
) -> None:
    alice = project()
    ext = await mk.external(v4="192.0.77.0/24")
    net = await mk.network(alice)
    sub = await mk.subnet(alice, net, cidr="10.77.0.0/24")
    vm = await mk.port(alice, net)
    router = await mk.router(alice, external_gateway_info={"network_id": str(ext.id)})
    await mk.attach(alice, router, sub)
    fip_create = {"floating_network_id": str(ext.id), "port_id": str(vm.id)}
    fip = (await topo("floatingip.create", alice, floatingip=fip_create)).floatingip
    iface = {"id": str(router.id), "subnet_id": str(sub.id)}

    async with ipam_away(ipam_running):
        with pytest.raises(TransientError):  # its address cannot go back to IPAM now
            await topo("floatingip.delete", alice, id=str(fip.id))
        await fails(topo("floatingip.get", alice, id=str(fip.id)), 404, "FloatingIPNotFound")
        await fails(topo("floatingip.delete", alice, id=str(fip.id)), 404, "FloatingIPNotFound")
        # The interface it went through is free (the subnet's gateway address needs no IPAM).
        await topo("router.remove_router_interface", alice, **iface)
        await topo("router.add_router_interface", alice, **iface)
    # The port takes a new floating IP at once, before the reconciler has finished the old one.
    again = (await topo("floatingip.create", alice, floatingip=fip_create)).floatingip
    assert (again.port_id, again.router_id) == (vm.id, router.id)
    spec = await topo("router.spec", ADMIN, id=str(router.id))
    assert [f.id for f in spec.floating_ips] == [again.id]

    async def old_address_released() -> bool:
        held = await ipam_running.db.fetchval(
            "SELECT count(*) FROM ipam.ip_allocations WHERE ip_address = $1::inet", fip.floating_ip_address
        )
        return held == 0 or fip.floating_ip_address == again.floating_ip_address

    await eventually(old_address_released, timeout=20)  # the reconciler finishes the delete
    listed: Any = await topo("floatingip.list", alice, filters={"port_id": [str(vm.id)]})
    assert [f.id for f in listed.floatingips] == [again.id]


async def test_floating_ip_create_failed_while_ipam_is_away_leaves_the_port_free(
    topo: Topo, mk: Build, ipam_running: Running
) -> None:
    alice = project()
    ext = await mk.external(v4="192.0.78.0/24")
    net = await mk.network(alice)
    sub = await mk.subnet(alice, net, cidr="10.78.0.0/24")
    vm = await mk.port(alice, net)
    router = await mk.router(alice, external_gateway_info={"network_id": str(ext.id)})
    await mk.attach(alice, router, sub)
    fip_create = {"floating_network_id": str(ext.id), "port_id": str(vm.id)}

    async with ipam_away(ipam_running):
        with pytest.raises(TransientError):  # no address for it
            await topo("floatingip.create", alice, floatingip=fip_create)
    listed: Any = await topo("floatingip.list", alice, filters={"port_id": [str(vm.id)]})
    assert listed.floatingips == []
    # Nothing to see, nothing in the way: the same create works at once (its rollback's IPAM
    # release may still be waiting for the reconciler).
    fip = (await topo("floatingip.create", alice, floatingip=fip_create)).floatingip
    assert (fip.port_id, fip.router_id) == (vm.id, router.id)


async def test_port_deleted_while_ipam_is_away_lets_go_of_its_floating_ip(
    topo: Topo, mk: Build, ipam_running: Running
) -> None:
    alice = project()
    ext = await mk.external(v4="192.0.79.0/24")
    net = await mk.network(alice)
    sub = await mk.subnet(alice, net, cidr="10.79.0.0/24")
    vm = await mk.port(alice, net)
    router = await mk.router(alice, external_gateway_info={"network_id": str(ext.id)})
    await mk.attach(alice, router, sub)
    fip_create = {"floating_network_id": str(ext.id), "port_id": str(vm.id)}
    fip = (await topo("floatingip.create", alice, floatingip=fip_create)).floatingip

    async with ipam_away(ipam_running):
        with pytest.raises(TransientError):  # its address cannot go back to IPAM now
            await topo("port.delete", alice, id=str(vm.id))
        await fails(topo("port.get", alice, id=str(vm.id)), 404, "PortNotFound")
        # As Neutron does when a port goes: the floating IP stays, unassociated, and nothing
        # routes it to the port any more.
        left = (await topo("floatingip.get", alice, id=str(fip.id))).floatingip
        assert (left.port_id, left.fixed_ip_address, left.router_id) == (None, None, None)
        spec = await topo("router.spec", ADMIN, id=str(router.id))
        assert spec.floating_ips == []
        await topo("router.remove_router_interface", alice, id=str(router.id), subnet_id=str(sub.id))


async def test_subnet_deleted_right_after_its_last_port_went_while_ipam_was_away(
    topo: Topo, mk: Build, ipam_running: Running
) -> None:
    alice = project()
    net = await mk.network(alice)
    sub = await mk.subnet(alice, net, cidr="10.76.0.0/24")
    vm = await mk.port(alice, net)
    async with ipam_away(ipam_running):
        with pytest.raises(TransientError):  # acknowledged as gone (404 from now on), address still in IPAM
            await topo("port.delete", alice, id=str(vm.id))
    await fails(topo("port.get", alice, id=str(vm.id)), 404, "PortNotFound")
    # No port left on the subnet for anyone: its delete does not wait for the reconciler.
    await topo("subnet.delete", alice, id=str(sub.id))
    await fails(topo("subnet.get", alice, id=str(sub.id)), 404, "SubnetNotFound")


async def test_network_deleted_right_after_its_last_port_went_while_ipam_was_away(
    topo: Topo, mk: Build, ipam_running: Running
) -> None:
    alice = project()
    net = await mk.network(alice)
    await mk.subnet(alice, net, cidr="10.75.0.0/24")
    vm = await mk.port(alice, net)
    async with ipam_away(ipam_running):
        with pytest.raises(TransientError):
            await topo("port.delete", alice, id=str(vm.id))
    await topo("network.delete", alice, id=str(net.id))  # with its subnet, as in Neutron
    await fails(topo("network.get", alice, id=str(net.id)), 404, "NetworkNotFound")
