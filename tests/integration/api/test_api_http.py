"""Neutron's wire rules through HTTP: shapes, errors, list parameters, tags, If-Match, auth."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.integration.api.conftest import ALICE_PROJECT, Http


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def pool(http: Http, who: str = "admin", **body: Any) -> dict[str, Any]:
    body.setdefault("name", uniq("pool"))
    body.setdefault("prefixes", [f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.0/24"])
    r = await http.post("/v2.0/subnetpools", who, {"subnetpool": body})
    assert r.status == 201, r.body
    created: dict[str, Any] = r.body["subnetpool"]
    return created


async def test_version_document_and_extensions(http: Http) -> None:
    r = await http.get("/", None)
    assert r.status == 200 and r.body["versions"][0]["id"] == "v2.0"
    assert r.body["versions"][0]["links"][0]["href"].endswith("/v2.0/")
    r = await http.get("/v2.0/extensions")
    aliases = {e["alias"] for e in r.body["extensions"]}
    assert {"address-scope", "subnet_allocation", "subnetpool-prefix-ops", "standard-attr-tag"} <= aliases
    assert "port-hints" not in aliases and "external-gateway-multihoming" not in aliases
    assert (await http.get("/v2.0/extensions/address-scope")).body["extension"]["alias"] == "address-scope"
    missing = await http.get("/v2.0/extensions/port-hints")
    assert missing.status == 404 and "NeutronError" in missing.body
    assert (await http.get("/openapi.json", None)).body["openapi"].startswith("3.")


async def test_auth(http: Http) -> None:
    for who, headers in ((None, {}), (None, {"X-Auth-Token": "not-a-token"})):
        r = await http.get("/v2.0/subnetpools", who, headers=headers)
        assert r.status == 401 and r.error()["type"] == "HTTPUnauthorized"
    r = await http.post("/v2.0/address-scopes", "reader", {"address_scope": {"name": "x", "ip_version": 4}})
    assert r.status == 403 and r.error()["type"] == "PolicyNotAuthorized"
    assert (await http.get("/v2.0/address-scopes", "reader")).status == 200
    assert r.headers["X-Openstack-Request-Id"].startswith("req-")


async def test_subnetpool_shapes_and_prefix_length_quirk(http: Http) -> None:
    created = await pool(http, min_prefixlen="24", default_prefixlen=26)
    assert (created["min_prefixlen"], created["default_prefixlen"], created["max_prefixlen"]) == ("24", "26", "32")
    assert created["ip_version"] == 4 and created["revision_number"] == 0 and created["tenant_id"] == "0" * 32
    assert "mark_id" not in created
    r = await http.put(f"/v2.0/subnetpools/{created['id']}", "admin", {"subnetpool": {"description": "d"}})
    assert r.status == 200 and r.body["subnetpool"]["min_prefixlen"] == 24  # PUT answers ints (docs/neutron.md)
    got = (await http.get(f"/v2.0/subnetpools/{created['id']}")).body["subnetpool"]
    assert got["default_prefixlen"] == "26" and got["revision_number"] == 1 and got["description"] == "d"
    r = await http.put(f"/v2.0/subnetpools/{created['id']}/add_prefixes", "admin", {"prefixes": ["10.251.0.0/24"]})
    assert r.status == 200 and "10.251.0.0/24" in r.body["prefixes"]
    r = await http.put(f"/v2.0/subnetpools/{created['id']}/remove_prefixes", "admin", {"prefixes": ["10.251.0.0/24"]})
    assert r.status == 200 and "10.251.0.0/24" not in r.body["prefixes"]
    assert (await http.put(f"/v2.0/subnetpools/{created['id']}/add_prefixes", "admin", {"x": 1})).status == 400
    assert (await http.delete(f"/v2.0/subnetpools/{created['id']}")).status == 204
    assert (await http.get(f"/v2.0/subnetpools/{created['id']}")).error()["type"] == "SubnetPoolNotFound"


async def test_bad_input_is_400_naming_the_field(http: Http) -> None:
    cases: list[tuple[str, str, bytes | None, Any, str]] = [
        ("POST", "/v2.0/address-scopes", b"{not json", None, "Malformed"),
        ("POST", "/v2.0/address-scopes", None, [], "address_scope"),
        ("POST", "/v2.0/address-scopes", None, {"address_scope": {"ip_version": 4, "foo": 1}}, "'foo'"),
        ("POST", "/v2.0/address-scopes", None, {"address_scope": {"ip_version": 4, "description": "x"}}, "description"),
        ("POST", "/v2.0/address-scopes", None, {"address_scope": {"ip_version": 5}}, "ip_version"),
        ("POST", "/v2.0/address-scopes", None, {"address_scope": {"name": "x"}}, "Required attribute 'ip_version'"),
        ("POST", "/v2.0/address-scopes", None, {"address_scope": {"ip_version": 4, "id": str(uuid.uuid4())}}, "'id'"),
        ("POST", "/v2.0/address-scopes", None, {"address_scope": {"ip_version": 4, "shared": "maybe"}}, "shared"),
        ("POST", "/v2.0/subnetpools", None, {"subnetpool": {"name": "p", "prefixes": "10.0.0.0/8"}}, "prefixes"),
        ("POST", "/v2.0/subnetpools", None, {"subnetpool": {"name": "p", "prefixes": ["nope"]}}, "nope"),
        ("POST", "/v2.0/subnetpools", None, {"subnetpool": {"name": "p", "prefixes": ["10.0.0.0/8"],
                                                            "min_prefixlen": -1}}, "min_prefixlen"),
    ]  # fmt: skip
    for method, path, raw, body, needle in cases:
        r = await http.request(method, path, "admin", body, raw=raw)
        assert r.status == 400, (body, r.body)
        assert needle in r.error()["message"], (needle, r.body)
    p = await pool(http)
    for key, value in (("shared", True), ("ip_version", 6), ("id", str(uuid.uuid4())), ("project_id", "x")):
        r = await http.put(f"/v2.0/subnetpools/{p['id']}", "bob", {"subnetpool": {key: value}})
        assert r.status == 400 and r.error()["message"] == f"Cannot update read-only attribute {key}"
    assert (await http.get("/v2.0/subnetpools/not-a-uuid")).status == 404
    assert (await http.get(f"/v2.0/address-scopes/{uuid.uuid4()}")).error()["type"] == "AddressScopeNotFound"
    huge = b'{"address_scope": {"name": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    assert (await http.post("/v2.0/address-scopes", "admin", raw=huge)).status == 413


async def test_if_match_revision(http: Http) -> None:
    p = await pool(http)
    path = f"/v2.0/subnetpools/{p['id']}"
    r = await http.put(path, "admin", {"subnetpool": {"name": "a"}}, headers={"If-Match": "revision_number=7"})
    assert r.status == 412 and r.error()["type"] == "RevisionNumberConstraintFailed"
    r = await http.put(path, "admin", {"subnetpool": {"name": "a"}}, headers={"If-Match": "revision_number=0"})
    assert r.status == 200 and r.body["subnetpool"]["revision_number"] == 1
    assert (await http.delete(path, headers={"If-Match": "revision_number=0"})).status == 412
    assert (await http.put(path, "admin", {"subnetpool": {}}, headers={"If-Match": "revision_number=x"})).status == 400
    scope = (await http.post("/v2.0/address-scopes", "admin", {"address_scope": {"ip_version": 4}})).body
    r = await http.delete(
        f"/v2.0/address-scopes/{scope['address_scope']['id']}", headers={"If-Match": "revision_number=0"}
    )
    assert r.status == 400 and "not supported" in r.error()["message"]


async def test_list_filters_fields_sorting_pagination(http: Http) -> None:
    tag = uniq("page")
    made = [await pool(http, name=f"{tag}-{i}", min_prefixlen=20 + i) for i in range(5)]
    for p in made:
        assert (await http.put(f"/v2.0/subnetpools/{p['id']}/tags/{tag}")).status == 201
    base = f"/v2.0/subnetpools?tags={tag}"
    r = await http.get(f"{base}&sort_key=min_prefixlen&sort_dir=desc&fields=name&fields=min_prefixlen")
    assert [p["name"] for p in r.body["subnetpools"]] == [f"{tag}-{i}" for i in (4, 3, 2, 1, 0)]
    assert set(r.body["subnetpools"][0]) == {"name", "min_prefixlen"}
    assert [p["name"] for p in (await http.get(f"{base}&min_prefixlen=22")).body["subnetpools"]] == [f"{tag}-2"]
    # pagination: follow next links, then one previous link back
    seen, url = [], f"{base}&sort_key=name&sort_dir=asc&limit=2"
    while url:
        page = await http.get(url[url.index("/v2.0") :])
        seen += [p["name"] for p in page.body["subnetpools"]]
        nxt = [link["href"] for link in page.body.get("subnetpools_links", []) if link["rel"] == "next"]
        url = nxt[0] if nxt else ""
    assert seen == [f"{tag}-{i}" for i in range(5)]
    last = (await http.get(f"{base}&sort_key=name&sort_dir=asc&limit=2&marker={made[3]['id']}")).body
    assert [p["name"] for p in last["subnetpools"]] == [f"{tag}-4"]
    prev = next(link["href"] for link in last["subnetpools_links"] if link["rel"] == "previous")
    back = (await http.get(prev[prev.index("/v2.0") :])).body["subnetpools"]
    assert [p["name"] for p in back] == [f"{tag}-2", f"{tag}-3"]  # the page before name-4
    for query, needle in (
        ("foo=1", "['foo'] is invalid attribute for filtering"),
        ("prefixes=10.0.0.0/8", "invalid attribute for filtering"),
        ("sort_key=name", "sort_keys and sort_dirs"),
        ("sort_key=prefixes&sort_dir=asc", "invalid attribute for sort_keys"),
        ("sort_key=name&sort_dir=up", "sort_dirs"),
        ("limit=-1", "Limit"),
        ("ip_version=x", "ip_version"),
    ):
        r = await http.get(f"/v2.0/subnetpools?{query}")
        assert r.status == 400 and needle in r.error()["message"], (query, r.body)


async def test_tags(http: Http) -> None:
    p = await pool(http, who="alice")
    path = f"/v2.0/subnetpools/{p['id']}/tags"
    assert (await http.put(path, "alice", {"tags": ["red", "blue"]})).body == {"tags": ["red", "blue"]}
    assert (await http.put(f"{path}/green.v1", "alice")).status == 201
    assert (await http.get(f"{path}/green.v1", "alice")).status == 204
    assert (await http.get(f"{path}/black", "alice")).status == 404
    assert (await http.delete(f"{path}/red", "alice")).status == 204
    assert (await http.delete(f"{path}/red", "alice")).error()["type"] == "TagNotFound"
    assert sorted((await http.get(path, "alice")).body["tags"]) == ["blue", "green.v1"]
    assert (await http.put(f"{path}/x", "bob")).status == 404  # invisible to bob
    ids = lambda r: {i["id"] for i in r.body["subnetpools"]}  # noqa: E731
    assert p["id"] in ids(await http.get("/v2.0/subnetpools?tags-any=blue,nope", "alice"))
    assert p["id"] not in ids(await http.get("/v2.0/subnetpools?tags=blue,nope", "alice"))
    assert p["id"] in ids(await http.get("/v2.0/subnetpools?not-tags=blue,nope", "alice"))
    assert p["id"] not in ids(await http.get("/v2.0/subnetpools?not-tags-any=blue,nope", "alice"))
    assert (await http.put(path, "alice", {"tags": ["x"] * 2 + [str(i) for i in range(50)]})).status == 400
    assert (await http.delete(path, "alice")).status == 204
    assert (await http.get(path, "alice")).body == {"tags": []}


async def test_rbac_and_usage(http: Http) -> None:
    scope = (await http.post("/v2.0/address-scopes", "admin", {"address_scope": {"ip_version": 4}})).body
    sid = scope["address_scope"]["id"]
    assert (await http.get(f"/v2.0/address-scopes/{sid}", "alice")).status == 404
    r = await http.post("/v2.0/rbac-policies", "admin", {"rbac_policy": {
        "object_type": "address_scope", "object_id": sid, "action": "access_as_shared", "target_tenant": ALICE_PROJECT,
    }})  # fmt: skip
    assert r.status == 201, r.body
    assert (await http.get(f"/v2.0/address-scopes/{sid}", "alice")).body["address_scope"]["shared"] is True
    assert (await http.get(f"/v2.0/address-scopes/{sid}", "admin")).body["address_scope"]["shared"] is False
    pid = r.body["rbac_policy"]["id"]
    assert any(
        p["id"] == pid for p in (await http.get("/v2.0/rbac-policies?object_type=address_scope")).body["rbac_policies"]
    )
    bad = await http.post("/v2.0/rbac-policies", "admin", {"rbac_policy": {
        "object_type": "router", "object_id": sid, "action": "access_as_shared", "target_tenant": "*"}})  # fmt: skip
    assert bad.status == 400 and "object_type" in bad.error()["message"]
    assert (await http.delete(f"/v2.0/rbac-policies/{pid}")).status == 204
    assert (await http.get(f"/v2.0/address-scopes/{sid}", "alice")).status == 404

    p = await pool(http, prefixes=["10.252.0.0/23"])
    usage = (await http.get(f"/v2.0/subnetpool-ip-availabilities/{p['id']}")).body["subnetpool_ip_availability"]
    assert usage["total_ips"] == 512 and usage["used_ips"] == 0 and usage["free_ips"] == 512
    assert usage["subnetpool_name"] == p["name"]
    assert (await http.post("/v2.0/subnetpool-ip-availabilities", "admin", {})).status == 405


async def test_nats_down_is_a_prompt_503(tmp_path: Any) -> None:
    import aiohttp

    from scopenet.services.api.app import api_service
    from scopenet.services.api.settings import ApiSettings

    settings = ApiSettings(nats_url="nats://127.0.0.1:1", api_port=0, health_port=0, auth="noauth", request_timeout=0.2)
    async with api_service(settings, nats_url="nats://127.0.0.1:1") as api, aiohttp.ClientSession() as s:
        started = time.monotonic()
        async with s.get(api.url + "/v2.0/subnetpools") as resp:
            body = await resp.json()
        assert resp.status == 503 and body["NeutronError"]["type"] == "ServiceUnavailable"
        assert time.monotonic() - started < 1.0
        async with s.get(api.url + "/readyz") as resp:
            assert resp.status == 503
