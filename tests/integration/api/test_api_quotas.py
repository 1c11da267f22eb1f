"""Per-project quotas (docs/neutron.md#quotas) over HTTP and with the real ``openstack quota`` commands.

The session's services default to unlimited (the root conftest), so each test gives a fresh project
the limits it checks. The admin creates in that project (``project_id`` in the body), which needs no
token of its own; the race tests fire 64 creates at once at a limit of 10 and count the winners.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.integration.api.conftest import ALICE_PROJECT, BOB_PROJECT, OPENSTACK, TOKENS, Cli, CliResult, Http

NEUTRON_KEYS = {"network", "subnet", "port", "router", "floatingip", "rbac_policy", "subnetpool", "address_scope"}


def fresh() -> str:
    return uuid.uuid4().hex


async def set_quota(http: Http, project: str, **limits: Any) -> dict[str, Any]:
    reply = await http.put(f"/v2.0/quotas/{project}", "admin", {"quota": limits})
    assert reply.status == 200, reply.body
    quota: dict[str, Any] = reply.body["quota"]
    return quota


async def details(http: Http, project: str, who: str = "admin") -> dict[str, Any]:
    reply = await http.get(f"/v2.0/quotas/{project}/details", who)
    assert reply.status == 200, reply.body
    got: dict[str, Any] = reply.body["quota"]
    return got


# ---------------------------------------------------------------- the API


async def test_extensions_are_announced(http: Http) -> None:
    aliases = {e["alias"] for e in (await http.get("/v2.0/extensions", "alice")).body["extensions"]}
    assert {"quotas", "quota_details"} <= aliases


async def test_show_set_details_delete(http: Http) -> None:
    project = fresh()
    shown = (await http.get(f"/v2.0/quotas/{project}")).body["quota"]
    assert set(shown) == NEUTRON_KEYS | {"project_id"}
    assert shown["project_id"] == project
    default = (await http.get(f"/v2.0/quotas/{project}/default")).body["quota"]
    assert set(default) == NEUTRON_KEYS and {shown[k] for k in NEUTRON_KEYS} == set(default.values())

    # Strings convert, as neutron-lib's convert_to_int does; -1 is unlimited.
    quota = await set_quota(http, project, network="3", port=-1, subnetpool=2, rbac_policy=4)
    assert (quota["network"], quota["port"], quota["subnetpool"], quota["rbac_policy"]) == (3, -1, 2, 4)
    assert (await http.get(f"/v2.0/quotas/{project}")).body["quota"]["network"] == 3
    listed = {q["project_id"]: q for q in (await http.get("/v2.0/quotas")).body["quotas"]}
    assert listed[project]["network"] == 3 and listed[project]["tenant_id"] == project

    net = await http.post("/v2.0/networks", "admin", {"network": {"name": "q", "project_id": project}})
    assert net.status == 201
    got = await details(http, project)
    assert got["network"] == {"limit": 3, "used": 1, "reserved": 0}
    assert got["port"] == {"limit": -1, "used": 0, "reserved": 0}
    assert set(got) == NEUTRON_KEYS

    # A limit below what the project uses is refused, and changes nothing anywhere.
    low = await http.put(f"/v2.0/quotas/{project}", "admin", {"quota": {"network": 0, "subnetpool": 5}})
    assert low.status == 400
    assert low.error()["message"] == "Quota limit 0 for network must be greater than or equal to already used 1"
    assert (await http.get(f"/v2.0/quotas/{project}")).body["quota"]["subnetpool"] == 2
    # ... unless forced.
    assert (await set_quota(http, project, network=0, force=True))["network"] == 0
    over = await http.post("/v2.0/networks", "admin", {"network": {"name": "q2", "project_id": project}})
    assert over.status == 409
    assert over.error() == {"type": "OverQuota", "message": "Quota exceeded for resources: ['network'].", "detail": ""}

    assert (await http.delete(f"/v2.0/quotas/{project}")).status == 204
    assert (await http.get(f"/v2.0/quotas/{project}")).body["quota"] == {**default, "project_id": project}
    assert project not in {q["project_id"] for q in (await http.get("/v2.0/quotas")).body["quotas"]}
    again = await http.delete(f"/v2.0/quotas/{project}")
    assert again.status == 404
    assert again.error()["type"] == "TenantQuotaNotFound"
    assert again.error()["message"] == f"Quota for project {project} could not be found."
    await http.delete(f"/v2.0/networks/{net.body['network']['id']}")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"quota": {"network": "ten"}}, 400, "Invalid input for operation: 'ten' is not an integer."),
        (
            {"quota": {"network": -2}},
            400,
            "Invalid input for network. Reason: '-2' is too small - must be at least '-1'.",
        ),
        (
            {"quota": {"port": 2**31}},
            400,
            "Invalid input for port. Reason: '2147483648' is too large - must be no larger than '2147483647'.",
        ),
        ({"quota": {"network": True}}, 400, "Invalid input for operation: 'True' is not an integer."),
        ({"quota": {"security_group": 3}}, 400, "Unrecognized attribute(s) 'security_group'"),
        ({"quota": {"network": 1}, "extra": 1}, 400, "Unrecognized attribute(s) 'extra'"),
        ({"quotas": {"network": 1}}, 400, "Unable to find 'quota' in request body"),
        ({"quota": [1]}, 400, "Invalid data for quota: expected an object"),
    ],
)
async def test_bad_limits_are_neutrons_400(http: Http, body: Any, status: int, message: str) -> None:
    project = fresh()
    reply = await http.put(f"/v2.0/quotas/{project}", "admin", body)
    assert (reply.status, reply.error()["message"]) == (status, message)
    assert project not in {q["project_id"] for q in (await http.get("/v2.0/quotas")).body["quotas"]}


async def test_a_project_reads_only_its_own_quotas(http: Http) -> None:
    for path in ("", "/default", "/details"):
        assert (await http.get(f"/v2.0/quotas/{ALICE_PROJECT}{path}", "alice")).status == 200
        assert (await http.get(f"/v2.0/quotas/{ALICE_PROJECT}{path}", "reader")).status == 200
        other = await http.get(f"/v2.0/quotas/{BOB_PROJECT}{path}", "alice")
        assert other.status == 403 and other.error()["type"] == "AdminRequired", other.body
    assert (await http.get("/v2.0/quotas", "alice")).status == 403
    assert (await http.put(f"/v2.0/quotas/{ALICE_PROJECT}", "alice", {"quota": {"network": 1000}})).status == 403
    assert (await http.put(f"/v2.0/quotas/{ALICE_PROJECT}", "alice", {"nonsense": 1})).status == 403  # policy first
    assert (await http.delete(f"/v2.0/quotas/{ALICE_PROJECT}", "alice")).status == 403
    assert (await http.get("/v2.0/quotas/project", "alice")).body == {"project": {"project_id": ALICE_PROJECT}}


async def test_usage_counts_only_the_projects_own(http: Http) -> None:
    """Bob's network shared with the project, and the project's RBAC entries on both services."""
    project = fresh()
    mine = await http.post("/v2.0/networks", "admin", {"network": {"name": "u", "project_id": project}})
    theirs = await http.post("/v2.0/networks", "bob", {"network": {"name": "u", "shared": False}})
    net, other = mine.body["network"]["id"], theirs.body["network"]["id"]
    shared_with = {"object_type": "network", "object_id": other, "action": "access_as_shared"}
    await http.post("/v2.0/rbac-policies", "bob", {"rbac_policy": {**shared_with, "target_tenant": project}})
    scope = await http.post("/v2.0/address-scopes", "admin", {"address_scope": {
        "name": "u", "ip_version": 4, "project_id": project}})  # fmt: skip
    for object_type, object_id in (("network", net), ("address_scope", scope.body["address_scope"]["id"])):
        entry = await http.post("/v2.0/rbac-policies", "admin", {"rbac_policy": {
            "object_type": object_type, "object_id": object_id, "action": "access_as_shared",
            "target_tenant": BOB_PROJECT}})  # fmt: skip
        assert entry.status == 201, entry.body
    port = await http.post("/v2.0/ports", "admin", {"port": {"network_id": other, "project_id": project}})
    assert port.status == 201, port.body
    got = await details(http, project)
    used = {k: v["used"] for k, v in got.items()}
    assert used == {**dict.fromkeys(NEUTRON_KEYS, 0), "network": 1, "address_scope": 1, "rbac_policy": 2, "port": 1}


# ---------------------------------------------------------------- races: 64 creates against a limit of 10


async def race(http: Http, path: str, bodies: list[dict[str, Any]]) -> Counter[tuple[int, str]]:
    replies = await asyncio.gather(*(http.post(path, "admin", b) for b in bodies))
    return Counter((r.status, r.body["NeutronError"]["type"] if r.status >= 400 else "") for r in replies)


async def test_64_network_creates_against_10_grant_10(http: Http) -> None:
    project = fresh()
    await set_quota(http, project, network=10)
    got = await race(http, "/v2.0/networks", [{"network": {"name": f"r{i}", "project_id": project}} for i in range(64)])
    assert got == {(201, ""): 10, (409, "OverQuota"): 54}
    assert (await details(http, project))["network"] == {"limit": 10, "used": 10, "reserved": 0}


async def test_64_port_creates_against_10_grant_10(http: Http) -> None:
    """Ports are group-committed: the batches of one project admit what fits, in order."""
    project = fresh()
    net = await http.post("/v2.0/networks", "admin", {"network": {"name": "p", "project_id": project}})
    net_id = net.body["network"]["id"]
    sub = await http.post("/v2.0/subnets", "admin", {"subnet": {
        "network_id": net_id, "ip_version": 4, "cidr": "10.250.0.0/24", "project_id": project}})  # fmt: skip
    assert sub.status == 201, sub.body
    await set_quota(http, project, port=10)
    got = await race(http, "/v2.0/ports", [{"port": {"network_id": net_id, "project_id": project}}] * 64)
    assert got == {(201, ""): 10, (409, "OverQuota"): 54}
    assert (await details(http, project))["port"] == {"limit": 10, "used": 10, "reserved": 0}
    listed = (await http.get(f"/v2.0/ports?network_id={net_id}")).body["ports"]
    assert len(listed) == 10


async def test_64_subnet_pool_creates_against_10_grant_10(http: Http) -> None:
    project = fresh()
    await set_quota(http, project, subnetpool=10)
    bodies = [
        {"subnetpool": {"name": f"r{i}", "prefixes": [f"10.{200 + i // 32}.{i % 32 * 8}.0/21"], "project_id": project}}
        for i in range(64)
    ]
    got = await race(http, "/v2.0/subnetpools", bodies)
    assert got == {(201, ""): 10, (409, "OverQuota"): 54}
    assert (await details(http, project))["subnetpool"] == {"limit": 10, "used": 10, "reserved": 0}


async def test_each_resource_stops_at_its_limit(http: Http) -> None:
    """Subnets, routers, floating IPs, address scopes and RBAC entries, one over the limit each."""
    project = fresh()
    await set_quota(http, project, subnet=1, router=1, floatingip=1, address_scope=1, rbac_policy=1)
    ext = await http.post("/v2.0/networks", "admin", {"network": {"name": "qext", "router:external": True}})
    ext_id = ext.body["network"]["id"]
    assert (await http.post("/v2.0/subnets", "admin", {"subnet": {
        "network_id": ext_id, "ip_version": 4, "cidr": "100.127.250.0/24"}})).status == 201  # fmt: skip
    net = await http.post("/v2.0/networks", "admin", {"network": {"name": "q", "project_id": project}})
    net_id = net.body["network"]["id"]

    async def twice(path: str, body: dict[str, Any], second: dict[str, Any] | None = None) -> None:
        first = await http.post(path, "admin", body)
        assert first.status == 201, first.body
        over = await http.post(path, "admin", second or body)
        assert over.status == 409 and over.error()["type"] == "OverQuota", over.body

    key = {"project_id": project}
    await twice("/v2.0/subnets", {"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "10.251.0.0/24", **key}},
                {"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "10.251.1.0/24", **key}})  # fmt: skip
    await twice("/v2.0/routers", {"router": {"name": "q", **key}})
    await twice("/v2.0/floatingips", {"floatingip": {"floating_network_id": ext_id, **key}})
    await twice("/v2.0/address-scopes", {"address_scope": {"name": "q", "ip_version": 4, **key}})
    entry = {"object_type": "network", "object_id": net_id, "action": "access_as_shared"}
    await twice("/v2.0/rbac-policies", {"rbac_policy": {**entry, "target_tenant": ALICE_PROJECT}},
                {"rbac_policy": {**entry, "target_tenant": BOB_PROJECT}})  # fmt: skip
    got = await details(http, project)
    for name in ("subnet", "router", "floatingip", "address_scope", "rbac_policy"):
        assert got[name]["used"] == 1, (name, got[name])


# ---------------------------------------------------------------- the real CLI


@pytest.fixture(scope="module")
async def identity() -> AsyncIterator[str]:
    """Keystone's two calls ``openstack quota`` makes to resolve a project (scopenet has no identity
    service; its tokens name projects by id): version discovery and ``/v3/projects[/<id>]``."""
    projects: dict[str, str] = {}

    async def handle(request: web.Request) -> web.Response:
        base = f"{request.url.origin()}/v3/"
        version = {"id": "v3.14", "status": "stable", "links": [{"rel": "self", "href": base}]}
        path = request.path.rstrip("/")
        if path in ("", "/v3"):
            return web.json_response({"version": version})
        if path == "/v3/projects":
            return web.json_response({"projects": [{"id": p, "name": p, "domain_id": "default"} for p in projects]})
        if path.startswith("/v3/projects/"):
            pid = path.rsplit("/", 1)[1]
            projects[pid] = pid
            return web.json_response({"project": {"id": pid, "name": pid, "domain_id": "default", "enabled": True}})
        return web.json_response({"error": {"code": 404, "title": "Not Found", "message": "nothing"}}, status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def run(cli: Cli, identity: str, *args: str, fmt: bool = True) -> CliResult:
    """``openstack`` as the admin, as ``Cli`` runs it, with keystone at ``identity`` (openstacksdk
    reads ``OS_IDENTITY_ENDPOINT_OVERRIDE``; the rest goes to the API's endpoint)."""
    argv = [OPENSTACK, "--os-auth-type", "admin_token", "--os-token", TOKENS["admin"][0]]
    argv += ["--os-endpoint", cli.endpoint, *args] + (["-f", "json"] if fmt else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_IDENTITY_ENDPOINT_OVERRIDE"] = identity
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = out.decode()
    return CliResult(proc.returncode or 0, json.loads(text) if fmt and text.strip() else text, err.decode())


async def openstack(cli: Cli, identity: str, *args: str, fmt: bool = True) -> Any:
    res = await run(cli, identity, *args, fmt=fmt)
    assert res.code == 0, f"openstack {' '.join(args)} failed: {res.err}"
    return res.out


def rows(out: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["Resource"]: r for r in out}


async def test_openstack_quota_set_show_usage_delete(cli: Cli, http: Http, identity: str) -> None:
    project = fresh()
    net = await http.post("/v2.0/networks", "admin", {"network": {"name": "c", "project_id": project}})
    await openstack(
        cli, identity, "quota", "set", "--networks", "7", "--subnets", "9", "--ports", "20", "--routers", "2",
        "--floating-ips", "5", "--rbac-policies", "4", "--subnetpools", "3", project, fmt=False,
    )  # fmt: skip
    shown = rows(await openstack(cli, identity, "quota", "show", "--network", project))
    limits = {k: shown[k]["Limit"] for k in ("networks", "subnets", "ports", "routers", "floating_ips")}
    assert limits == {"networks": 7, "subnets": 9, "ports": 20, "routers": 2, "floating_ips": 5}
    assert (shown["rbac_policies"]["Limit"], shown["subnet_pools"]["Limit"]) == (4, 3)
    assert shown["address_scope"]["Limit"] == -1  # scopenet's own, shown under its API name

    usage = rows(await openstack(cli, identity, "quota", "show", "--network", "--usage", project))
    assert usage["networks"] == {"Resource": "networks", "Limit": 7, "In Use": 1, "Reserved": 0}
    assert usage["ports"]["In Use"] == 0 and usage["subnet_pools"]["Limit"] == 3

    listed = await openstack(cli, identity, "quota", "list", "--network")
    assert any(r["Project ID"] == project and r["Networks"] == 7 for r in listed), listed

    # Below usage: refused with Neutron's 400, as ``quota set`` without --force checks.
    bad = await run(cli, identity, "quota", "set", "--networks", "0", project, fmt=False)
    assert bad.code == 1 and "must be greater than or equal to already used 1" in bad.err, bad.err
    await openstack(cli, identity, "quota", "set", "--networks", "0", "--force", project, fmt=False)
    assert (await http.get(f"/v2.0/quotas/{project}")).body["quota"]["network"] == 0

    # Each ``openstack`` run costs seconds here: the rest is read over HTTP.
    await openstack(cli, identity, "quota", "delete", "--network", project, fmt=False)
    default = (await http.get(f"/v2.0/quotas/{project}/default")).body["quota"]
    assert (await http.get(f"/v2.0/quotas/{project}")).body["quota"] == {**default, "project_id": project}
    await http.delete(f"/v2.0/networks/{net.body['network']['id']}")
