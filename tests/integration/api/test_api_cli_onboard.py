"""Onboarding existing subnets (``subnet_onboard``) with the real ``openstack`` CLI: ``network onboard
subnet NETWORK SUBNETPOOL`` (and its newer spelling ``subnet pool add network``) adopts a network's
subnets into a pool and its address scope; the network's scope, its routers' RouterSpecs and the BGP
announcements follow; Neutron's refusals (409 here) change nothing (docs/neutron.md#onboarding-subnets)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from scopenet.bus.client import BusClient
from scopenet.contracts import ipam as im
from scopenet.contracts import ipam_endpoints as iep
from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import ByIdCommand, CallContext
from tests.helpers import eventually
from tests.integration.api.conftest import ADMIN_PROJECT, ALICE_PROJECT, Cli, Http
from tests.integration.api.test_api_bgp import scoped_router

ONBOARD = "/v2.0/subnetpools/{}/onboard_network_subnets"


def tag() -> str:
    return uuid.uuid4().hex[:8]


async def scoped_pool(cli: Cli, who: str, prefix: str) -> tuple[str, str]:
    """A new IPv4 address scope with one pool holding ``prefix``: (scope id, pool id)."""
    t = tag()
    scope = await cli.ok(who, "address", "scope", "create", "--ip-version", "4", f"ob-scope-{t}")
    pool = await cli.ok(who, "subnet", "pool", "create", "--pool-prefix", prefix, "--address-scope", scope["id"],
                        f"ob-pool-{t}")  # fmt: skip
    return scope["id"], pool["id"]


async def network_with(cli: Cli, who: str, *cidrs: str) -> tuple[str, list[str]]:
    """A network with plain subnets (no pool: the unscoped space): (network id, subnet ids)."""
    t = tag()
    net = await cli.ok(who, "network", "create", f"ob-net-{t}")
    subs = []
    for i, cidr in enumerate(cidrs):
        extra = ["--ip-version", "6"] if ":" in cidr else []
        sub = await cli.ok(who, "subnet", "create", "--network", net["id"], "--subnet-range", cidr, *extra,
                           f"ob-sub-{t}-{i}")  # fmt: skip
        subs.append(sub["id"])
    return net["id"], subs


async def test_onboard_adopts_subnets_into_the_pool_and_its_scope(cli: Cli, http: Http, nats_client: Any) -> None:
    scope, pool = await scoped_pool(cli, "alice", "10.181.0.0/16")
    net, (v4, v6) = await network_with(cli, "alice", "172.30.5.0/24", "2001:db8:305::/64")
    router = await cli.ok("alice", "router", "create", f"ob-router-{tag()}")
    await cli.ok("alice", "router", "add", "subnet", router["id"], v4, fmt=False)
    before = await cli.ok("alice", "network", "show", net)
    assert before["ipv4_address_scope"] is None

    res = await cli("alice", "network", "onboard", "subnet", net, pool, fmt=False)
    assert res.code == 0, res.err

    assert (await cli.ok("alice", "subnet", "show", v4))["subnetpool_id"] == pool
    assert (await cli.ok("alice", "subnet", "show", v6))["subnetpool_id"] is None  # another IP version
    shown = await cli.ok("alice", "subnet", "pool", "show", pool)
    assert sorted(shown["prefixes"]) == ["10.181.0.0/16", "172.30.5.0/24"]
    after = await cli.ok("alice", "network", "show", net)
    assert after["ipv4_address_scope"] == scope
    assert after["ipv6_address_scope"] is None
    assert after["revision_number"] > before["revision_number"]

    # The router's interface on the subnet carries the scope's mark now: the datapath follows.
    bus = BusClient(nats_client, timeout=10)
    admin = CallContext(project_id=ADMIN_PROJECT, roles=["admin"])
    spec = await bus.call(ep.ROUTER_SPEC, ByIdCommand(context=admin, id=uuid.UUID(router["id"])))
    (port,) = spec.interfaces
    assert str(port.scope_v4.id) == scope and port.scope_v4.mark_id > 1024

    # Repeating it changes nothing and answers the same (Neutron refuses the repeat as an overlap).
    revision = shown["revision_number"]
    r = await http.put(ONBOARD.format(pool), "alice", {"network_id": net})
    assert r.status == 200, r.body
    assert r.body == [{"id": v4, "cidr": "172.30.5.0/24"}]
    assert (await cli.ok("alice", "subnet", "pool", "show", pool))["revision_number"] == revision
    # The subnet allocates from its pool like any other: its cidr is taken there.
    clash = await cli("alice", "subnet", "create", "--network", net, "--subnet-pool", pool, "--subnet-range",
                      "172.30.5.0/25", f"ob-clash-{tag()}")  # fmt: skip
    assert clash.code != 0


async def test_the_newer_spelling_and_an_empty_network(cli: Cli, http: Http) -> None:
    _, pool = await scoped_pool(cli, "alice", "10.182.0.0/16")
    net, (v4,) = await network_with(cli, "alice", "172.30.6.0/24")
    await cli.ok("alice", "subnet", "pool", "add", "network", net, pool, fmt=False)
    assert (await cli.ok("alice", "subnet", "show", v4))["subnetpool_id"] == pool
    empty = await cli.ok("alice", "network", "create", f"ob-empty-{tag()}")
    r = await http.put(ONBOARD.format(pool), "alice", {"network_id": empty["id"]})
    assert (r.status, r.body) == (200, [])


async def unchanged(cli: Cli, pool: str, prefixes: list[str], subnets: list[str]) -> None:
    """A refused onboard changed nothing: the pool's prefixes, the subnets' pools."""
    assert sorted((await cli.ok("alice", "subnet", "pool", "show", pool))["prefixes"]) == sorted(prefixes)
    for s in subnets:
        assert (await cli.ok("alice", "subnet", "show", s))["subnetpool_id"] is None


async def test_overlap_inside_the_scope_is_refused_and_changes_nothing(cli: Cli, http: Http) -> None:
    scope, pool = await scoped_pool(cli, "alice", "10.183.0.0/16")
    other = await cli.ok("alice", "subnet", "pool", "create", "--pool-prefix", "172.31.0.0/16", "--address-scope",
                         scope, f"ob-other-{tag()}")  # fmt: skip
    # One subnet would fit; the other overlaps the scope's other pool: neither moves (all or nothing).
    net, subs = await network_with(cli, "alice", "172.28.1.0/24", "172.31.2.0/24")
    r = await http.put(ONBOARD.format(pool), "alice", {"network_id": net})
    assert r.status == 409, r.body
    assert r.error()["type"] == "AddressScopePrefixConflict"
    assert other["id"] in r.error()["message"]
    await unchanged(cli, pool, ["10.183.0.0/16"], subs)
    assert (await cli.ok("alice", "network", "show", net))["ipv4_address_scope"] is None
    res = await cli("alice", "network", "onboard", "subnet", net, pool, fmt=False)
    assert res.code != 0 and "172.31" in res.err


async def test_overlap_with_the_pools_subnets_is_refused(cli: Cli, http: Http) -> None:
    _, pool = await scoped_pool(cli, "alice", "10.184.0.0/16")
    first, _ = await network_with(cli, "alice", "172.29.0.0/24")
    assert (await http.put(ONBOARD.format(pool), "alice", {"network_id": first})).status == 200
    # The same cidr on another network is fine while unscoped; it cannot join the same scope.
    second, subs = await network_with(cli, "alice", "172.29.0.0/25")
    r = await http.put(ONBOARD.format(pool), "alice", {"network_id": second})
    assert r.status == 409, r.body
    assert r.error()["type"] == "IllegalSubnetPoolUpdate"
    await unchanged(cli, pool, ["10.184.0.0/16", "172.29.0.0/24"], subs)


async def test_subnets_of_another_pool_are_refused(cli: Cli, http: Http) -> None:
    _, pool = await scoped_pool(cli, "alice", "10.185.0.0/16")
    plain = await cli.ok("alice", "subnet", "pool", "create", "--pool-prefix", "10.186.0.0/16", f"ob-plain-{tag()}")
    net = (await cli.ok("alice", "network", "create", f"ob-net-{tag()}"))["id"]
    sub = await cli.ok("alice", "subnet", "create", "--network", net, "--subnet-pool", plain["id"],
                       "--prefix-length", "24", f"ob-pooled-{tag()}")  # fmt: skip
    r = await http.put(ONBOARD.format(pool), "alice", {"network_id": net})
    assert r.status == 409, r.body
    assert r.error()["type"] == "NetworkSubnetPoolAffinityError"
    assert (await cli.ok("alice", "subnet", "show", sub["id"]))["subnetpool_id"] == plain["id"]
    assert (await cli.ok("alice", "subnet", "pool", "show", pool))["prefixes"] == ["10.185.0.0/16"]


async def test_bad_requests_and_other_projects(cli: Cli, http: Http) -> None:
    _, pool = await scoped_pool(cli, "alice", "10.187.0.0/16")
    net, subs = await network_with(cli, "alice", "172.27.0.0/24")
    assert (await http.put(ONBOARD.format(pool), "alice", {})).status == 400
    assert (await http.put(ONBOARD.format(pool), "alice", {"network_id": "nope"})).status == 400
    r = await http.put(ONBOARD.format(pool), "alice", {"network_id": str(uuid.uuid4())})
    assert (r.status, r.error()["type"]) == (404, "NetworkNotFound")
    r = await http.put(ONBOARD.format(uuid.uuid4()), "alice", {"network_id": net})
    assert (r.status, r.error()["type"]) == (404, "SubnetPoolNotFound")
    # Bob sees neither alice's network nor her pool.
    bobs, _ = await network_with(cli, "bob", "172.27.1.0/24")
    assert (await http.put(ONBOARD.format(pool), "bob", {"network_id": net})).status == 404
    assert (await http.put(ONBOARD.format(pool), "bob", {"network_id": bobs})).status == 404
    # A reader may not write.
    assert (await http.put(ONBOARD.format(pool), "reader", {"network_id": net})).status == 403
    await unchanged(cli, pool, ["10.187.0.0/16"], subs)


@pytest.mark.parametrize("who", ["admin"])
async def test_admin_may_onboard_a_projects_network(cli: Cli, http: Http, who: str) -> None:
    _, pool = await scoped_pool(cli, who, "10.188.0.0/16")
    net, (v4,) = await network_with(cli, "alice", "172.26.0.0/24")
    r = await http.put(ONBOARD.format(pool), who, {"network_id": net})
    assert (r.status, r.body) == (200, [{"id": v4, "cidr": "172.26.0.0/24"}])
    assert (await cli.ok("alice", "subnet", "show", v4))["subnetpool_id"] == pool


async def test_bgp_announces_an_onboarded_subnet(http: Http) -> None:
    """A router's unscoped subnet is not announced; onboarded into the gateway's scope, it is."""
    t = await scoped_router(http)
    body = {"bgp_speaker": {"name": f"ob-sp-{tag()}", "local_as": 64512, "ip_version": 4}}
    sp = (await http.post("/v2.0/bgp-speakers", body=body)).body["bgp_speaker"]
    base = f"/v2.0/bgp-speakers/{sp['id']}"
    assert (await http.put(f"{base}/add_gateway_network", body={"network_id": t["ext"]["id"]})).status == 200

    async def announced() -> list[str]:
        routes = (await http.get(f"{base}/get_advertised_routes")).body["advertised_routes"]
        assert all(r["next_hop"] == t["gw"] for r in routes)
        return sorted(r["destination"] for r in routes)

    assert await announced() == [t["scoped"]["cidr"]]
    r = await http.put(ONBOARD.format(t["pool"]["id"]), body={"network_id": t["plain"]["network_id"]})
    assert r.status == 200, r.body
    assert await announced() == sorted([t["scoped"]["cidr"], t["plain"]["cidr"]])


async def test_an_onboard_topology_never_saw_reaches_it_through_ipams_events(
    cli: Cli, http: Http, nats_client: Any
) -> None:
    """Topology failing after IPAM committed is what IPAM's command alone looks like (another system
    sent it, or topology died in between): IPAM's ``subnet.updated`` events bring topology along."""
    scope, pool = await scoped_pool(cli, "alice", "10.189.0.0/16")
    net, (v4,) = await network_with(cli, "alice", "172.25.0.0/24")
    bus = BusClient(nats_client, timeout=10)
    alice = CallContext(project_id=ALICE_PROJECT, roles=["member"])
    cmd = im.SubnetPoolOnboard(context=alice, id=uuid.UUID(pool), network_id=uuid.UUID(net))
    reply = await bus.call(iep.SUBNETPOOL_ONBOARD_NETWORK_SUBNETS, cmd)
    assert [str(s.id) for s in reply.subnets] == [v4] and "172.25.0.0/24" in reply.subnetpool.prefixes

    async def followed() -> bool:
        shown = (await http.get(f"/v2.0/networks/{net}", "alice")).body["network"]
        return bool(shown["ipv4_address_scope"] == scope)

    await eventually(followed, timeout=10, what="topology applied IPAM's onboarding")
    assert (await cli.ok("alice", "subnet", "show", v4))["subnetpool_id"] == pool
