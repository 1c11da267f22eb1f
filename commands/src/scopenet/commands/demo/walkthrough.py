"""The seed document's walkthrough through the HTTP API, with its two identities.

The admin makes the shared scopes and pools and the external network with subnets from them (seed
steps 1-3); a non-privileged project makes network1 (unscoped subnets), network2 (subnets from the
shared pools), router1 with its gateway and four interfaces, and the instances' ports (seed
"Routing with address scopes for non-privileged users"). Every outcome the seed shows is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scopenet.commands.demo.neutron import ApiError, Neutron


@dataclass
class World:
    """Everything the walkthrough made, by the seed's names."""

    scopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    router: dict[str, Any] = field(default_factory=dict)
    ports: dict[str, dict[str, Any]] = field(default_factory=dict)
    floating_ips: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    refusal: str = ""

    def expect(self, what: str, got: Any, want: Any) -> None:
        if got != want:
            self.problems.append(f"{what}: got {got!r}, expected {want!r}")


async def admin_part(admin: Neutron, w: World, say: Any) -> None:
    say("admin: openstack address scope create --share --ip-version 6|4 address-scope-ip6|ip4")
    for v in (6, 4):
        w.scopes[f"address-scope-ip{v}"] = await admin.create(
            "address-scopes", "address_scope", name=f"address-scope-ip{v}", ip_version=v, shared=True
        )
    say("admin: openstack subnet pool create --address-scope ... --share --pool-prefix ... subnet-pool-ip6|ip4")
    for v, prefix, plen in ((6, "2001:db8:a583::/48", 64), (4, "203.0.113.0/24", 26)):
        w.pools[f"subnet-pool-ip{v}"] = await admin.create(
            "subnetpools",
            "subnetpool",
            name=f"subnet-pool-ip{v}",
            prefixes=[prefix],
            default_prefixlen=plen,
            address_scope_id=w.scopes[f"address-scope-ip{v}"]["id"],
            shared=True,
        )
    say("admin: external network 'public' with public-subnet and ipv6-public-subnet from the pools")
    w.networks["public"] = await admin.create("networks", "network", name="public", **{"router:external": True})
    w.subnets["public-subnet"] = await admin.create(
        "subnets",
        "subnet",
        name="public-subnet",
        network_id=w.networks["public"]["id"],
        ip_version=4,
        subnetpool_id=w.pools["subnet-pool-ip4"]["id"],
        enable_dhcp=False,
    )
    w.subnets["ipv6-public-subnet"] = await admin.create(
        "subnets",
        "subnet",
        name="ipv6-public-subnet",
        network_id=w.networks["public"]["id"],
        ip_version=6,
        subnetpool_id=w.pools["subnet-pool-ip6"]["id"],
        enable_dhcp=False,
    )
    w.expect("public-subnet cidr", w.subnets["public-subnet"]["cidr"], "203.0.113.0/26")
    w.expect("public-subnet gateway", w.subnets["public-subnet"]["gateway_ip"], "203.0.113.1")
    w.expect("ipv6-public-subnet cidr", w.subnets["ipv6-public-subnet"]["cidr"], "2001:db8:a583::/64")
    w.expect("ipv6-public-subnet gateway", w.subnets["ipv6-public-subnet"]["gateway_ip"], "2001:db8:a583::1")


async def project_part(project: Neutron, w: World, say: Any) -> None:
    say("project: a shared address scope is the admin's to create")
    try:
        await project.create("address-scopes", "address_scope", name="mine", ip_version=4, shared=True)
        w.problems.append("a non-admin project created a shared address scope")
    except ApiError as exc:
        w.refusal = str(exc)
        w.expect("shared scope by a project", exc.status, 403)
    say("project: openstack network create network1 / network2")
    for name in ("network1", "network2"):
        w.networks[name] = await project.create("networks", "network", name=name)
        w.expect(f"{name} ipv4_address_scope before subnets", w.networks[name]["ipv4_address_scope"], None)
    n1, n2 = w.networks["network1"]["id"], w.networks["network2"]["id"]
    say("project: subnet-ip4-1 198.51.100.0/26 and subnet-ip6-1 2001:db8:80d2:c4d3::/64 (no pool: unscoped)")
    w.subnets["subnet-ip4-1"] = await project.create(
        "subnets", "subnet", name="subnet-ip4-1", network_id=n1, ip_version=4, cidr="198.51.100.0/26"
    )
    w.subnets["subnet-ip6-1"] = await project.create(
        "subnets",
        "subnet",
        name="subnet-ip6-1",
        network_id=n1,
        ip_version=6,
        cidr="2001:db8:80d2:c4d3::/64",
        ipv6_ra_mode="slaac",
        ipv6_address_mode="slaac",
    )
    w.expect("subnet-ip4-1 gateway", w.subnets["subnet-ip4-1"]["gateway_ip"], "198.51.100.1")
    w.expect("subnet-ip6-1 gateway", w.subnets["subnet-ip6-1"]["gateway_ip"], "2001:db8:80d2:c4d3::1")
    say("project: subnet-ip4-2 and subnet-ip6-2 from subnet-pool-ip4 / subnet-pool-ip6 on network2")
    w.subnets["subnet-ip4-2"] = await project.create(
        "subnets",
        "subnet",
        name="subnet-ip4-2",
        network_id=n2,
        ip_version=4,
        subnetpool_id=w.pools["subnet-pool-ip4"]["id"],
    )
    w.subnets["subnet-ip6-2"] = await project.create(
        "subnets",
        "subnet",
        name="subnet-ip6-2",
        network_id=n2,
        ip_version=6,
        subnetpool_id=w.pools["subnet-pool-ip6"]["id"],
        ipv6_ra_mode="slaac",
        ipv6_address_mode="slaac",
    )
    # The seed's own example shows 203.0.113.0/26 twice (external and network2): in one scope that
    # is impossible, and scopenet gives network2 the next free /26.
    w.expect("subnet-ip4-2 cidr", w.subnets["subnet-ip4-2"]["cidr"], "203.0.113.64/26")
    w.expect("subnet-ip6-2 cidr", w.subnets["subnet-ip6-2"]["cidr"], "2001:db8:a583:1::/64")
    for name in ("network1", "network2"):
        w.networks[name] = await project.show("networks", "network", w.networks[name]["id"])
    w.expect("network1 ipv4_address_scope", w.networks["network1"]["ipv4_address_scope"], None)
    w.expect("network1 ipv6_address_scope", w.networks["network1"]["ipv6_address_scope"], None)
    w.expect(
        "network2 ipv4_address_scope", w.networks["network2"]["ipv4_address_scope"], w.scopes["address-scope-ip4"]["id"]
    )
    w.expect(
        "network2 ipv6_address_scope", w.networks["network2"]["ipv6_address_scope"], w.scopes["address-scope-ip6"]["id"]
    )
    say("project: router1, openstack router set --external-gateway public, router add subnet x4")
    w.router = await project.create("routers", "router", name="router1")
    w.router = await project.update(
        "routers", "router", w.router["id"], external_gateway_info={"network_id": w.networks["public"]["id"]}
    )
    for name in ("subnet-ip4-1", "subnet-ip4-2", "subnet-ip6-1", "subnet-ip6-2"):
        await project.action("routers", w.router["id"], "add_router_interface", {"subnet_id": w.subnets[name]["id"]})
    w.router = await project.show("routers", "router", w.router["id"])
    say("project: ports for instance1 (network1) and instance2 (network2)")
    w.ports["instance1"] = await project.create("ports", "port", name="instance1", network_id=n1)
    w.ports["instance2"] = await project.create("ports", "port", name="instance2", network_id=n2)


async def external_host_port(admin: Neutron, w: World) -> None:
    """The "external network router" of the seed's pings: an admin port on the external network."""
    w.ports["external-host"] = await admin.create(
        "ports", "port", name="external-host", network_id=w.networks["public"]["id"]
    )


async def floating_ips(project: Neutron, w: World, say: Any) -> None:
    say("project: openstack floating ip create public --port instance1 / instance2")
    for name in ("instance1", "instance2"):
        w.floating_ips[name] = await project.create(
            "floatingips", "floatingip", floating_network_id=w.networks["public"]["id"], port_id=w.ports[name]["id"]
        )
