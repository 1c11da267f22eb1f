"""The real resource table served over HTTP, with an in-memory stand-in for NATS.

Pins what a Neutron client sees before any service is asked: attribute rules for every attribute
of every resource (unknown, read-only on POST and PUT, required, values that do not convert: a 400
naming the attribute, and nothing sent), admin-only attributes (403 for a member, and 404 rather
than 403 on an object the member cannot see), the owner rule, the wire shape of replies (subnet
pool prefix lengths, hidden and admin-only keys, Neutron's timestamps), the command the API sends,
and service errors passed through with their Neutron type.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from scopenet.bus.errors import reply_for
from scopenet.contracts.errors import Conflict, DomainError, NotFound, TransientError
from scopenet.services.api.app import build_app, build_resources
from scopenet.services.api.attrs import MISSING, Attr, schema_of
from scopenet.services.api.auth import Authenticator
from scopenet.services.api.gateway import Gateway
from scopenet.services.api.spec import Resource

MEMBER = {"X-Project-Id": "p1", "X-Roles": "member"}
READER = {"X-Project-Id": "p1", "X-Roles": "reader"}
ADMIN = {"X-Project-Id": "p1", "X-Roles": "admin"}

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]


def _echo(subject: str, body: dict[str, Any]) -> dict[str, Any]:
    """Answer like a service that accepts everything: ``{<resource>: {"id": ..., **what was sent}}``."""
    resource = subject.split(".")[3]
    given = body.get(resource)
    sent: dict[str, Any] = given if isinstance(given, dict) else {}
    return {resource: {"id": str(uuid.uuid4()), "project_id": body["context"]["project_id"], **sent}}


@dataclass
class FakeNats:
    """What ``Gateway`` needs of a NATS connection; errors travel as the services encode them."""

    answer: Answer = _echo
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    is_connected: bool = True

    async def request(
        self, subject: str, payload: bytes, timeout: float | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        body = json.loads(payload)
        self.sent.append((subject, body))
        try:
            return SimpleNamespace(data=orjson.dumps(self.answer(subject, body)), headers={})
        except (DomainError, TransientError) as exc:
            data, headers = reply_for(exc)
            return SimpleNamespace(data=data, headers=headers)

    async def drain(self) -> None:
        pass


@dataclass
class Api:
    client: TestClient[Any, Any]
    bus: FakeNats


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[Api]:
    gw = Gateway(timeout=1.0)
    bus = FakeNats()
    gw.nc = bus  # type: ignore[assignment]
    async with TestClient(TestServer(build_app(gw, Authenticator("noauth")))) as client:
        yield Api(client, bus)


@pytest.fixture
def api(served: Api) -> Api:
    """The one server of this module, with a bus that has sent nothing and answers by echoing."""
    served.bus.sent.clear()
    served.bus.answer = _echo
    served.bus.is_connected = True
    return served


RESOURCES = build_resources(Gateway(timeout=1.0))


def _coll(r: Any) -> str:
    """The collection's path, a sub-resource's parent named by some id."""
    return r.collection.format(**{r.parent: uuid.uuid4()}) if r.parent else r.collection


WRITABLE = [r for r in RESOURCES if r.writable]


def _kind(attr: Attr) -> dict[str, Any]:
    schema = schema_of(attr.convert)
    return next((s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"), schema)


def valid(attr: Attr) -> Any:
    """A value the attribute's converter accepts (and its contract, for the attributes used here)."""
    s = _kind(attr)
    if "enum" in s:
        return s["enum"][0]
    if s.get("format") == "uuid":
        return str(uuid.uuid4())
    return {
        "integer": max(s.get("minimum", 0), 1),
        "boolean": True,
        "array": ["x"],
        "object": {},
        "string": "x",
    }.get(s.get("type", ""), "x")


def invalid(attr: Attr) -> Any:
    """A value the attribute's converter must refuse, or None when it accepts anything."""
    s = _kind(attr)
    if s.get("format") == "uuid":
        return "not-a-uuid"
    if "maxLength" in s:
        return "y" * (s["maxLength"] + 1)
    return {"integer": "many", "boolean": "maybe", "array": "not-a-list", "object": ["not", "a", "dict"]}.get(
        s.get("type", "")
    )


def body_with(r: Resource, extra: dict[str, Any]) -> dict[str, Any]:
    """A POST body with every required attribute set, plus ``extra``."""
    return {r.singular: {**{a.name: valid(a) for a in r.attrs if a.required}, **extra}}


def cases(pick: Callable[[Attr], bool], rs: list[Resource] = WRITABLE) -> list[Any]:
    return [pytest.param(r, a, id=f"{r.collection}.{a.name}") for r in rs for a in r.attrs if pick(a)]


async def expect_400(response: Any, words: str) -> None:
    body = await response.json()
    assert response.status == 400, body
    assert body["NeutronError"]["type"] == "HTTPBadRequest"
    assert words in body["NeutronError"]["message"]


# ---------------------------------------------------------------- attribute rules, nothing sent


@pytest.mark.parametrize("r", [pytest.param(r, id=r.collection) for r in WRITABLE])
async def test_unknown_attributes_are_named(api: Api, r: Resource) -> None:
    await expect_400(await api.client.post(f"/v2.0/{_coll(r)}", json=body_with(r, {"bogus": 1})), "'bogus'")
    path = f"/v2.0/{_coll(r)}/{uuid.uuid4()}"
    await expect_400(await api.client.put(path, json={r.singular: {"bogus": 1}}), "'bogus'")
    assert api.bus.sent == []


@pytest.mark.parametrize(("r", "attr"), cases(lambda a: not a.post))
async def test_read_only_on_post(api: Api, r: Resource, attr: Attr) -> None:
    response = await api.client.post(f"/v2.0/{_coll(r)}", json={r.singular: {attr.name: valid(attr)}})
    await expect_400(response, f"Attribute '{attr.name}' not allowed in POST")
    assert api.bus.sent == []


@pytest.mark.parametrize(("r", "attr"), cases(lambda a: not a.put))
async def test_read_only_on_put(api: Api, r: Resource, attr: Attr) -> None:
    response = await api.client.put(f"/v2.0/{_coll(r)}/{uuid.uuid4()}", json={r.singular: {attr.name: valid(attr)}})
    await expect_400(response, f"Cannot update read-only attribute {attr.name}")
    assert api.bus.sent == []


@pytest.mark.parametrize(("r", "attr"), cases(lambda a: a.required))
async def test_required_attributes_are_named(api: Api, r: Resource, attr: Attr) -> None:
    body = body_with(r, {})
    del body[r.singular][attr.name]
    await expect_400(await api.client.post(f"/v2.0/{_coll(r)}", json=body), f"'{attr.name}' not specified")
    assert api.bus.sent == []


@pytest.mark.parametrize(("r", "attr"), cases(lambda a: (a.post or a.put) and invalid(a) is not None))
async def test_values_that_do_not_convert_are_named(api: Api, r: Resource, attr: Attr) -> None:
    item = {r.singular: {attr.name: invalid(attr)}}
    if attr.post:
        response = await api.client.post(f"/v2.0/{_coll(r)}", json=item)
    else:
        response = await api.client.put(f"/v2.0/{_coll(r)}/{uuid.uuid4()}", json=item)
    await expect_400(response, f"Invalid input for {attr.name}. Reason:")
    assert api.bus.sent == []


async def test_converted_values_reach_the_service(api: Api) -> None:
    body = {"subnetpool": {"name": "p", "prefixes": ["10.0.0.0/8"], "min_prefixlen": "8", "shared": "false"}}
    assert (await api.client.post("/v2.0/subnetpools", json=body, headers=MEMBER)).status == 201
    [(subject, sent)] = api.bus.sent
    assert subject == "scopenet.v1.ipam.subnetpool.create"
    assert sent["subnetpool"] == {"name": "p", "prefixes": ["10.0.0.0/8"], "min_prefixlen": 8, "shared": False}
    assert sent["context"]["project_id"] == "p1" and sent["context"]["roles"] == ["member"]


# ---------------------------------------------------------------- policy


#: Values the contracts narrow further than the attribute map does.
_SAMPLES = {"provider:network_type": "vxlan"}


def _non_default(attr: Attr) -> Any:
    value = _SAMPLES.get(attr.name, valid(attr))
    return (not attr.default) if isinstance(attr.default, bool) else value


@pytest.mark.parametrize(("r", "attr"), cases(lambda a: a.admin_post))
async def test_admin_only_on_create(api: Api, r: Resource, attr: Attr) -> None:
    url = f"/v2.0/{_coll(r)}"
    response = await api.client.post(url, json=body_with(r, {attr.name: _non_default(attr)}), headers=MEMBER)
    assert response.status == 403
    assert f"rule:create_{r.singular}:{attr.name}" in (await response.json())["NeutronError"]["message"]
    assert api.bus.sent == []
    if attr.default is not MISSING and attr.default is not None:  # the default itself is anyone's to give
        response = await api.client.post(url, json=body_with(r, {attr.name: attr.default}), headers=MEMBER)
        assert response.status == 201, await response.text()
    response = await api.client.post(url, json=body_with(r, {attr.name: _non_default(attr)}), headers=ADMIN)
    assert response.status == 201, await response.text()


@pytest.mark.parametrize(("r", "attr"), cases(lambda a: a.admin_put))
async def test_admin_only_on_update_is_404_on_what_the_member_cannot_see(api: Api, r: Resource, attr: Attr) -> None:
    mine, hidden = str(uuid.uuid4()), str(uuid.uuid4())

    def answer(subject: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("id") == hidden:
            raise r.not_found(hidden)
        return _echo(subject, body)

    api.bus.answer = answer
    item = {r.singular: {attr.name: _non_default(attr)}}
    response = await api.client.put(f"/v2.0/{_coll(r)}/{mine}", json=item, headers=MEMBER)
    assert response.status == 403
    assert f"rule:update_{r.singular}:{attr.name}" in (await response.json())["NeutronError"]["message"]
    response = await api.client.put(f"/v2.0/{_coll(r)}/{hidden}", json=item, headers=MEMBER)
    assert response.status == 404 and (await response.json())["NeutronError"]["type"] == r.not_found_type
    assert {s.rsplit(".", 1)[1] for s, _ in api.bus.sent} == {"get"}  # looked, never updated


async def test_only_admin_names_another_project(api: Api) -> None:
    body = {"address_scope": {"ip_version": 4, "project_id": "p2"}}
    await expect_400(await api.client.post("/v2.0/address-scopes", json=body, headers=MEMBER), "requires admin")
    body = {"address_scope": {"ip_version": 4, "project_id": "p2", "tenant_id": "p3"}}
    await expect_400(await api.client.post("/v2.0/address-scopes", json=body, headers=ADMIN), "do not match")
    body = {"address_scope": {"ip_version": 4, "project_id": "p2"}}
    assert (await api.client.post("/v2.0/address-scopes", json=body, headers=ADMIN)).status == 201
    assert api.bus.sent[0][1]["address_scope"]["project_id"] == "p2"


async def test_readers_read_and_are_told_404_on_what_they_cannot_see(api: Api) -> None:
    body = {"address_scope": {"ip_version": 4}}
    assert (await api.client.post("/v2.0/address-scopes", json=body, headers=READER)).status == 403

    def gone(subject: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotFound(f"Subnet pool {body.get('id')} could not be found.", type="SubnetPoolNotFound")

    api.bus.answer = gone
    response = await api.client.delete(f"/v2.0/subnetpools/{uuid.uuid4()}", headers=READER)
    assert response.status == 404 and (await response.json())["NeutronError"]["type"] == "SubnetPoolNotFound"
    assert [s for s, _ in api.bus.sent] == ["scopenet.v1.ipam.subnetpool.get"]


async def test_an_id_that_is_not_a_uuid_is_not_found(api: Api) -> None:
    response = await api.client.get("/v2.0/networks/not-a-uuid")
    assert response.status == 404 and (await response.json())["NeutronError"]["type"] == "NetworkNotFound"
    assert api.bus.sent == []


# ---------------------------------------------------------------- what replies look like


POOL = {
    "id": "5f0c2a64-3b1e-4d59-9a3e-0c1d2e3f4a01",
    "name": "p",
    "min_prefixlen": 8,
    "max_prefixlen": 32,
    "default_prefixlen": 24,
    "created_at": "2016-12-13T22:53:30.123456+00:00",
    "updated_at": "2016-12-14T00:53:30+02:00",
}


async def test_pool_prefix_lengths_are_strings_except_in_the_update_reply(api: Api) -> None:
    api.bus.answer = lambda subject, body: {"subnetpool": POOL, "subnetpools": [POOL]}
    shown = (await (await api.client.get(f"/v2.0/subnetpools/{POOL['id']}")).json())["subnetpool"]
    assert (shown["min_prefixlen"], shown["max_prefixlen"], shown["default_prefixlen"]) == ("8", "32", "24")
    listed = (await (await api.client.get("/v2.0/subnetpools")).json())["subnetpools"]
    assert listed[0]["default_prefixlen"] == "24"
    response = await api.client.put(f"/v2.0/subnetpools/{POOL['id']}", json={"subnetpool": {"name": "q"}})
    assert (await response.json())["subnetpool"]["default_prefixlen"] == 24


async def test_timestamps_in_neutron_format(api: Api) -> None:
    api.bus.answer = lambda subject, body: {"subnetpool": POOL}
    shown = (await (await api.client.get(f"/v2.0/subnetpools/{POOL['id']}")).json())["subnetpool"]
    assert (shown["created_at"], shown["updated_at"]) == ("2016-12-13T22:53:30Z", "2016-12-13T22:53:30Z")


async def test_hidden_and_admin_only_keys(api: Api) -> None:
    scope = {"id": POOL["id"], "name": "s", "mark_id": 1025, "ip_version": 4}
    net = {"id": POOL["id"], "name": "n", "provider:network_type": "vxlan", "provider:segmentation_id": 1001}
    api.bus.answer = lambda subject, body: {"address_scope": scope, "network": net}
    for headers in (ADMIN, MEMBER):
        shown = await (await api.client.get(f"/v2.0/address-scopes/{POOL['id']}", headers=headers)).json()
        assert "mark_id" not in shown["address_scope"]
    as_admin = (await (await api.client.get(f"/v2.0/networks/{POOL['id']}", headers=ADMIN)).json())["network"]
    as_member = (await (await api.client.get(f"/v2.0/networks/{POOL['id']}", headers=MEMBER)).json())["network"]
    assert as_admin["provider:segmentation_id"] == 1001
    assert as_member == {"id": POOL["id"], "name": "n"}


async def test_fields_narrow_a_show(api: Api) -> None:
    api.bus.answer = lambda subject, body: {"subnetpool": POOL}
    shown = await (await api.client.get(f"/v2.0/subnetpools/{POOL['id']}?fields=name&fields=id")).json()
    assert shown == {"subnetpool": {"id": POOL["id"], "name": "p"}}


# ---------------------------------------------------------------- errors of the services


@pytest.mark.parametrize(
    ("error", "status", "type_"),
    [
        (Conflict("Address scope in use", type="AddressScopeInUse"), 409, "AddressScopeInUse"),
        (NotFound("Address scope x could not be found.", type="AddressScopeNotFound"), 404, "AddressScopeNotFound"),
        (TransientError("database unavailable"), 503, "ServiceUnavailable"),
    ],
)
async def test_service_errors_keep_their_neutron_type(
    api: Api, error: DomainError | TransientError, status: int, type_: str
) -> None:
    def fail(subject: str, body: dict[str, Any]) -> dict[str, Any]:
        raise error

    api.bus.answer = fail
    response = await api.client.delete(f"/v2.0/address-scopes/{uuid.uuid4()}")
    assert response.status == status
    assert await response.json() == {"NeutronError": {"type": type_, "message": error.message, "detail": ""}}
    assert response.headers["X-Openstack-Request-Id"].startswith("req-")


async def test_bus_down_is_503_with_retry_after(api: Api) -> None:
    api.bus.is_connected = False
    response = await api.client.get("/v2.0/networks")
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert (await response.json())["NeutronError"]["type"] == "ServiceUnavailable"


async def test_a_body_the_contract_refuses_is_400_naming_the_field(api: Api) -> None:
    body = {"address_scope": {"ip_version": 4, "name": " padded "}}
    response = await api.client.post("/v2.0/address-scopes", json=body)
    await expect_400(response, "Invalid input for name")
    assert api.bus.sent == []
