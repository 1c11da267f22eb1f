"""The seed document's walkthrough with the real ``openstack`` CLI (admin_token auth, -f json).

Names are the seed's own; the admin part creates the scopes and pools once for the module, and the
project part (networks, subnets, router, ports, floating IPs) runs on top of them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import ADMIN_PROJECT, Cli, Http


@pytest.fixture(scope="module")
async def seed(cli: Cli) -> dict[str, Any]:
    """Seed step 1 and 2 as the admin: two shared scopes and a shared pool in each."""
    s6 = await cli.ok("admin", "address", "scope", "create", "--share", "--ip-version", "6", "address-scope-ip6")
    s4 = await cli.ok("admin", "address", "scope", "create", "--share", "--ip-version", "4", "address-scope-ip4")
    p6 = await cli.ok(
        "admin", "subnet", "pool", "create", "--address-scope", "address-scope-ip6", "--share",
        "--pool-prefix", "2001:db8:a583::/48", "--default-prefix-length", "64", "subnet-pool-ip6",
    )  # fmt: skip
    p4 = await cli.ok(
        "admin", "subnet", "pool", "create", "--address-scope", "address-scope-ip4", "--share",
        "--pool-prefix", "203.0.113.0/24", "--default-prefix-length", "26", "subnet-pool-ip4",
    )  # fmt: skip
    return {"s6": s6, "s4": s4, "p6": p6, "p4": p4}


async def test_admin_creates_shared_scopes_and_pools(seed: dict[str, Any], cli: Cli) -> None:
    s6, s4, p6, p4 = seed["s6"], seed["s4"], seed["p6"], seed["p4"]
    assert {k: s6[k] for k in ("ip_version", "name", "project_id", "shared")} == {
        "ip_version": 6,
        "name": "address-scope-ip6",
        "project_id": ADMIN_PROJECT,
        "shared": True,
    }
    assert (s4["ip_version"], s4["shared"]) == (4, True)
    assert p6["address_scope_id"] == s6["id"]
    assert p6["prefixes"] == ["2001:db8:a583::/48"]
    assert (p6["default_prefixlen"], p6["min_prefixlen"], p6["max_prefixlen"]) == (64, 64, 128)
    assert p4["address_scope_id"] == s4["id"]
    assert (p4["default_prefixlen"], p4["min_prefixlen"], p4["max_prefixlen"]) == (26, 8, 32)
    assert (p4["ip_version"], p4["shared"], p4["is_default"], p4["default_quota"]) == (4, True, False, None)
    assert p4["tags"] == [] and p4["description"] == "" and p4["created_at"].endswith("Z")

    listed = await cli.ok("admin", "subnet", "pool", "list", "--long")
    names = {p["Name"]: p for p in listed}
    assert names["subnet-pool-ip4"]["Address Scope"] == s4["id"]
    assert names["subnet-pool-ip4"]["Default Prefix Length"] == 26


async def test_subnet_pool_set_moves_a_pool_into_a_scope(seed: dict[str, Any], cli: Cli) -> None:
    """Seed step 2: "use the openstack subnet pool set command to put them in a new address scope"."""
    await cli.ok("admin", "subnet", "pool", "create", "--pool-prefix", "198.18.0.0/24", "legacy-pool")
    await cli.ok("admin", "subnet", "pool", "set", "--address-scope", "address-scope-ip4", "legacy-pool", fmt=False)
    await cli.ok("admin", "subnet", "pool", "set", "--pool-prefix", "198.18.1.0/24", "--description", "moved",
                 "legacy-pool", fmt=False)  # fmt: skip
    shown = await cli.ok("admin", "subnet", "pool", "show", "legacy-pool")
    assert shown["address_scope_id"] == seed["s4"]["id"]
    assert shown["prefixes"] == ["198.18.0.0/23"]  # compacted
    assert shown["description"] == "moved"
    assert shown["revision_number"] == 2

    # A pool overlapping another pool of the same scope is refused with Neutron's 409.
    bad = await cli("admin", "subnet", "pool", "create", "--address-scope", "address-scope-ip4",
                    "--pool-prefix", "203.0.113.128/25", "overlapping-pool")  # fmt: skip
    assert bad.code == 1 and "ConflictException: 409" in bad.err


async def test_project_cannot_create_a_shared_scope(cli: Cli) -> None:
    res = await cli("alice", "address", "scope", "create", "--share", "--ip-version", "4", "mine-shared")
    assert res.code == 1
    assert "ForbiddenException: 403" in res.err
    assert "create_address_scope:shared" in res.err and "is disallowed by policy" in res.err


async def test_projects_are_isolated(seed: dict[str, Any], cli: Cli, http: Http) -> None:
    scope = await cli.ok("alice", "address", "scope", "create", "--ip-version", "4", "alice-scope")
    pool = await cli.ok("alice", "subnet", "pool", "create", "--address-scope", "alice-scope",
                        "--pool-prefix", "10.77.0.0/16", "alice-pool")  # fmt: skip
    assert pool["project_id"] == "a" * 32 and pool["shared"] is False

    # bob sees the admin's shared objects but none of alice's private ones
    bob_scopes = {s["Name"] for s in await cli.ok("bob", "address", "scope", "list")}
    assert {"address-scope-ip4", "address-scope-ip6"} <= bob_scopes and "alice-scope" not in bob_scopes
    res = await cli("bob", "subnet", "pool", "show", "alice-pool")
    assert res.code == 1 and "No SubnetPool found for alice-pool" in res.err
    for method, path in (("GET", "address-scopes"), ("PUT", "address-scopes"), ("DELETE", "address-scopes"),
                         ("GET", "subnetpools"), ("PUT", "subnetpools"), ("DELETE", "subnetpools")):  # fmt: skip
        obj = scope if path == "address-scopes" else pool
        key = "address_scope" if path == "address-scopes" else "subnetpool"
        body = {key: {"name": "stolen"}} if method == "PUT" else None
        r = await http.request(method, f"/v2.0/{path}/{obj['id']}", "bob", body)
        assert r.status == 404, (method, path, r.body)
    listed = (await http.get("/v2.0/subnetpools", "bob")).body["subnetpools"]
    assert pool["id"] not in {p["id"] for p in listed} and seed["p4"]["id"] in {p["id"] for p in listed}
    # bob may not change the admin's shared pool either (403: it is visible to him)
    res = await cli("bob", "subnet", "pool", "set", "--name", "stolen", "subnet-pool-ip4", fmt=False)
    assert res.code == 1 and "403" in res.err
    assert (await cli.ok("alice", "subnet", "pool", "show", pool["id"]))["name"] == "alice-pool"
    await cli.ok("alice", "subnet", "pool", "delete", pool["id"], fmt=False)
    await cli.ok("alice", "address", "scope", "delete", scope["id"], fmt=False)


async def test_project_walkthrough(seed: dict[str, Any], cli: Cli, http: Http) -> None:
    """Seed section "Routing with address scopes for non-privileged users", as alice."""
    s4, s6 = seed["s4"]["id"], seed["s6"]["id"]
    # admin: the external network, its subnets from the pools (seed step 3)
    public = await cli.ok("admin", "network", "create", "--external", "public")
    assert public["router:external"] is True and public["provider:network_type"] == "vxlan"
    pub4 = await cli.ok("admin", "subnet", "create", "--network", "public", "--subnet-pool", "subnet-pool-ip4",
                        "--no-dhcp", "public-subnet")  # fmt: skip
    assert (pub4["cidr"], pub4["gateway_ip"]) == ("203.0.113.0/26", "203.0.113.1")
    assert pub4["allocation_pools"] == [{"start": "203.0.113.2", "end": "203.0.113.62"}]
    assert pub4["subnetpool_id"] == seed["p4"]["id"] and pub4["enable_dhcp"] is False
    pub6 = await cli.ok("admin", "subnet", "create", "--network", "public", "--ip-version", "6",
                        "--subnet-pool", "subnet-pool-ip6", "--no-dhcp", "ipv6-public-subnet")  # fmt: skip
    assert (pub6["cidr"], pub6["gateway_ip"]) == ("2001:db8:a583::/64", "2001:db8:a583::1")

    # alice: two networks, unscoped subnets on network1, pool subnets on network2
    for name in ("network1", "network2"):
        net = await cli.ok("alice", "network", "create", name)
        assert (net["ipv4_address_scope"], net["ipv6_address_scope"], net["shared"]) == (None, None, False)
        assert (net["router:external"], net["mtu"]) == (False, 1450)
        assert net.get("provider:segmentation_id") is None  # admin-only (Neutron's policy)
        assert (net["router:external"], net["mtu"], net["status"]) == (False, 1450, "ACTIVE")
    sub41 = await cli.ok("alice", "subnet", "create", "--network", "network1", "--subnet-range", "198.51.100.0/26",
                         "subnet-ip4-1")  # fmt: skip
    assert (sub41["gateway_ip"], sub41["subnetpool_id"]) == ("198.51.100.1", None)
    assert sub41["allocation_pools"] == [{"start": "198.51.100.2", "end": "198.51.100.62"}]
    sub61 = await cli.ok("alice", "subnet", "create", "--network", "network1", "--ipv6-ra-mode", "slaac",
                         "--ipv6-address-mode", "slaac", "--ip-version", "6", "--subnet-range",
                         "2001:db8:80d2:c4d3::/64", "subnet-ip6-1")  # fmt: skip
    assert (sub61["ipv6_ra_mode"], sub61["ipv6_address_mode"]) == ("slaac", "slaac")
    sub42 = await cli.ok("alice", "subnet", "create", "--subnet-pool", "subnet-pool-ip4", "--network", "network2",
                         "subnet-ip4-2")  # fmt: skip
    # the seed shows 203.0.113.0/26 twice; a scope never hands out one prefix twice
    assert sub42["cidr"] == "203.0.113.64/26" and sub42["gateway_ip"] == "203.0.113.65"
    sub62 = await cli.ok("alice", "subnet", "create", "--ip-version", "6", "--ipv6-ra-mode", "slaac",
                         "--ipv6-address-mode", "slaac", "--subnet-pool", "subnet-pool-ip6", "--network", "network2",
                         "subnet-ip6-2")  # fmt: skip
    assert sub62["cidr"] == "2001:db8:a583:1::/64" and sub62["subnetpool_id"] == seed["p6"]["id"]
    net2 = await cli.ok("alice", "network", "show", "network2")
    assert (net2["ipv4_address_scope"], net2["ipv6_address_scope"]) == (s4, s6)
    assert sorted(net2["subnets"]) == sorted([sub42["id"], sub62["id"]])
    net1 = await cli.ok("alice", "network", "show", "network1")
    assert (net1["ipv4_address_scope"], net1["ipv6_address_scope"]) == (None, None)

    # router, gateway, interfaces (seed step 4)
    await cli.ok("alice", "router", "create", "router1")
    await cli.ok("alice", "router", "set", "--external-gateway", "public", "router1", fmt=False)
    for sub in ("subnet-ip4-1", "subnet-ip4-2", "subnet-ip6-1", "subnet-ip6-2"):
        await cli.ok("alice", "router", "add", "subnet", "router1", sub, fmt=False)
    router = await cli.ok("alice", "router", "show", "router1")
    assert router["external_gateway_info"]["network_id"] == public["id"]
    assert router["external_gateway_info"]["enable_snat"] is True
    refused = await cli(
        "alice", "router", "set", "--external-gateway", "public", "--disable-snat", "router1", fmt=False
    )
    assert refused.code == 1 and "403" in refused.err

    # ports and floating IPs ("launch two instances ... associate a floating IP")
    port1 = await cli.ok("alice", "port", "create", "--network", "network1", "port1")
    port2 = await cli.ok("alice", "port", "create", "--network", "network2", "port2")
    v4 = [ip["ip_address"] for ip in port1["fixed_ips"] if ip["subnet_id"] == sub41["id"]]
    assert v4 and v4[0].startswith("198.51.100.")
    assert any(ip["subnet_id"] == sub42["id"] for ip in port2["fixed_ips"])
    fip1 = await cli.ok("alice", "floating", "ip", "create", "--port", "port1", "public")
    fip2 = await cli.ok("alice", "floating", "ip", "create", "--port", "port2", "public")
    for fip, port in ((fip1, port1), (fip2, port2)):
        assert fip["floating_ip_address"].startswith("203.0.113.") and fip["port_id"] == port["id"]
    assert fip1["floating_ip_address"] != fip2["floating_ip_address"]

    # a second project sees none of it and can change none of it
    assert "network1" not in {n["Name"] for n in await cli.ok("bob", "network", "list")}
    for path, obj in (("networks", net1), ("subnets", sub41), ("ports", port1), ("routers", router),
                      ("floatingips", fip1)):  # fmt: skip
        assert (await http.get(f"/v2.0/{path}/{obj['id']}", "bob")).status == 404, path
        assert (await http.delete(f"/v2.0/{path}/{obj['id']}", "bob")).status == 404, path
        assert obj["id"] not in {i["id"] for i in (await http.get(f"/v2.0/{path}", "bob")).body[path]}
    r = await http.put(f"/v2.0/routers/{router['id']}/add_router_interface", "bob", {"subnet_id": sub42["id"]})
    assert r.status == 404
    assert (await cli.ok("alice", "router", "show", "router1"))["name"] == "router1"
