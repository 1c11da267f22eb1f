"""What the isolation fuzz (test_api_isolation_fuzz.py) found, one rule at a time (Neutron 29's
default policy): who may change another project's port, which attributes are admin-only, and
that a refused write on something the caller cannot see is 404, not 403 (rule 6)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.api.conftest import ALICE_PROJECT, BOB_PROJECT, Http


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cidr() -> str:
    n = uuid.uuid4().int
    return f"10.{200 + n % 50}.{(n >> 8) % 256}.0/24"


async def made(http: Http, who: str, collection: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await http.post(f"/v2.0/{collection}", who, {key: body})
    assert r.status == 201, r.body
    item: dict[str, Any] = r.body[key]
    return item


async def network_with_subnet(http: Http, who: str, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    net = await made(http, who, "networks", "network", {"name": uniq("net"), **extra})
    sub = await made(http, who, "subnets", "subnet", {"network_id": net["id"], "ip_version": 4, "cidr": cidr()})
    return net, sub


def refused(r: Any, status: int) -> None:
    assert r.status == status, (r.status, r.body)
    assert r.error()["type"] == ("PolicyNotAuthorized" if status == 403 else r.error()["type"])


async def test_network_owner_sees_but_does_not_change_another_projects_ports(http: Http) -> None:
    net, sub = await network_with_subnet(http, "alice")
    share = {"object_type": "network", "object_id": net["id"], "action": "access_as_shared"}
    await made(http, "alice", "rbac-policies", "rbac_policy", {**share, "target_tenant": BOB_PROJECT})
    instance = await made(http, "bob", "ports", "port", {"network_id": net["id"], "device_owner": "compute:nova"})
    plain = await made(http, "bob", "ports", "port", {"network_id": net["id"]})
    url = f"/v2.0/ports/{instance['id']}"

    assert (await http.get(url, "alice")).status == 200  # get_port: the network's owner reads it
    # update_port is the port's project's: the network's owner is refused (it was allowed)
    refused(await http.put(url, "alice", {"port": {"name": "mine-now"}}), 403)
    refused(await http.put(url, "alice", {"port": {"device_id": "vm-x"}}), 403)
    refused(await http.put(f"{url}/tags", "alice", {"tags": ["x"]}), 403)
    # delete_port: the network's owner may, except an instance's port
    refused(await http.delete(url, "alice"), 403)
    assert (await http.delete(f"/v2.0/ports/{plain['id']}", "alice")).status == 204
    # update_port:fixed_ips is the network owner's: the port's project cannot re-address it
    r = await http.put(url, "bob", {"port": {"fixed_ips": [{"subnet_id": sub["id"]}]}})
    refused(r, 403)
    assert (await http.get(url, "admin")).body["port"]["fixed_ips"] == instance["fixed_ips"]
    r = await http.put(url, "bob", {"port": {"name": "vm-1-eth0", "device_id": "vm-1"}})
    assert r.status == 200 and r.body["port"]["name"] == "vm-1-eth0"
    assert (await http.put(url, "admin", {"port": {"fixed_ips": [{"subnet_id": sub["id"]}]}})).status == 200
    assert (await http.delete(url, "bob")).status == 204


async def test_subnet_service_types_are_admin_only(http: Http) -> None:
    net = await made(http, "alice", "networks", "network", {"name": uniq("net")})
    body = {"network_id": net["id"], "ip_version": 4, "cidr": cidr()}
    for types in ([], ["compute:nova"]):
        refused(await http.post("/v2.0/subnets", "alice", {"subnet": {**body, "service_types": types}}), 403)
    sub = await made(
        http, "admin", "subnets", "subnet", {**body, "service_types": ["compute:nova"], "project_id": ALICE_PROJECT}
    )
    url = f"/v2.0/subnets/{sub['id']}"
    refused(await http.put(url, "alice", {"subnet": {"service_types": []}}), 403)
    assert (await http.get(url, "admin")).body["subnet"]["service_types"] == ["compute:nova"]
    assert (await http.put(url, "admin", {"subnet": {"service_types": []}})).status == 200


async def test_a_refused_write_is_404_on_what_the_caller_cannot_see(http: Http) -> None:
    """Neutron fetches the object before checking policy: 403 only for what the caller can read."""
    bobs, _ = await network_with_subnet(http, "bob")
    alices = await made(http, "alice", "networks", "network", {"name": uniq("net")})
    shared = await made(http, "admin", "networks", "network", {"name": uniq("net"), "shared": True})
    # admin-only attributes in a PUT
    refused(await http.put(f"/v2.0/networks/{bobs['id']}", "alice", {"network": {"shared": True}}), 404)
    refused(await http.put(f"/v2.0/networks/{shared['id']}", "alice", {"network": {"shared": False}}), 403)
    refused(await http.put(f"/v2.0/networks/{alices['id']}", "alice", {"network": {"router:external": True}}), 403)
    # tags of a network alice can see and not change: refused even when nothing would change
    refused(await http.delete(f"/v2.0/networks/{shared['id']}/tags", "alice"), 403)
    refused(await http.put(f"/v2.0/networks/{shared['id']}/tags", "alice", {"tags": []}), 403)
    scope = await made(http, "bob", "address-scopes", "address_scope", {"name": uniq("s"), "ip_version": 4})
    refused(await http.put(f"/v2.0/address-scopes/{scope['id']}", "alice", {"address_scope": {"shared": True}}), 404)
    refused(await http.put(f"/v2.0/address-scopes/{scope['id']}", "bob", {"address_scope": {"shared": True}}), 403)
    pool = await made(http, "bob", "subnetpools", "subnetpool", {"name": uniq("p"), "prefixes": [cidr()]})
    refused(await http.put(f"/v2.0/subnetpools/{pool['id']}", "alice", {"subnetpool": {"is_default": False}}), 404)
    refused(await http.put(f"/v2.0/subnetpools/{pool['id']}", "bob", {"subnetpool": {"is_default": False}}), 403)
    router = await made(http, "bob", "routers", "router", {"name": uniq("r")})
    snat = {"router": {"external_gateway_info": {"network_id": shared["id"], "enable_snat": False}}}
    refused(await http.put(f"/v2.0/routers/{router['id']}", "alice", snat), 404)
    refused(await http.put(f"/v2.0/routers/{router['id']}", "bob", snat), 403)
    entry = await made(
        http,
        "bob",
        "rbac-policies",
        "rbac_policy",
        {"object_type": "network", "object_id": bobs["id"], "action": "access_as_shared", "target_tenant": "0" * 32},
    )
    wildcard = {"rbac_policy": {"target_tenant": "*"}}
    refused(await http.put(f"/v2.0/rbac-policies/{entry['id']}", "alice", wildcard), 404)
    refused(await http.put(f"/v2.0/rbac-policies/{entry['id']}", "bob", wildcard), 403)
    # a reader writes nothing: 404 on another project's network, 403 on its own project's
    for method, tail, body in (
        ("PUT", "", {"network": {"name": "x"}}),
        ("DELETE", "", None),
        ("PUT", "/tags", {"tags": ["x"]}),
        ("PUT", "/tags/x", None),
        ("DELETE", "/tags", None),
    ):
        r = await http.request(method, f"/v2.0/networks/{bobs['id']}{tail}", "reader", body)
        refused(r, 404)
        r = await http.request(method, f"/v2.0/networks/{alices['id']}{tail}", "reader", body)
        refused(r, 403)
    r = await http.put(f"/v2.0/routers/{router['id']}/add_router_interface", "reader", {"subnet_id": str(uuid.uuid4())})
    refused(r, 404)
    after = (await http.get(f"/v2.0/networks/{bobs['id']}", "bob")).body["network"]
    assert (after["name"], after["shared"], after["router:external"]) == (bobs["name"], False, False)
    kept = (await http.get(f"/v2.0/rbac-policies/{entry['id']}", "bob")).body["rbac_policy"]
    assert kept["target_tenant"] == "0" * 32
