"""Keystone mode without a Keystone: configuration that fails at start, the shared token cache,
the caller taken from auth_token's headers, and auth_token's own answers when Keystone is away.

The real Keystone (tokens, revocation, expiry, the catalog, the openstack CLI) is in
``tests/integration/api/test_api_keystone.py``.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from scopenet.contracts.errors import NotAuthorized
from scopenet.runtime.settings import load
from scopenet.services.api.auth import CONTEXT, auth_middleware
from scopenet.services.api.errors import error_middleware
from scopenet.services.api.keystone import KeystoneAuthenticator, KeystoneConfig, config_from, context_of
from scopenet.services.api.settings import ApiSettings
from scopenet.services.api.tokencache import NeedsKeystone, SharedTokenCache, Verdict


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(**kw: object) -> KeystoneConfig:
    base: dict[str, object] = {
        "auth_url": f"http://127.0.0.1:{closed_port()}/v3",
        "www_authenticate_uri": "https://keystone.example.org/v3",
        "username": "scopenet",
        "password": "secret-password",
    }
    return KeystoneConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_missing_service_credentials_fail_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SCOPENET_KEYSTONE_AUTH_URL, SCOPENET_KEYSTONE_PASSWORD"):
        KeystoneConfig(auth_url=None, www_authenticate_uri=None, username="scopenet", password=None)
    with pytest.raises(ValueError, match="does not exist"):
        config(config_file=tmp_path / "neutron.conf")
    with pytest.raises(ValueError):
        config(threads=0)


def test_settings_select_keystone(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AUTH", "KEYSTONE_AUTH_URL", "KEYSTONE_USERNAME", "KEYSTONE_PASSWORD"):
        monkeypatch.delenv(f"SCOPENET_{var}", raising=False)
    monkeypatch.setenv("SCOPENET_AUTH", "keystone")
    monkeypatch.setenv("SCOPENET_KEYSTONE_AUTH_URL", "http://keystone:5000/v3")
    monkeypatch.setenv("SCOPENET_KEYSTONE_USERNAME", "scopenet")
    monkeypatch.setenv("SCOPENET_KEYSTONE_PASSWORD", "pw")
    monkeypatch.setenv("SCOPENET_KEYSTONE_MEMCACHED_SERVERS", '["cache-1:11211", "cache-2:11211"]')
    monkeypatch.setenv("SCOPENET_KEYSTONE_TOKEN_CACHE_TIME", "30")
    cfg = config_from(load(ApiSettings))
    assert (cfg.auth_url, cfg.username, cfg.project_name, cfg.token_cache_time) == (
        "http://keystone:5000/v3",
        "scopenet",
        "service",
        30,
    )
    over = cfg.overrides()
    assert over["memcached_servers"] == ["cache-1:11211", "cache-2:11211"]
    assert over["www_authenticate_uri"] == "http://keystone:5000/v3"  # unset: the auth_url
    assert over["auth_type"] == "password" and over["service_type"] == "network"
    assert "interface" not in over  # auth_token's own default (internal) applies


def test_a_neutron_config_file_is_read_and_settings_win(tmp_path: Path) -> None:
    """An operator can hand over Neutron's [keystone_authtoken] section as it is."""
    from scopenet.services.api.keystone import GROUP, _oslo_config

    conf_file = tmp_path / "neutron.conf"
    conf_file.write_text(
        "[keystone_authtoken]\n"
        "www_authenticate_uri = https://keystone.example.org/v3\n"
        "auth_url = http://keystone.internal:5000/v3\n"
        "auth_type = password\n"
        "username = neutron\n"
        "password = from-the-file\n"
        "project_name = service\n"
        "user_domain_name = Default\n"
        "project_domain_name = Default\n"
        "token_cache_time = 120\n"
    )
    cfg = KeystoneConfig(
        auth_url=None, www_authenticate_uri=None, username=None, password="from-settings", config_file=conf_file
    )
    conf = _oslo_config(cfg)[GROUP]
    assert (conf.username, conf.password, conf.token_cache_time) == ("neutron", "from-settings", 120)
    assert conf.www_authenticate_uri == "https://keystone.example.org/v3"


def test_shared_cache_expires_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("scopenet.services.api.tokencache._now", lambda: now[0])
    cache = SharedTokenCache(max_entries=20)
    cache.set("tokens/a", b"A", time=5)
    cache.set("tokens/forever", b"F")
    assert cache.get("tokens/a") == b"A"
    now[0] += 5
    assert cache.get("tokens/a") is None and cache.get("tokens/forever") == b"F"
    for i in range(100):
        cache.set(f"tokens/{i}", b"x", time=60)
    assert cache.size() <= 20 and cache.get("tokens/99") == b"x"
    # On the event loop a miss must never turn into a call to Keystone: it raises instead.
    with cache.cached_only():
        assert cache.get("tokens/99") == b"x"
        with pytest.raises(NeedsKeystone):
            cache.get("tokens/a")
    assert cache.get("tokens/a") is None


def test_a_verdict_lives_and_dies_with_auth_tokens_cache_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("scopenet.services.api.tokencache._now", lambda: now[0])
    cache = SharedTokenCache(max_entries=10)
    verdict = Verdict(project_id="p", roles=("member",), expires=2e9)
    cache.remember("tokens/a", verdict)
    assert cache.verdict("tokens/a") is None  # no entry of auth_token's: nothing to attach to
    cache.set("tokens/a", b"data", time=5)
    assert cache.get("tokens/a") == b"data" and cache.last_key() == "tokens/a"
    cache.remember("tokens/a", verdict)
    assert cache.verdict("tokens/a") == verdict
    cache.set("tokens/a", b"new data", time=5)  # auth_token fetched the token again: decide again
    assert cache.verdict("tokens/a") is None
    cache.remember("tokens/a", verdict)
    now[0] += 5  # the entry aged out: so did the verdict (a revoked token stops here)
    assert cache.verdict("tokens/a") is None


def test_the_caller_comes_from_auth_tokens_headers() -> None:
    ctx = context_of({"HTTP_X_PROJECT_ID": "p" * 32, "HTTP_X_ROLES": "member,reader"}, "req-1")
    assert (ctx.project_id, ctx.roles, ctx.request_id, ctx.is_admin) == ("p" * 32, ["member", "reader"], "req-1", False)
    assert context_of({"HTTP_X_PROJECT_ID": "p", "HTTP_X_ROLES": "reader,member,admin"}, "r").is_admin
    with pytest.raises(NotAuthorized, match="project-scoped"):
        context_of({"HTTP_X_DOMAIN_ID": "default", "HTTP_X_ROLES": "admin"}, "r")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The API's two middlewares in front of a handler that echoes the caller; Keystone is away."""
    auth = KeystoneAuthenticator(config(token_cache_time=60))

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"project_id": request[CONTEXT].project_id})

    app = web.Application(middlewares=[error_middleware, auth_middleware(auth)])
    app.router.add_get("/v2.0/networks", whoami)

    async def versions(_: web.Request) -> web.Response:
        return web.json_response({"versions": []})

    app.router.add_get("/", versions)
    async with TestClient(TestServer(app)) as c:
        yield c
    auth.close()


async def test_no_token_is_401_with_keystones_header(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/v2.0/networks")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Keystone uri="https://keystone.example.org/v3"'
    assert (await resp.json())["error"]["code"] == 401
    assert resp.headers["X-Openstack-Request-Id"].startswith("req-")


async def test_keystone_away_is_503_never_a_pass(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/v2.0/networks", headers={"X-Auth-Token": "gAAAAAB-some-token"})
    assert resp.status == 503
    assert "Keystone" in await resp.text()


async def test_public_paths_need_no_token(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/")
    assert resp.status == 200 and await resp.json() == {"versions": []}
