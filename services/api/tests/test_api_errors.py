"""Error mapping: every failure leaves as Neutron's ``{"NeutronError": {type, message, detail}}``.

Pins the status of each error root (a domain error keeps its code and Neutron type, a code that is
not an HTTP error becomes 500, a transient error is 503 with ``Retry-After``), aiohttp's own HTTP
errors under Neutron's type names (404, 405 with ``Allow``, 413), 401 without a token, and that an
unexpected exception says nothing of itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts.errors import BadRequest, Conflict, DomainError, NotAuthorized, NotFound, TransientError
from scopenet.services.api.app import build_app
from scopenet.services.api.auth import Authenticator, auth_middleware, load_tokens
from scopenet.services.api.errors import error_middleware, from_exception
from scopenet.services.api.gateway import Gateway


def body(response: web.Response) -> Any:
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


@given(st.integers(0, 999), st.text(min_size=1, max_size=40), st.text(max_size=80))
def test_domain_errors_keep_code_type_and_message(code: int, type_: str, message: str) -> None:
    exc = DomainError(message, type=type_)
    exc.code = code
    response = from_exception(exc)
    assert response.status == (code if 400 <= code < 600 else 500)
    assert body(response) == {"NeutronError": {"type": type_, "message": message, "detail": ""}}


@pytest.mark.parametrize(
    ("exc", "status", "type_"),
    [
        (BadRequest("b"), 400, "BadRequest"),
        (NotAuthorized("n"), 403, "PolicyNotAuthorized"),
        (NotFound("x", type="NetworkNotFound"), 404, "NetworkNotFound"),
        (Conflict("c", type="SubnetInUse"), 409, "SubnetInUse"),
    ],
)
def test_error_classes(exc: DomainError, status: int, type_: str) -> None:
    response = from_exception(exc)
    assert (response.status, body(response)["NeutronError"]["type"]) == (status, type_)


def test_transient_is_503_with_retry_after() -> None:
    response = from_exception(TransientError("NATS away", delay=7))
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert body(response)["NeutronError"] == {"type": "ServiceUnavailable", "message": "NATS away", "detail": ""}


def test_anything_else_is_not_mapped() -> None:
    with pytest.raises(KeyError):
        from_exception(KeyError("bug"))


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(Gateway(timeout=1.0), Authenticator("noauth"))

    async def crash(_: web.Request) -> web.Response:
        raise RuntimeError("password=hunter2")

    app.router.add_get("/crash", crash)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_http_errors_in_neutron_shape(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v2.0/no-such-collection")
    assert response.status == 404 and (await response.json())["NeutronError"]["type"] == "HTTPNotFound"
    response = await client.patch("/v2.0/networks")
    assert response.status == 405 and (await response.json())["NeutronError"]["type"] == "HTTPMethodNotAllowed"
    assert "POST" in response.headers["Allow"]
    response = await client.post("/v2.0/networks", data=b"{" + b" " * (1024 * 1024 + 1) + b"}")
    assert response.status == 413 and (await response.json())["NeutronError"]["type"] == "HTTPRequestEntityTooLarge"


async def test_bodies_that_are_not_json(client: TestClient[Any, Any]) -> None:
    for raw, words in ((b"", "Resource body required"), (b"{nope", "not valid JSON"), (b"[1]", "Unable to find")):
        response = await client.post("/v2.0/address-scopes", data=raw)
        assert response.status == 400 and words in (await response.json())["NeutronError"]["message"]


async def test_a_bug_says_nothing_of_itself(client: TestClient[Any, Any]) -> None:
    response = await client.get("/crash")
    text = await response.text()
    assert response.status == 500 and "hunter2" not in text and "RuntimeError" not in text
    assert json.loads(text)["NeutronError"]["type"] == "HTTPInternalServerError"


async def test_without_a_token_is_401(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("tokens:\n  a-long-enough-token: {project_id: p1, roles: [member]}\n")
    app = web.Application(middlewares=[error_middleware, auth_middleware(Authenticator("tokens", load_tokens(path)))])

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/v2.0/networks", ok)
    async with TestClient(TestServer(app)) as c:
        for headers in ({}, {"X-Auth-Token": "a-long-enough-token-but-wrong"}):
            response = await c.get("/v2.0/networks", headers=headers)
            assert response.status == 401 and "NeutronError" in await response.json()
            assert response.headers["X-Openstack-Request-Id"].startswith("req-")
        assert (await c.get("/v2.0/networks", headers={"X-Auth-Token": "a-long-enough-token"})).status == 200
