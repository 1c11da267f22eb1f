"""IPAM views as people use them: ``openstack ip availability list|show`` (Neutron's
network-ip-availability, admin only), a pool's usage (prefixes, free blocks, each project's quota
use) and its allocation history, complete under concurrent allocation (docs/neutron.md#ip-availability,
docs/operations.md#pool-usage, docs/operations.md#pool-allocation-history)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any
from urllib.parse import quote

from nats.js.api import DeliverPolicy
from netaddr import IPNetwork, IPSet

from tests.helpers import eventually
from tests.integration.api.conftest import ADMIN_PROJECT, ALICE_PROJECT, BOB_PROJECT, Cli, Http


def tag() -> str:
    return uuid.uuid4().hex[:8]


def octet() -> int:
    return random.randint(100, 250)


# ---------------------------------------------------------------- network-ip-availability


async def test_ip_availability_counts_like_neutron_in_the_real_cli(cli: Cli, http: Http) -> None:
    y, t = octet(), tag()
    net = await cli.ok("alice", "network", "create", f"ipa-net-{t}")
    a = await cli.ok("alice", "subnet", "create", "--network", net["id"], "--subnet-range", f"10.{y}.0.0/24",
                     f"ipa-a-{t}")  # fmt: skip
    b = await cli.ok("alice", "subnet", "create", "--network", net["id"], "--subnet-range", f"10.{y}.1.0/24",
                     "--allocation-pool", f"start=10.{y}.1.10,end=10.{y}.1.19", f"ipa-b-{t}")  # fmt: skip
    c = await cli.ok("alice", "subnet", "create", "--network", net["id"], "--ip-version", "6",
                     "--subnet-range", f"2001:db8:{y}::/64", f"ipa-c-{t}")  # fmt: skip
    for i in range(3):
        await cli.ok("alice", "port", "create", "--network", net["id"], "--fixed-ip", f"subnet={a['id']}", f"p{i}-{t}")
    # An address outside the allocation pools counts as used, but not as used in the pools.
    await cli.ok("alice", "port", "create", "--network", net["id"], "--fixed-ip",
                 f"subnet={b['id']},ip-address=10.{y}.1.200", f"pb-{t}")  # fmt: skip
    router = await cli.ok("alice", "router", "create", f"ipa-router-{t}")
    await cli.ok("alice", "router", "add", "subnet", router["id"], a["id"], fmt=False)  # takes the gateway, .1

    # By hand: a = .2-.254 (253) with 3 ports + the router's gateway address; b = 10 in its pool, one
    # address outside it; c = ::2 - ::ffff:ffff:ffff:ffff (2^64 - 2), nothing used.
    listed = await cli.ok("admin", "ip", "availability", "list")  # the CLI asks for IPv4 by default
    (mine,) = [n for n in listed if n["Network ID"] == net["id"]]
    assert (mine["Network Name"], mine["Total IPs"], mine["Used IPs"]) == (f"ipa-net-{t}", 263, 5)
    assert (mine["Total IPs in Subnet"], mine["Total IPs in Allocation Pool"]) == (508, 263)
    assert (mine["Used IPs in Subnet"], mine["Used IPs in Allocation Pool"]) == (5, 3)

    shown = await cli.ok("admin", "ip", "availability", "show", net["id"])
    assert (shown["total_ips"], shown["used_ips"]) == (263 + 2**64 - 2, 5)
    assert shown["project_id"] == ALICE_PROJECT
    subnets = {s["subnet_id"]: s for s in shown["subnet_ip_availability"]}
    assert {k: (v["total_ips"], v["used_ips"]) for k, v in subnets.items()} == {
        a["id"]: (253, 4),
        b["id"]: (10, 1),
        c["id"]: (2**64 - 2, 0),
    }
    assert subnets[c["id"]]["cidr"] == f"2001:db8:{y}::/64" and subnets[c["id"]]["ip_version"] == 6
    assert subnets[a["id"]]["subnet_name"] == f"ipa-a-{t}"
    # The CLI finds it by name too (the SDK's fallback: a list filtered on network_name).
    by_name = await cli.ok("admin", "ip", "availability", "show", f"ipa-net-{t}")
    assert by_name["network_id"] == net["id"]

    six = await http.get(f"/v2.0/network-ip-availabilities?ip_version=6&network_id={net['id']}")
    (only,) = six.body["network_ip_availabilities"]
    assert [s["subnet_id"] for s in only["subnet_ip_availability"]] == [c["id"]]
    for query in ("network_name=%00", "ip_version=5", "network_id=nope", "sort_key=color"):
        bad = await http.get(f"/v2.0/network-ip-availabilities?{query}")
        assert bad.status == 400, (query, bad.body)
    fields = await http.get(f"/v2.0/network-ip-availabilities/{net['id']}?fields=network_id&fields=used_ips")
    assert fields.body == {"network_ip_availability": {"network_id": net["id"], "used_ips": 5}}


async def test_ip_availability_lists_networks_without_subnets_with_zeros(cli: Cli, http: Http) -> None:
    net = await cli.ok("bob", "network", "create", f"ipa-empty-{tag()}")
    r = await http.get(f"/v2.0/network-ip-availabilities/{net['id']}")
    assert r.status == 200
    assert r.body["network_ip_availability"] | {"network_id": None} == {
        "network_id": None,
        "network_name": net["name"],
        "project_id": BOB_PROJECT,
        "tenant_id": BOB_PROJECT,
        "total_ips": 0,
        "used_ips": 0,
        "subnet_ip_availability": [],
        "ip_availability_details": {
            "total_ips_in_subnet": 0,
            "total_ips_in_allocation_pool": 0,
            "used_ips_in_subnet": 0,
            "used_ips_in_allocation_pool": 0,
        },
    }
    missing = await http.get(f"/v2.0/network-ip-availabilities/{uuid.uuid4()}")
    assert (missing.status, missing.error()["type"]) == (404, "NetworkNotFound")


async def test_ip_availability_is_admin_only_as_in_neutron(cli: Cli, http: Http) -> None:
    """Neutron refuses a GET the policy forbids by hiding: an empty list, a 404 for one item."""
    net = await cli.ok("alice", "network", "create", f"ipa-own-{tag()}")
    await cli.ok("alice", "subnet", "create", "--network", net["id"], "--subnet-range", f"10.{octet()}.7.0/24",
                 f"ipa-own-sub-{tag()}")  # fmt: skip
    assert await cli.ok("alice", "ip", "availability", "list") == []
    refused = await cli("alice", "ip", "availability", "show", net["id"])
    assert refused.code != 0
    assert "No NetworkIPAvailability found" in refused.err or "could not be found" in refused.err
    r = await http.get(f"/v2.0/network-ip-availabilities/{net['id']}", "reader")
    assert (r.status, r.error()["type"]) == (404, "HTTPNotFound")
    listed = await http.get("/v2.0/network-ip-availabilities", "bob")
    assert (listed.status, listed.body) == (200, {"network_ip_availabilities": []})
    aliases = {e["alias"] for e in (await http.get("/v2.0/extensions", "alice")).body["extensions"]}
    assert {"network-ip-availability", "network-ip-availability-details"} <= aliases


# ---------------------------------------------------------------- pool usage


async def test_pool_usage_matches_hand_computed_figures(cli: Cli, http: Http) -> None:
    y, t = octet(), tag()
    pool = await cli.ok("admin", "subnet", "pool", "create", "--share", "--pool-prefix", f"10.{y}.0.0/22",
                        "--pool-prefix", f"10.{y}.8.0/24", "--default-prefix-length", "26",
                        "--min-prefix-length", "24", "--max-prefix-length", "28", "--default-quota", "400",
                        f"use-pool-{t}")  # fmt: skip
    alice_net = await cli.ok("alice", "network", "create", f"use-a-{t}")
    bob_net = await cli.ok("bob", "network", "create", f"use-b-{t}")
    # Best fit: the /26 comes from the smaller prefix (the /24), then bob's /27 right after it.
    a1 = await cli.ok("alice", "subnet", "create", "--network", alice_net["id"], "--subnet-pool", pool["id"],
                      f"use-a1-{t}")  # fmt: skip
    a2 = await cli.ok("alice", "subnet", "create", "--network", alice_net["id"], "--subnet-pool", pool["id"],
                      "--subnet-range", f"10.{y}.1.0/24", f"use-a2-{t}")  # fmt: skip
    b1 = await cli.ok("bob", "subnet", "create", "--network", bob_net["id"], "--subnet-pool", pool["id"],
                      "--prefix-length", "27", f"use-b1-{t}")  # fmt: skip
    assert (a1["cidr"], b1["cidr"]) == (f"10.{y}.8.0/26", f"10.{y}.8.64/27")

    r = await http.get(f"/v2.0/subnetpools/{pool['id']}/usage")
    assert r.status == 200, r.body
    u = r.body["subnetpool_usage"]
    assert (u["total_ips"], u["used_ips"], u["free_ips"], u["used_percent"]) == (1280, 352, 928, 27.5)
    assert (u["subnet_count"], u["default_quota"], u["quota_unit"]) == (3, 400, "address")
    wide, small = u["prefixes"]
    assert (wide["cidr"], wide["used_ips"], wide["free_ips"]) == (f"10.{y}.0.0/22", 256, 768)
    rows = [(b["cidr"], b["status"], b.get("suggested"), b["subnet_id"]) for b in wide["blocks"]]
    assert rows == [
        (f"10.{y}.0.0/24", "free", f"10.{y}.0.0/24", None),
        (f"10.{y}.1.0/24", "allocated", None, a2["id"]),
        (f"10.{y}.2.0/23", "free", f"10.{y}.2.0/26", None),  # longer than min: its first default-sized subnet
    ]
    rows = [(b["cidr"], b["status"], b["size"], b["project_id"]) for b in small["blocks"]]
    assert rows == [
        (f"10.{y}.8.0/26", "allocated", 64, ALICE_PROJECT),
        (f"10.{y}.8.64/27", "allocated", 32, BOB_PROJECT),
        (f"10.{y}.8.96/27", "free", 32, None),
        (f"10.{y}.8.128/25", "free", 128, None),
    ]
    assert u["projects"] == [
        {
            "project_id": ALICE_PROJECT,
            "subnet_count": 2,
            "used_ips": 320,
            "quota_used": 320.0,
            "quota_limit": 400,
            "quota_percent": 80.0,
        },
        {
            "project_id": BOB_PROJECT,
            "subnet_count": 1,
            "used_ips": 32,
            "quota_used": 32.0,
            "quota_limit": 400,
            "quota_percent": 8.0,
        },
    ]

    # Bob sees the same space, but not whose the other subnets are, and only his own quota row.
    r = await http.get(f"/v2.0/subnetpools/{pool['id']}/usage", "bob")
    ub = r.body["subnetpool_usage"]
    assert (ub["used_ips"], ub["free_ips"]) == (352, 928)
    blocks = ub["prefixes"][1]["blocks"]
    assert (blocks[0]["subnet_id"], blocks[0]["project_id"], blocks[1]["subnet_id"]) == (None, None, b1["id"])
    assert [p["project_id"] for p in ub["projects"]] == [BOB_PROJECT]

    # A pool the caller cannot see is not found, as everywhere else.
    private = await cli.ok("alice", "subnet", "pool", "create", "--pool-prefix", f"10.{y}.16.0/24",
                           f"use-private-{t}")  # fmt: skip
    for path in (f"/v2.0/subnetpools/{private['id']}/usage", f"/v2.0/subnetpools/{private['id']}/history"):
        r = await http.get(path, "bob")
        assert (r.status, r.error()["type"]) == (404, "SubnetPoolNotFound")
    r = await http.get("/v2.0/subnetpools/not-a-uuid/usage")
    assert r.status == 404


# ---------------------------------------------------------------- history


async def _all_history(http: Http, pool_id: str, who: str = "alice", limit: int = 7) -> list[dict[str, Any]]:
    """Every entry, oldest first, read page by page through the next links."""
    out: list[dict[str, Any]] = []
    path: str | None = f"/v2.0/subnetpools/{pool_id}/history?sort_dir=asc&limit={limit}"
    while path is not None:
        r = await http.get(path, who)
        assert r.status == 200, r.body
        out += r.body["subnetpool_history"]
        links = r.body.get("subnetpool_history_links", [])
        path = links[0]["href"].split(http.base, 1)[1] if links else None
    return out


async def test_history_is_complete_and_ordered_under_concurrent_allocation(
    cli: Cli, http: Http, nats_client: Any
) -> None:
    """N concurrent creates, then N deletes racing N more creates, then N deletes: exactly 2N
    ``allocated`` and 2N ``released`` entries, in an order that replays to the pool's state, each the
    twin of one event on SCOPENET_EVENTS and naming the request that caused it."""
    y, t, n = octet(), tag(), 12
    events: dict[str, tuple[str, str, str]] = {}  # event id -> (subject, subnet id, cidr)

    async def heard(msg: Any) -> None:
        body = json.loads(msg.data)
        events[body["id"]] = (msg.subject, body["resource"]["id"], body["resource"]["cidr"])

    js = nats_client.jetstream()
    sub = await js.subscribe("scopenet.v1.evt.subnet.*", ordered_consumer=True, deliver_policy=DeliverPolicy.NEW,
                             cb=heard)  # fmt: skip
    pool = await cli.ok("alice", "subnet", "pool", "create", "--pool-prefix", f"10.{y}.0.0/20",
                        "--default-prefix-length", "28", f"hist-pool-{t}")  # fmt: skip
    nets = [(await cli.ok("alice", "network", "create", f"hist-net-{t}-{i}"))["id"] for i in range(3)]
    requests: dict[str, str] = {}  # subnet id -> request id of its create

    async def create(i: int) -> str:
        body = {"subnet": {"network_id": nets[i % 3], "ip_version": 4, "subnetpool_id": pool["id"], "name": f"h{i}"}}
        r = await http.post("/v2.0/subnets", "alice", body)
        assert r.status == 201, r.body
        requests[r.body["subnet"]["id"]] = r.headers["X-Openstack-Request-Id"]
        return str(r.body["subnet"]["id"])

    async def delete(id_: str) -> None:
        r = await http.delete(f"/v2.0/subnets/{id_}", "alice")
        assert r.status == 204, r.body

    try:
        first = await asyncio.gather(*(create(i) for i in range(n)))
        # Deletes and creates racing each other on the same pool.
        mixed = await asyncio.gather(*(delete(s) for s in first), *(create(n + i) for i in range(n)))
        second = [s for s in mixed if s is not None]
        await asyncio.gather(*(delete(s) for s in second))
        pooled = set(first + second)
        await eventually(
            lambda: sum(1 for _, sid, _ in events.values() if sid in pooled),
            passes=lambda k: k == 4 * n,
            what="the subnets' events on SCOPENET_EVENTS",
        )
    finally:
        await sub.unsubscribe()

    entries = await _all_history(http, pool["id"])
    assert [e["id"] for e in entries] == sorted({e["id"] for e in entries})  # strictly increasing, no repeats
    assert entries[0]["action"] == "prefixes_added" and entries[0]["cidr"] == f"10.{y}.0.0/20"
    subnet_entries = [e for e in entries if e["subnet_id"] is not None]
    made = [e["subnet_id"] for e in subnet_entries if e["action"] == "allocated"]
    gone = [e["subnet_id"] for e in subnet_entries if e["action"] == "released"]
    assert len(made) == len(gone) == 2 * n
    assert sorted(made) == sorted(gone) == sorted(first + second)
    # Replaying the history gives each subnet one life, never two live allocations overlapping,
    # and ends where the pool is: empty.
    live: dict[str, IPNetwork] = {}
    for e in subnet_entries:
        cidr = IPNetwork(e["cidr"])
        if e["action"] == "allocated":
            assert e["subnet_id"] not in live
            assert not (IPSet(live.values()) & IPSet([cidr])), f"{cidr} overlaps a live allocation"
            live[e["subnet_id"]] = cidr
            assert e["request_id"] == requests[e["subnet_id"]]  # the create request that took it
        else:
            assert live.pop(e["subnet_id"]) == cidr
        assert (e["caller_project_id"], e["caller_user_id"], e["project_id"]) == (
            ALICE_PROJECT,
            "user-alice",
            ALICE_PROJECT,
        )
        # The entry's twin on the event stream: same change, same subnet, same prefix.
        subject = "scopenet.v1.evt.subnet." + ("created" if e["action"] == "allocated" else "deleted")
        assert events[e["event_id"]] == (subject, e["subnet_id"], e["cidr"])
        assert e["request_id"]
    assert live == {}
    usage = (await http.get(f"/v2.0/subnetpools/{pool['id']}/usage", "alice")).body["subnetpool_usage"]
    assert usage["used_ips"] == 0

    # Newest first by default; filters by action and project; time windows.
    newest = (await http.get(f"/v2.0/subnetpools/{pool['id']}/history?limit=1", "alice")).body
    assert newest["subnetpool_history"][0]["id"] == entries[-1]["id"]
    released = await http.get(f"/v2.0/subnetpools/{pool['id']}/history?action=released&limit=1000", "alice")
    assert len(released.body["subnetpool_history"]) == 2 * n
    later = entries[len(entries) // 2]["at"]
    since = await http.get(f"/v2.0/subnetpools/{pool['id']}/history?limit=1000&since={quote(later)}", "alice")
    assert all(e["at"] >= later for e in since.body["subnetpool_history"])
    bad = await http.get(f"/v2.0/subnetpools/{pool['id']}/history?limit=0", "alice")
    assert bad.status == 400
    for query in ("since=yesterday", "marker=99999999999999999999999", "project_id=%00", "action=stolen",
                  "sort_dir=sideways", "limit=ten"):  # fmt: skip
        bad = await http.get(f"/v2.0/subnetpools/{pool['id']}/history?{query}", "alice")
        assert bad.status == 400, (query, bad.body)
    naive = await http.get(f"/v2.0/subnetpools/{pool['id']}/history?since=2020-01-01T00:00:00&limit=1", "alice")
    assert naive.status == 200 and len(naive.body["subnetpool_history"]) == 1


async def test_history_shows_others_only_what_changed(cli: Cli, http: Http) -> None:
    """On a shared pool, bob sees what alice took, not who she is or which request it was."""
    y, t = octet(), tag()
    pool = await cli.ok("admin", "subnet", "pool", "create", "--share", "--pool-prefix", f"10.{y}.0.0/24",
                        "--default-prefix-length", "28", f"hist-shared-{t}")  # fmt: skip
    alice_net = await cli.ok("alice", "network", "create", f"hs-a-{t}")
    bob_net = await cli.ok("bob", "network", "create", f"hs-b-{t}")
    a = await cli.ok("alice", "subnet", "create", "--network", alice_net["id"], "--subnet-pool", pool["id"], f"a{t}")
    b = await cli.ok("bob", "subnet", "create", "--network", bob_net["id"], "--subnet-pool", pool["id"], f"b{t}")
    await cli.ok("alice", "subnet", "delete", a["id"], fmt=False)

    seen = {(e["action"], e["cidr"]): e for e in await _all_history(http, pool["id"], "bob")}
    theirs = seen[("allocated", a["cidr"])]
    assert theirs["subnet_id"] is None and theirs["caller_user_id"] is None and theirs["request_id"] is None
    assert seen[("released", a["cidr"])]["project_id"] is None
    mine = seen[("allocated", b["cidr"])]
    assert (mine["subnet_id"], mine["caller_user_id"]) == (b["id"], "user-bob")
    # Asking for another project's entries shows nothing; the pool's owner (admin) sees everyone.
    r = await http.get(f"/v2.0/subnetpools/{pool['id']}/history?project_id={ALICE_PROJECT}", "bob")
    assert r.body["subnetpool_history"] == []
    full = {(e["action"], e["cidr"]): e for e in await _all_history(http, pool["id"], "admin")}
    released = full[("released", a["cidr"])]
    assert (released["subnet_id"], released["caller_user_id"]) == (a["id"], "user-alice")
    assert full[("prefixes_added", f"10.{y}.0.0/24")]["caller_project_id"] == ADMIN_PROJECT
