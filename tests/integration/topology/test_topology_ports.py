"""Ports through the NATS commands: fixed IPs from IPAM (docs/neutron.md#ports-and-ip-allocation), MAC, policy."""

from __future__ import annotations

from netaddr import IPAddress

from tests.integration.conftest import ADMIN, fails
from tests.integration.topology.conftest import Build, Topo, project


async def test_default_fixed_ips_one_per_family_and_slaac(topo: Topo, mk: Build) -> None:
    alice = project()
    net = await mk.network(alice)
    v4 = await mk.subnet(alice, net, cidr="198.51.100.0/26")
    slaac = await mk.subnet(alice, net, cidr="2001:db8:80d2:c4d3::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    stateful = await mk.subnet(alice, net, cidr="2001:db8:1::/64", ip_version=6)
    port = await mk.port(alice, net, name="instance1", device_owner="compute:nova", device_id="vm-1")
    assert port.mac_address.startswith("fa:16:3e:") and port.status == "DOWN"
    ips = {ip.subnet_id: ip.ip_address for ip in port.fixed_ips}
    assert ips[v4.id] == "198.51.100.2"  # lowest free (the gateway .1 is the subnet's)
    assert ips[stateful.id] == "2001:db8:1::2"  # ::1 is the gateway
    b = [int(x, 16) for x in port.mac_address.split(":")]  # EUI-64 of fa:16:3e:xx:yy:zz
    assert IPAddress(ips[slaac.id]) == IPAddress(f"2001:db8:80d2:c4d3:f816:3eff:fe{b[3]:02x}:{b[4]:02x}{b[5]:02x}")
    held = (await mk.ipam("ip.list", ADMIN, filters={"port_id": str(port.id)})).allocations
    assert {(a.subnet_id, a.ip_address) for a in held} == set(ips.items())
    second = await mk.port(alice, net)
    assert second.mac_address != port.mac_address
    assert {ip.ip_address for ip in second.fixed_ips} & set(ips.values()) == set()


async def test_requested_fixed_ips_and_errors(topo: Topo, mk: Build) -> None:
    alice, bob = project(), project()
    net = await mk.network(alice)
    sub = await mk.subnet(alice, net, cidr="10.20.0.0/29")
    other = await mk.subnet(alice, await mk.network(alice), cidr="10.21.0.0/24")
    p = await mk.port(alice, net, fixed_ips=[{"ip_address": "10.20.0.5"}], mac_address="fa:16:3e:00:00:01")
    assert [(f.subnet_id, f.ip_address) for f in p.fixed_ips] == [(sub.id, "10.20.0.5")]
    assert p.mac_address == "fa:16:3e:00:00:01"
    await fails(mk.port(alice, net, mac_address="fa:16:3e:00:00:01"), 409, "MacAddressInUse", "mac_address")
    await fails(mk.port(alice, net, mac_address="zz"), 400, "InvalidInput", "mac_address")
    await fails(mk.port(alice, net, fixed_ips=[{"ip_address": "10.20.0.5"}]), 409, "IpAddressAlreadyAllocated")
    await fails(mk.port(alice, net, fixed_ips=[{"ip_address": "10.99.0.5"}]), 400, "InvalidIpForNetwork", "fixed_ips")
    await fails(mk.port(alice, net, fixed_ips=[{"ip_address": "10.20.0.7"}]), 400, "InvalidIpForNetwork")  # bcast
    await fails(
        mk.port(alice, net, fixed_ips=[{"subnet_id": str(sub.id), "ip_address": "10.21.0.9"}]),
        400,
        "InvalidIpForSubnet",
    )
    await fails(mk.port(alice, net, fixed_ips=[{"subnet_id": str(other.id)}]), 400, "InvalidInput", "fixed_ips")
    await fails(mk.port(alice, net, fixed_ips=[{"ip_address": "bad"}]), 400, "InvalidInput", "fixed_ips")
    await fails(mk.port(bob, net), 404, "NetworkNotFound", "network_id")
    # exhaustion: .2 .3 .4 .6 are left (.1 gateway, .5 taken)
    for _ in range(4):
        await mk.port(alice, net)
    await fails(mk.port(alice, net), 409, "IpAddressGenerationFailure")
    # nothing half-written: the failures left no port and no address behind
    ports = (await topo("port.list", alice, filters={"network_id": str(net.id)})).ports
    assert len(ports) == 5
    held = (await mk.ipam("ip.list", ADMIN, filters={"subnet_id": str(sub.id)})).allocations
    assert {a.port_id for a in held} == {q.id for q in ports}
    empty = await mk.network(alice)
    assert (await mk.port(alice, empty)).fixed_ips == []
    await fails(mk.port(alice, empty, fixed_ips=[{"ip_address": "10.0.0.1"}]), 400, "BadRequest", "fixed_ips")


async def test_shared_network_policy(topo: Topo, mk: Build) -> None:
    bob = project()
    shared = await mk.network(ADMIN, shared=True)
    sub = await mk.subnet(ADMIN, shared, cidr="10.30.0.0/24")
    port = await mk.port(bob, shared, fixed_ips=[{"subnet_id": str(sub.id)}])
    assert port.project_id == bob.project_id and port.fixed_ips[0].subnet_id == sub.id
    await fails(mk.port(bob, shared, fixed_ips=[{"ip_address": "10.30.0.50"}]), 403, "PolicyNotAuthorized", "fixed_ips")
    await fails(mk.port(bob, shared, device_owner="network:dhcp"), 403, "PolicyNotAuthorized", "device_owner")
    private = await mk.network(ADMIN)
    await fails(mk.port(bob, private), 404, "NetworkNotFound")
    assert (await topo("network.get", bob, id=str(shared.id))).network.shared is True


async def test_update_fixed_ips_and_delete(topo: Topo, mk: Build) -> None:
    alice = project()
    net = await mk.network(alice)
    sub = await mk.subnet(alice, net, cidr="10.40.0.0/24")
    port = await mk.port(alice, net)
    moved = (
        await topo(
            "port.update", alice, id=str(port.id), port={"name": "renamed", "fixed_ips": [{"ip_address": "10.40.0.77"}]}
        )
    ).port
    assert moved.name == "renamed" and [f.ip_address for f in moved.fixed_ips] == ["10.40.0.77"]
    assert moved.revision_number == port.revision_number + 1
    held = (await mk.ipam("ip.list", ADMIN, filters={"port_id": str(port.id)})).allocations
    assert [a.ip_address for a in held] == ["10.40.0.77"]
    kept = (
        await topo(
            "port.update",
            alice,
            id=str(port.id),
            port={"fixed_ips": [{"subnet_id": str(sub.id)}, {"ip_address": "10.40.0.78"}]},
        )
    ).port
    assert sorted(f.ip_address for f in kept.fixed_ips) == ["10.40.0.77", "10.40.0.78"]
    await fails(
        topo("port.update", alice, id=str(port.id), port={"fixed_ips": [{"ip_address": "10.41.0.1"}]}),
        400,
        "InvalidIpForNetwork",
    )
    await topo("port.delete", alice, id=str(port.id))
    await fails(topo("port.get", alice, id=str(port.id)), 404, "PortNotFound")
    assert (await mk.ipam("ip.list", ADMIN, filters={"port_id": str(port.id)})).allocations == []


async def test_auto_address_subnet_delete_takes_the_slaac_addresses(topo: Topo, mk: Build) -> None:
    """Rule 53: SLAAC addresses go with their subnet; ordinary addresses keep a subnet in use."""
    alice = project()
    net = await mk.network(alice)
    v4 = await mk.subnet(alice, net, cidr="10.60.0.0/24")
    slaac = await mk.subnet(alice, net, cidr="2001:db8:60::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = await mk.port(alice, net)
    assert {f.subnet_id for f in port.fixed_ips} == {v4.id, slaac.id}
    await topo("subnet.delete", alice, id=str(slaac.id))
    after = (await topo("port.get", alice, id=str(port.id))).port
    assert [f.subnet_id for f in after.fixed_ips] == [v4.id]
    held = (await mk.ipam("ip.list", ADMIN, filters={"port_id": str(port.id)})).allocations
    assert [a.subnet_id for a in held] == [v4.id]
    await fails(topo("subnet.delete", alice, id=str(v4.id)), 409, "SubnetInUse")
    assert (await topo("subnet.get", alice, id=str(v4.id))).subnet.id == v4.id
