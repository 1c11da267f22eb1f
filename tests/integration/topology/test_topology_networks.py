"""Networks and subnets through the NATS commands: Neutron's fields, rules 39-53 that are topology's,
and the derived address scopes (docs/neutron.md#network-address-scopes), including a pool changing scope at runtime."""

from __future__ import annotations

from typing import Any

from tests.helpers import eventually
from tests.integration.conftest import ADMIN, EventTap, fails
from tests.integration.topology.conftest import Build, Topo, project


async def test_network_fields_and_defaults(topo: Topo, mk: Build) -> None:
    alice = project()
    net = await mk.network(alice, name="network1")
    assert net.mtu == 1450 and net.status == "ACTIVE" and net.admin_state_up
    assert net.shared is False and net.router_external is False
    assert net.ipv4_address_scope is None and net.ipv6_address_scope is None
    assert net.provider_segmentation_id >= 1 and net.revision_number == 0
    other = await mk.network(alice)
    assert other.provider_segmentation_id != net.provider_segmentation_id
    wire = (await topo("network.get", alice, id=str(net.id))).model_dump(mode="json")["network"]
    assert wire["router:external"] is False and "provider:segmentation_id" in wire
    await fails(topo("network.get", project(), id=str(net.id)), 404, "NetworkNotFound")
    await fails(mk.network(alice, shared=True), 403, "PolicyNotAuthorized", "shared")
    await fails(mk.network(alice, **{"router:external": True}), 403, "PolicyNotAuthorized")
    await fails(mk.network(alice, mtu=9000), 400, "InvalidInput", "mtu")
    await fails(
        topo.unchecked("network.create", alice, network={"name": "x", "bogus": 1}),
        400,
        "HTTPBadRequest",
        "network.bogus",
    )


async def test_subnet_defaults_and_network_revision(topo: Topo, mk: Build) -> None:
    alice = project()
    net = await mk.network(alice)
    sub = await mk.subnet(
        alice,
        net,
        cidr="198.51.100.0/26",
        dns_nameservers=["192.0.2.53"],
        host_routes=[{"destination": "10.0.0.0/8", "nexthop": "198.51.100.5"}],
    )
    assert (sub.gateway_ip, sub.subnetpool_id) == ("198.51.100.1", None)
    assert [p.model_dump() for p in sub.allocation_pools] == [{"start": "198.51.100.2", "end": "198.51.100.62"}]
    assert sub.dns_nameservers == ["192.0.2.53"] and sub.enable_dhcp
    v6 = await mk.subnet(alice, net, cidr="2001:db8:80d2:c4d3::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert v6.gateway_ip == "2001:db8:80d2:c4d3::1"  # as the walkthrough shows
    net = (await topo("network.get", alice, id=str(net.id))).network
    assert set(net.subnets) == {sub.id, v6.id} and net.revision_number == 2
    await fails(
        topo("subnet.update", alice, id=str(sub.id), subnet={"gateway_ip": "198.51.100.62"}),
        409,
        "GatewayConflictWithAllocationPools",
    )
    pools = [{"start": "198.51.100.1", "end": "198.51.100.61"}]
    updated = (
        await topo(
            "subnet.update",
            alice,
            id=str(sub.id),
            subnet={"name": "renamed", "gateway_ip": "198.51.100.62", "allocation_pools": pools},
        )
    ).subnet
    assert updated.gateway_ip == "198.51.100.62" and updated.revision_number == 1
    assert [p.model_dump() for p in updated.allocation_pools] == pools
    assert (await topo("network.get", alice, id=str(net.id))).network.revision_number == 3
    await topo("subnet.delete", alice, id=str(v6.id))
    net = (await topo("network.get", alice, id=str(net.id))).network
    assert net.subnets == [sub.id] and net.revision_number == 4


async def test_subnet_create_rules(topo: Topo, mk: Build) -> None:
    alice, bob = project(), project()
    net = await mk.network(alice)
    await mk.subnet(alice, net, cidr="10.1.0.0/24")
    await fails(mk.subnet(alice, net, cidr="10.1.0.128/25"), 400, "InvalidInput", "cidr")  # rule 48
    await fails(mk.subnet(bob, net, cidr="10.2.0.0/24"), 404, "NetworkNotFound", "network_id")
    shared = await mk.network(ADMIN, shared=True)
    await fails(mk.subnet(bob, shared, cidr="10.3.0.0/24"), 403, "PolicyNotAuthorized")
    await fails(mk.subnet(alice, net, ip_version=4), 400, "BadRequest", "cidr")  # neither cidr nor pool
    await fails(mk.subnet(alice, net, cidr="10.4.0.0/24", ipv6_ra_mode="slaac"), 400, "InvalidInput")
    await fails(
        mk.subnet(
            alice, net, cidr="2001:db8:1::/64", ip_version=6, ipv6_ra_mode="slaac", ipv6_address_mode="dhcpv6-stateful"
        ),
        400,
        "InvalidInput",
        "ipv6_ra_mode",
    )
    await fails(
        mk.subnet(alice, net, cidr="10.5.0.0/24", dns_nameservers=[f"192.0.2.{i}" for i in range(6)]),
        400,
        "DNSNameServersExhausted",
        "dns_nameservers",
    )
    await fails(
        mk.subnet(alice, net, cidr="10.5.0.0/24", dns_nameservers=["nope"]), 400, "InvalidInput", "dns_nameservers"
    )
    await fails(
        mk.subnet(
            alice, net, cidr="10.5.0.0/24", host_routes=[{"destination": "2001:db8::/64", "nexthop": "10.5.0.1"}]
        ),
        400,
        "InvalidInput",
        "host_routes",
    )
    # Rule 50: MTU
    small = await mk.network(alice, mtu=1000)
    await fails(mk.subnet(alice, small, cidr="2001:db8:2::/64", ip_version=6), 409, "NetworkMTUSubnetConflict")
    await mk.subnet(alice, small, cidr="10.6.0.0/24")
    tiny = await mk.network(alice, mtu=60)
    await fails(mk.subnet(alice, tiny, cidr="10.7.0.0/24"), 409, "NetworkMTUSubnetConflict")
    await fails(topo("network.update", alice, id=str(small.id), network={"mtu": 50}), 409, "NetworkMTUSubnetConflict")
    # nothing half-written: the failed creates left no subnet behind
    net = (await topo("network.get", alice, id=str(net.id))).network
    assert len(net.subnets) == 1
    assert len((await topo("subnet.list", alice, filters={"network_id": str(net.id)})).subnets) == 1


async def _true(value: bool) -> bool:
    return value


async def test_pool_affinity_and_derived_scopes(topo: Topo, mk: Build, events: EventTap) -> None:
    alice = project()
    s4, s6 = await mk.scope(4), await mk.scope(6)
    p4 = await mk.pool(["203.0.112.0/22"], scope=s4, default_prefixlen=26)
    p4b = await mk.pool(["203.0.116.0/22"], scope=s4, default_prefixlen=26)
    p6 = await mk.pool(["2001:db8:a500::/48"], scope=s6, default_prefixlen=64)
    unscoped = await mk.pool(["100.64.0.0/16"], default_prefixlen=24)
    net = await mk.network(alice)
    a = await mk.subnet(alice, net, pool=p4)
    assert a.subnetpool_id == p4.id and a.cidr.endswith("/26") and a.gateway_ip.endswith(".1")
    await mk.subnet(alice, net, pool=p6)
    net = (await topo("network.get", alice, id=str(net.id))).network
    assert (net.ipv4_address_scope, net.ipv6_address_scope) == (s4.id, s6.id)
    await mk.subnet(alice, net, pool=p4b)  # rule 49b: another pool of the same scope
    await fails(mk.subnet(alice, net, pool=unscoped), 400, "NetworkAddressScopeAffinityError")  # 49a
    await fails(mk.subnet(alice, net, cidr="192.0.2.0/28"), 400, "NetworkSubnetPoolAffinityError")  # 49c
    plain = await mk.network(alice)
    await mk.subnet(alice, plain, cidr="192.0.2.0/28")
    await fails(mk.subnet(alice, plain, pool=unscoped), 400, "NetworkSubnetPoolAffinityError")  # 49d
    await fails(topo("network.list", alice, filters={"ipv4_address_scope": str(s4.id)}), 400, "BadRequest")
    # An unscoped pool's subnets give a null scope; moving the pool into a scope changes it at once.
    net2 = await mk.network(alice)
    await mk.subnet(alice, net2, pool=unscoped)
    assert (await topo("network.get", alice, id=str(net2.id))).network.ipv4_address_scope is None
    s4b = await mk.scope(4)
    revisions = {n.id: (await topo("network.get", alice, id=str(n.id))).network.revision_number for n in (net2, plain)}
    await mk.ipam("subnetpool.update", ADMIN, id=str(unscoped.id), subnetpool={"address_scope_id": str(s4b.id)})

    async def rescoped() -> bool:
        return (await topo("network.get", alice, id=str(net2.id))).network.ipv4_address_scope == s4b.id

    await eventually(rescoped, timeout=5, every=0.02)
    listed = (await topo("network.list", alice, filters={"id": str(net2.id)})).networks
    assert listed[0].ipv4_address_scope == s4b.id and listed[0].ipv6_address_scope is None
    # the network's representation changed: a new revision, and a network.updated event that says so
    assert listed[0].revision_number == revisions[net2.id] + 1

    def updates(net: Any) -> list[dict[str, Any]]:
        return [e for t, e in events.about(net.id) if t == "scopenet.v1.network.updated"]

    await eventually(lambda: _true(bool(updates(net2))), timeout=5, every=0.02)
    (ev,) = updates(net2)
    assert (ev["previous"]["ipv4_address_scope"], ev["resource"]["ipv4_address_scope"]) == (None, str(s4b.id))
    assert ev["resource"]["revision_number"] == revisions[net2.id] + 1
    # a network without a subnet of the pool is not touched
    assert (await topo("network.get", alice, id=str(plain.id))).network.revision_number == revisions[plain.id]
    assert updates(plain) == []


async def test_default_pool_and_specific_cidr(topo: Topo, mk: Build) -> None:
    alice = project()
    pool = await mk.pool(["172.20.0.0/16"], default_prefixlen=24)
    net = await mk.network(alice)
    specific = await mk.subnet(alice, net, pool=pool, cidr="172.20.5.0/24")
    assert specific.cidr == "172.20.5.0/24"
    await fails(mk.subnet(alice, net, pool=pool, cidr="172.21.0.0/24"), 409, "SubnetAllocationError")
    await fails(mk.subnet(alice, net, pool=pool, prefixlen=24, cidr="172.20.6.0/24"), 400, "BadRequest")


async def test_network_delete_takes_subnets_refuses_ports(topo: Topo, mk: Build) -> None:
    alice = project()
    net = await mk.network(alice)
    sub = await mk.subnet(alice, net, cidr="10.9.0.0/24")
    port = await mk.port(alice, net)
    await fails(topo("network.delete", alice, id=str(net.id)), 409, "NetworkInUse")
    await fails(topo("subnet.delete", alice, id=str(sub.id)), 409, "SubnetInUse")
    await topo("port.delete", alice, id=str(port.id))
    await topo("network.delete", alice, id=str(net.id))
    await fails(topo("subnet.get", alice, id=str(sub.id)), 404, "SubnetNotFound")
    await fails(mk.ipam("subnet.get", ADMIN, id=str(sub.id)), 404, "SubnetNotFound")
