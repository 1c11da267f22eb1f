"""Extra routes (``extraroute``, ``extraroute-atomic``) with the real ``openstack`` CLI: ``router set
--route`` / ``--no-route``, ``router add route`` / ``router remove route``, Neutron's refusals, the
atomic merge under concurrency, and the RouterSpec an agent gets (docs/neutron.md#extra-routes)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from scopenet.bus.client import BusClient
from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import ByIdCommand, CallContext
from tests.integration.api.conftest import ADMIN_PROJECT, Cli, Http


def route(dst: str, hop: str) -> dict[str, str]:
    return {"destination": dst, "nexthop": hop}


@pytest.fixture
async def lab(cli: Cli) -> dict[str, Any]:
    """Alice's router on two networks: 10.77.0.0/24 and 2001:db8:77::/64 (one each), no gateway."""
    tag = uuid.uuid4().hex[:8]
    net = await cli.ok("alice", "network", "create", f"xr-net-{tag}")
    v4 = await cli.ok("alice", "subnet", "create", "--network", net["id"], "--subnet-range", "10.77.0.0/24",
                      f"xr-v4-{tag}")  # fmt: skip
    net6 = await cli.ok("alice", "network", "create", f"xr-net6-{tag}")
    v6 = await cli.ok("alice", "subnet", "create", "--network", net6["id"], "--ip-version", "6",
                      "--subnet-range", "2001:db8:77::/64", f"xr-v6-{tag}")  # fmt: skip
    router = await cli.ok("alice", "router", "create", f"xr-router-{tag}")
    for sub in (v4, v6):
        await cli.ok("alice", "router", "add", "subnet", router["id"], sub["id"], fmt=False)
    return {"router": router["id"], "v4": v4["id"], "v6": v6["id"]}


def routes_of(shown: dict[str, Any]) -> list[dict[str, str]]:
    """openstackclient shows routes with ``gateway`` for ``nexthop`` (its ``--route`` spelling)."""
    return sorted(
        ({"destination": r["destination"], "nexthop": r.get("nexthop", r.get("gateway"))} for r in shown["routes"]),
        key=lambda r: (r["destination"], r["nexthop"]),
    )


async def test_set_add_remove_and_clear_routes(lab: dict[str, Any], cli: Cli) -> None:
    rid = lab["router"]
    await cli.ok("alice", "router", "set", "--route", "destination=172.20.0.0/16,gateway=10.77.0.10", rid, fmt=False)
    assert routes_of(await cli.ok("alice", "router", "show", rid)) == [route("172.20.0.0/16", "10.77.0.10")]

    # add: merged with what is there; a route already present is no error and not doubled
    added = await cli.ok(
        "alice", "router", "add", "route", rid,
        "--route", "destination=172.21.0.0/16,gateway=10.77.0.11",
        "--route", "destination=172.20.0.0/16,gateway=10.77.0.10",
        "--route", "destination=2001:db8:ff::/48,gateway=2001:db8:77::10",
    )  # fmt: skip
    assert routes_of(added) == [
        route("172.20.0.0/16", "10.77.0.10"),
        route("172.21.0.0/16", "10.77.0.11"),
        route("2001:db8:ff::/48", "2001:db8:77::10"),
    ]
    # remove: a route that is not there is no error either
    left = await cli.ok(
        "alice", "router", "remove", "route", rid,
        "--route", "destination=172.20.0.0/16,gateway=10.77.0.10",
        "--route", "destination=10.200.0.0/16,gateway=10.77.0.10",
    )  # fmt: skip
    assert routes_of(left) == [route("172.21.0.0/16", "10.77.0.11"), route("2001:db8:ff::/48", "2001:db8:77::10")]

    # set --route appends client-side; --no-route --route replaces; --no-route clears
    await cli.ok("alice", "router", "set", "--no-route", "--route", "destination=0.0.0.0/0,gateway=10.77.0.12", rid,
                 fmt=False)  # fmt: skip
    assert routes_of(await cli.ok("alice", "router", "show", rid)) == [route("0.0.0.0/0", "10.77.0.12")]
    await cli.ok("alice", "router", "set", "--no-route", rid, fmt=False)
    assert (await cli.ok("alice", "router", "show", rid))["routes"] == []


async def test_neutrons_refusals(lab: dict[str, Any], cli: Cli) -> None:
    rid = lab["router"]

    async def refused(*args: str) -> str:
        res = await cli("alice", "router", *args, fmt=args[0] != "set")
        assert res.code == 1, res.out
        return res.err

    err = await refused("add", "route", rid, "--route", "destination=172.20.0.0/16,gateway=10.99.0.1")
    assert "BadRequestException: 400" in err and "the nexthop is not connected with router" in err
    err = await refused("set", "--route", "destination=172.20.0.0/16,gateway=10.77.0.1", rid)
    assert "BadRequestException: 400" in err and "the nexthop is used by router" in err  # the router's own IP
    err = await refused("add", "route", rid, "--route", "destination=172.20.0.1/16,gateway=10.77.0.10")
    assert "BadRequestException: 400" in err and "'172.20.0.1/16' is not a valid CIDR" in err
    err = await refused("add", "route", rid, "--route", "destination=172.20.0.0/16,gateway=2001:db8:77::10")
    assert "BadRequestException: 400" in err and "mixed IP versions" in err
    many = [a for i in range(31) for a in ("--route", f"destination=172.{i}.0.0/16,gateway=10.77.0.10")]
    err = await refused("add", "route", rid, *many)
    assert "BadRequestException: 400" in err and "The number of routes exceeds the maximum 30" in err
    # nothing of the refused requests was written
    assert (await cli.ok("alice", "router", "show", rid))["routes"] == []

    # another project's router is not found, whatever it asks
    res = await cli("bob", "router", "add", "route", rid, "--route", "destination=172.20.0.0/16,gateway=10.77.0.10")
    assert res.code == 1 and ("No Router found" in res.err or "NotFoundException: 404" in res.err), res.err


async def test_a_route_holds_its_interface(lab: dict[str, Any], cli: Cli) -> None:
    rid = lab["router"]
    await cli.ok("alice", "router", "add", "route", rid, "--route", "destination=172.20.0.0/16,gateway=10.77.0.10")
    res = await cli("alice", "router", "remove", "subnet", rid, lab["v4"], fmt=False)
    assert res.code == 1 and "ConflictException: 409" in res.err and "required by one or more routes" in res.err
    # the IPv6 interface holds no route: it goes
    await cli.ok("alice", "router", "remove", "subnet", rid, lab["v6"], fmt=False)
    await cli.ok("alice", "router", "remove", "route", rid, "--route", "destination=172.20.0.0/16,gateway=10.77.0.10")
    await cli.ok("alice", "router", "remove", "subnet", rid, lab["v4"], fmt=False)


async def test_extensions_are_listed(cli: Cli) -> None:
    aliases = {e["Alias"] for e in await cli.ok("alice", "extension", "list", "--network")}
    assert {"extraroute", "extraroute-atomic"} <= aliases


async def test_concurrent_adds_all_land_and_the_spec_carries_them(
    lab: dict[str, Any], http: Http, nats_client: Any
) -> None:
    """Twenty clients add a route each at once: every one is kept (read-modify-write under the router's
    lock), each is one revision, and the RouterSpec an agent reads lists them all."""
    rid = lab["router"]
    before = (await http.get(f"/v2.0/routers/{rid}", "alice")).body["router"]["revision_number"]
    wanted = [route(f"172.{16 + i}.0.0/16", f"10.77.0.{10 + i}") for i in range(20)]
    replies = await asyncio.gather(
        *(http.put(f"/v2.0/routers/{rid}/add_extraroutes", "alice", {"router": {"routes": [r]}}) for r in wanted)
    )
    assert [r.status for r in replies] == [200] * 20
    router = (await http.get(f"/v2.0/routers/{rid}", "alice")).body["router"]
    assert sorted(router["routes"], key=str) == sorted(wanted, key=str)
    assert router["revision_number"] == before + 20

    bus = BusClient(nats_client, timeout=10)
    admin = CallContext(project_id=ADMIN_PROJECT, roles=["admin"])
    spec = await bus.call(ep.ROUTER_SPEC, ByIdCommand(context=admin, id=uuid.UUID(rid)))
    assert sorted((r.destination, r.nexthop) for r in spec.routes) == sorted(
        (r["destination"], r["nexthop"]) for r in wanted
    )

    # concurrent removals likewise
    replies = await asyncio.gather(
        *(http.put(f"/v2.0/routers/{rid}/remove_extraroutes", "alice", {"router": {"routes": [r]}}) for r in wanted)
    )
    assert [r.status for r in replies] == [200] * 20
    assert (await http.get(f"/v2.0/routers/{rid}", "alice")).body["router"]["routes"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"routes": []},
        {"router": {"routes": [], "name": "x"}},
        {"router": {"routes": "nope"}},
        {"router": {"routes": [{"destination": "10.0.0.0/8"}]}},
        {"router": {"routes": [{"destination": "10.0.0.0/8", "nexthop": "10.77.0.9", "x": 1}]}},
        [],
    ],
)
async def test_malformed_atomic_bodies_are_400(lab: dict[str, Any], http: Http, body: Any) -> None:
    for action in ("add_extraroutes", "remove_extraroutes"):
        reply = await http.put(f"/v2.0/routers/{lab['router']}/{action}", "alice", body)
        assert reply.status == 400, (action, body, reply.body)
