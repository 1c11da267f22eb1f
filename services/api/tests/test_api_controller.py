"""The generic controller over a fake backend: shapes, bulk all-or-nothing, tags CAS, errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import Conflict, PreconditionFailed
from scopenet.services.api.attrs import Attr, as_int, as_string, ro, standard_attrs
from scopenet.services.api.auth import Authenticator, auth_middleware
from scopenet.services.api.controller import Controller
from scopenet.services.api.errors import error_middleware
from scopenet.services.api.spec import Resource, View


class Fake:
    def __init__(self) -> None:
        self.items: dict[str, View] = {}
        self.lose_races = 0

    async def create(self, ctx: CallContext, body: View) -> View:
        if body.get("name") == "boom":
            raise Conflict("boom", type="BoomConflict")
        if body.get("name") == "crash":
            raise RuntimeError("secret internals")
        id_ = str(uuid.uuid4())
        self.items[id_] = {"id": id_, "tags": [], "revision_number": 0, "project_id": ctx.project_id, **body}
        return self.items[id_]

    async def get(self, ctx: CallContext, id_: str) -> View:
        if id_ not in self.items:
            raise RES.not_found(id_)
        return dict(self.items[id_])

    async def list(self, ctx: CallContext, filters: dict[str, list[Any]]) -> list[View]:
        return list(self.items.values())

    async def update(self, ctx: CallContext, id_: str, body: View, *, if_revision: int | None) -> View:
        item = self.items[id_]
        if self.lose_races:
            self.lose_races -= 1
            item["revision_number"] += 1  # someone else wrote meanwhile
        if if_revision is not None and if_revision != item["revision_number"]:
            raise PreconditionFailed("Constrained")
        item.update(body, revision_number=item["revision_number"] + 1)
        return dict(item)

    async def delete(self, ctx: CallContext, id_: str, *, if_revision: int | None) -> None:
        self.items.pop(id_)


FAKE = Fake()
RES = Resource(
    collection="things",
    plural="things",
    singular="thing",
    attrs=(ro("id"), Attr("name", as_string(255), put=True), Attr("size", as_int(), put=True), *standard_attrs()),
    backend=FAKE,
    not_found_type="ThingNotFound",
    not_found_text="Thing {} could not be found.",
    tags=True,
)


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    FAKE.items.clear()
    app = web.Application(middlewares=[error_middleware, auth_middleware(Authenticator("noauth"))])
    app.add_routes(Controller(RES).routes())
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_create_show_update_delete(client: TestClient[Any, Any]) -> None:
    r = await client.post("/v2.0/things", json={"thing": {"name": "n", "size": "3"}})
    assert r.status == 201
    thing = (await r.json())["thing"]
    assert thing["size"] == 3 and thing["project_id"] == "0" * 32
    r = await client.put(f"/v2.0/things/{thing['id']}", json={"thing": {"name": "m"}})
    assert (await r.json())["thing"]["name"] == "m"
    r = await client.put(f"/v2.0/things/{thing['id']}", json={"thing": {"id": "x"}})
    assert r.status == 400 and "Cannot update read-only attribute id" in await r.text()
    assert (await client.delete(f"/v2.0/things/{thing['id']}")).status == 204
    r = await client.get(f"/v2.0/things/{thing['id']}")
    assert r.status == 404 and (await r.json())["NeutronError"]["type"] == "ThingNotFound"


async def test_bulk_create_is_all_or_nothing(client: TestClient[Any, Any]) -> None:
    r = await client.post("/v2.0/things", json={"things": [{"name": "a"}, {"name": "b"}]})
    assert r.status == 201 and len((await r.json())["things"]) == 2
    r = await client.post("/v2.0/things", json={"things": [{"name": "c"}, {"name": "boom"}]})
    assert r.status == 409 and (await r.json())["NeutronError"]["type"] == "BoomConflict"
    assert sorted(i["name"] for i in FAKE.items.values()) == ["a", "b"]


async def test_tag_changes_retry_a_lost_race(client: TestClient[Any, Any]) -> None:
    thing = (await (await client.post("/v2.0/things", json={"thing": {"name": "t"}})).json())["thing"]
    FAKE.lose_races = 2
    assert (await client.put(f"/v2.0/things/{thing['id']}/tags/blue")).status == 201
    assert FAKE.items[thing["id"]]["tags"] == ["blue"]


async def test_errors_never_leak_and_have_neutron_shape(client: TestClient[Any, Any]) -> None:
    r = await client.post("/v2.0/things", json={"thing": {"name": "crash"}})
    body = await r.json()
    assert r.status == 500 and "secret" not in str(body) and body["NeutronError"]["detail"] == ""
    for method, path, status in (("GET", "/v2.0/nothing", 404), ("PATCH", "/v2.0/things", 405)):
        r = await client.request(method, path)
        assert r.status == status and "NeutronError" in await r.json()
    for raw in (b"\xff\xfe", b'{"thing": {"name": "\\ud800"}}', b'{"thing": {"name": "a\\u0000"}}', b"[" * 100000):
        r = await client.post("/v2.0/things", data=raw, headers={"X-Roles": "member"})
        assert r.status == 400, raw[:40]
    r = await client.post("/v2.0/things", json={"thing": {"name": "x"}}, headers={"X-Roles": "reader"})
    assert r.status == 403
    r = await client.put(
        f"/v2.0/things/{uuid.uuid4()}", json={"thing": {}}, headers={"If-Match": "revision_number=1,revision_number=2"}
    )
    assert r.status == 400
