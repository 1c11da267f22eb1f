"""Port and network lists are answered by topology's SQL (filters, tag filters, sorting, marker, limit, fields):
every answer is the one the API's in-memory rules (``scopenet.services.api.query``) give on the
whole visible collection, for each caller, and each listed item is the one ``GET`` shows."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

import pytest
from multidict import MultiDict

from scopenet.services.api import query as lq
from scopenet.services.api.spec import Resource
from scopenet.services.api.topology import resources
from tests.integration.api.conftest import BOB_PROJECT, Http


def _resource(collection: str) -> Resource:
    return next(r for r in resources(None) if r.collection == collection)  # type: ignore[arg-type]


def _expected(all_visible: list[dict[str, Any]], query: str, collection: str = "ports") -> lq.Page:
    res = _resource(collection)
    q = lq.parse(res, MultiDict(parse_qsl(query, keep_blank_values=True)))
    return lq.paginate(res, lq.order(lq.select(res, all_visible, q), q), q)


def _items(page: lq.Page, query: str) -> list[dict[str, Any]]:
    fields = [f for k, v in parse_qsl(query) if k == "fields" for f in v.split(",") if f]
    return [lq.project(p, fields) for p in page.items]


@pytest.fixture(scope="module")
async def net(http: Http) -> dict[str, Any]:
    """Alice's network: ports of hers with assorted attributes, and bob's (placed by the admin)."""
    net = (await http.post("/v2.0/networks", "alice", {"network": {"name": "paged"}})).body["network"]
    sub = {"network_id": net["id"], "ip_version": 4, "cidr": "10.77.0.0/24"}
    subnet = (await http.post("/v2.0/subnets", "alice", {"subnet": sub})).body["subnet"]
    names = ["b", "a", "B", "é", "a", "", "c", "a", "z", "b"]
    owners = ["compute:nova", "network:dhcp", "", "compute:nova"]
    for i, name in enumerate(names):
        body = {
            "network_id": net["id"],
            "name": name,
            "device_owner": owners[i % len(owners)],
            "admin_state_up": i % 3 != 0,
        }
        who = "alice"
        if i % 4 == 3:
            body["project_id"] = BOB_PROJECT
            who = "admin"
        port = (await http.post("/v2.0/ports", who, {"port": body})).body["port"]
        for tag in ("red", "blue")[: i % 3]:
            assert (await http.put(f"/v2.0/ports/{port['id']}/tags/{tag}", who)).status == 201
    return {**net, "subnet_id": subnet["id"]}


QUERIES = [
    "",
    "limit=3",
    "sort_key=name&sort_dir=asc",
    "sort_key=name&sort_dir=desc&sort_key=device_owner&sort_dir=asc&limit=4",
    "sort_key=admin_state_up&sort_dir=desc&sort_key=name&sort_dir=asc&limit=3",
    "sort_key=tenant_id&sort_dir=asc&sort_key=id&sort_dir=desc&limit=2",
    "sort_key=mac_address&sort_dir=desc",
    "device_owner=compute:nova",
    "device_owner=compute:nova&device_owner=network:dhcp&limit=2",
    "admin_state_up=false",
    "name=a&sort_key=id&sort_dir=asc",
    "name=",
    f"tenant_id={BOB_PROJECT}",
    "tags=red",
    "tags=red,blue",
    "tags-any=red,blue&limit=2",
    "not-tags=red,blue",
    "not-tags-any=blue",
    "fixed_ips=ip_address_substr=10.77&limit=4",
    "fields=id&fields=name&sort_key=name&sort_dir=asc",
    "fields=name,fixed_ips&limit=3",
    "limit=4&page_reverse=True",
]


@pytest.mark.parametrize("who", ["alice", "bob", "admin"])
async def test_every_page_is_the_in_memory_answer(http: Http, net: dict[str, Any], who: str) -> None:
    scope = f"/v2.0/ports?network_id={net['id']}"
    visible = (await http.get(scope, who)).body["ports"]
    assert visible, who
    for port in visible:  # the SQL-built JSON is the JSON of a port shown alone
        assert port == (await http.get(f"/v2.0/ports/{port['id']}", who)).body["port"]
    ip = visible[0]["fixed_ips"][0]["ip_address"]
    queries = [*QUERIES, f"fixed_ips=ip_address={ip}", f"fixed_ips=subnet_id={net['subnet_id']}&limit=2"]
    for query in queries:
        expected = _expected(visible, query)
        got = (await http.get(f"{scope}&{query}", who)).body
        assert got["ports"] == _items(expected, query), (who, query)
        # follow the next links to the end: every visible match exactly once, in order
        if "limit=" in query and "page_reverse" not in query:
            seen = list(got["ports"])
            links = got.get("ports_links", [])
            while nxt := [x["href"] for x in links if x["rel"] == "next"]:
                page = (await http.get(nxt[0][nxt[0].index("/v2.0") :], who)).body
                assert page["ports"], (who, query)
                seen += page["ports"]
                links = page.get("ports_links", [])
            whole = re.sub(r"limit=[0-9]+", "limit=100000", query)
            assert seen == _items(_expected(visible, whole), query), (who, query)
            marker = seen[len(seen) // 2]["id"] if "fields" not in query else None
            if marker:  # a page backwards from the middle
                back = f"{query}&marker={marker}&page_reverse=True"
                got = (await http.get(f"{scope}&{back}", who)).body
                assert got["ports"] == _items(_expected(visible, back), back), (who, back)


async def test_markers_and_bad_filters(http: Http, net: dict[str, Any]) -> None:
    scope = f"/v2.0/ports?network_id={net['id']}"
    alices = [p for p in (await http.get(scope, "alice")).body["ports"] if p["tenant_id"] != BOB_PROJECT]
    for marker in (alices[0]["id"], str(uuid.uuid4()), "not-a-uuid"):  # bob cannot see alice's port
        r = await http.get(f"{scope}&limit=2&marker={marker}", "bob")
        assert r.status == 404 and r.error()["type"] == "PortNotFound", r.body
    r = await http.get(f"{scope}&limit=2&marker={alices[0]['id']}&device_owner=nothing-like-it", "alice")
    assert r.status == 404  # the marker must match the filters too, as the in-memory rules say
    for query, needle in (
        ("fixed_ips=mac=1", "fixed_ips"),
        ("foo=1", "invalid attribute for filtering"),
        ("sort_key=fixed_ips&sort_dir=asc", "invalid attribute for sort_keys"),
    ):
        r = await http.get(f"{scope}&{query}", "alice")
        assert r.status == 400 and needle in r.error()["message"], (query, r.body)


NETWORK_QUERIES = [
    "limit=2",
    "shared=true",
    "shared=false&sort_key=name&sort_dir=desc",
    "router:external=false&limit=3&sort_key=mtu&sort_dir=asc",
    "sort_key=shared&sort_dir=asc&sort_key=name&sort_dir=asc&limit=2",
    "provider:physical_network=None",
    "tags-any=green&fields=name&fields=subnets",
]


@pytest.mark.parametrize("who", ["alice", "bob", "admin"])
async def test_network_pages(http: Http, net: dict[str, Any], who: str) -> None:
    tag = f"nets-{uuid.uuid4().hex[:8]}"
    made = [("admin", {"name": "n-shared", "shared": True}, [tag])]
    made += [
        (owner, {"name": f"n-{owner}-{i}"}, [tag, "green"] if i else [tag])
        for i, owner in enumerate(["alice", "bob", "alice"])
    ]
    for owner, body, tags in made:
        network = (await http.post("/v2.0/networks", owner, {"network": body})).body["network"]
        for t in tags:
            assert (await http.put(f"/v2.0/networks/{network['id']}/tags/{t}", owner)).status == 201
    scope = f"/v2.0/networks?tags={tag}"
    visible = (await http.get(scope, who)).body["networks"]
    assert len(visible) == (4 if who == "admin" else 3 if who == "alice" else 2)
    for network in visible:
        assert network == (await http.get(f"/v2.0/networks/{network['id']}", who)).body["network"]
    for query in [*NETWORK_QUERIES, f"subnets={net['subnet_id']}"]:
        got = (await http.get(f"{scope}&{query}", who)).body
        assert got["networks"] == _items(_expected(visible, query, "networks"), query), (who, query)


@pytest.mark.parametrize("who", ["alice", "bob", "admin"])
async def test_router_and_floating_ip_pages(http: Http, who: str) -> None:
    tag = f"l3-{uuid.uuid4().hex[:8]}"
    ext = (await http.post("/v2.0/networks", "admin", {"network": {"name": tag, "router:external": True}})).body
    ext_id = ext["network"]["id"]
    octet = uuid.UUID(ext_id).int % 200 + 20
    sub = {"network_id": ext_id, "ip_version": 4, "cidr": f"172.{octet}.0.0/24"}
    assert (await http.post("/v2.0/subnets", "admin", {"subnet": sub})).status == 201
    for owner, name in (("alice", "r-b"), ("bob", "r-a"), ("alice", "r-a")):
        body: dict[str, Any] = {"name": name}
        if owner == "alice":
            body["external_gateway_info"] = {"network_id": ext_id}
        router = (await http.post("/v2.0/routers", owner, {"router": body})).body["router"]
        assert (await http.put(f"/v2.0/routers/{router['id']}/tags/{tag}", owner)).status == 201
        fip = {"floatingip": {"floating_network_id": ext_id}}
        assert (await http.post("/v2.0/floatingips", owner, fip)).status == 201
    for collection, scope, queries in (
        ("routers", f"/v2.0/routers?tags={tag}", ["sort_key=name&sort_dir=asc&limit=1", "name=r-a", "status=ACTIVE"]),
        (
            "floatingips",
            f"/v2.0/floatingips?floating_network_id={ext_id}",
            [
                "sort_key=floating_ip_address&sort_dir=desc&limit=2",
                "status=DOWN",
                "router_id=null",
                "sort_key=router_id&sort_dir=desc&limit=2",
            ],
        ),
    ):
        visible = (await http.get(scope, who)).body[collection]
        assert len(visible) == {"alice": 2, "bob": 1, "admin": 3}[who], (collection, who)
        for item in visible:
            assert item == (await http.get(f"/v2.0/{collection}/{item['id']}", who)).body[collection[:-1]]
        for query in queries:
            got = (await http.get(f"{scope}&{query}", who)).body
            assert collection in got, (query, got)
            assert got[collection] == _items(_expected(visible, query, collection), query), (who, query)


@pytest.mark.parametrize("who", ["alice", "bob", "admin"])
async def test_subnet_pages(http: Http, who: str) -> None:
    net = (await http.post("/v2.0/networks", "alice", {"network": {"name": "subnets"}})).body["network"]
    for body in (
        {"ip_version": 4, "cidr": "10.78.1.0/24", "name": "s-b", "dns_nameservers": ["10.0.0.53"]},
        {"ip_version": 4, "cidr": "10.78.0.0/24", "name": "s-a", "gateway_ip": None},
        {
            "ip_version": 6,
            "cidr": "fd00:78::/64",
            "name": "s-a",
            "host_routes": [{"destination": "fd00:1::/64", "nexthop": "fd00:78::9"}],
        },
    ):
        assert (await http.post("/v2.0/subnets", "alice", {"subnet": {"network_id": net["id"], **body}})).status == 201
    scope = f"/v2.0/subnets?network_id={net['id']}"
    visible = (await http.get(scope, who)).body["subnets"]
    assert len(visible) == (0 if who == "bob" else 3)
    for item in visible:
        assert item == (await http.get(f"/v2.0/subnets/{item['id']}", who)).body["subnet"]
    for query in (
        "sort_key=cidr&sort_dir=asc",
        "sort_key=name&sort_dir=asc&sort_key=gateway_ip&sort_dir=desc&limit=2",
        "ip_version=6",
        "gateway_ip=None",
        "cidr=10.78.0.0/24",
        "ipv6_ra_mode=None&fields=cidr",
    ):
        got = (await http.get(f"{scope}&{query}", who)).body
        assert "subnets" in got, (query, got)
        assert got["subnets"] == _items(_expected(visible, query, "subnets"), query), (who, query)
