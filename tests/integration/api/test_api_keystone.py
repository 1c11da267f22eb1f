"""Keystone mode against a real Keystone (from PyPI, its own venv and SQLite database, bootstrapped
and served on loopback by ``scopenet.infra.keystone``), with the real ``openstack`` CLI logging in
with passwords, application credentials and a clouds.yaml, and never told where scopenet is: it
finds the ``network`` endpoint that ``scopenet keystone register`` put in the catalog.

The API validates tokens with keystonemiddleware's auth_token, caching them ``CACHE_TIME`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from scopenet.commands.keystone import connect, ensure_user
from scopenet.infra.keystone import Keystone, keystone_server, password_env
from scopenet.infra.select import Endpoints
from scopenet.services.api.app import RunningApi, api_service
from scopenet.services.api.settings import ApiSettings
from scopenet.services.topology.app import TopologyRunning
from scopenet.store.service import Running
from tests.integration.api.conftest import OPENSTACK

CACHE_TIME = 5
"""Seconds auth_token keeps a validated token: a revoked one works at most this long."""
SCOPENET = str(Path(sys.executable).parent / "scopenet")
SERVICE_PASSWORD = "scopenet-service-password"


@dataclass
class World:
    keystone: Keystone
    api: RunningApi
    creds: dict[str, dict[str, str]]
    """``OS_*`` password credentials of ``admin``, ``alice`` and ``bob`` (each a project of their own)."""
    projects: dict[str, str]
    """Keystone's project id of each user's project."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any OS_* (the developer's cloud never leaks in)."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SCOPENET_"))}, **extra}


async def run(argv: list[str], env: dict[str, str], *, timeout: float = 120) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def openstack(creds: dict[str, str], *args: str, fmt: bool = True, **env: str) -> Any:
    """The real ``openstack`` command with these credentials and no ``OS_ENDPOINT``."""
    code, out, err = await run([OPENSTACK, *args, *(["-f", "json"] if fmt else [])], _clean_env(**creds, **env))
    assert code == 0, f"openstack {' '.join(args)} failed: {err}"
    return json.loads(out) if fmt and out.strip() else out


async def openstack_fails(creds: dict[str, str], *args: str) -> str:
    code, _, err = await run([OPENSTACK, *args], _clean_env(**creds))
    assert code != 0, f"openstack {' '.join(args)} succeeded"
    return err


@contextlib.contextmanager
def _users(ks: Keystone) -> Iterator[tuple[dict[str, dict[str, str]], dict[str, str]]]:
    conn = connect(env=ks.admin_env())
    try:
        creds = {"admin": ks.admin_env()}
        for name in ("alice", "bob"):
            password = f"{name}-password-0123"
            ensure_user(conn, name=name, password=password, project=f"ks-{name}", roles=["member", "reader"])
            creds[name] = password_env(ks.url, username=name, password=password, project=f"ks-{name}")
        projects = {
            n: conn.identity.find_project(p, ignore_missing=False, domain_id="default").id
            for n, p in (("admin", "admin"), ("alice", "ks-alice"), ("bob", "ks-bob"))
        }
        yield creds, projects
    finally:
        conn.close()


@pytest.fixture(scope="module")
async def world(
    ipam_running: Running, topology_running: TopologyRunning, infra: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    data = Path(tmp_path_factory.mktemp("keystone"))
    with contextlib.ExitStack() as stack:
        # Keystone's launcher blocks while it syncs and bootstraps: a thread keeps the services' loop running.
        ks = await asyncio.to_thread(stack.enter_context, keystone_server(data, password_hash_rounds=4))
        try:
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            code, out, err = await run(
                [SCOPENET, "keystone", "register", "--url", url, "--service-user", "scopenet"],
                _clean_env(**ks.admin_env(), SCOPENET_KEYSTONE_PASSWORD=SERVICE_PASSWORD),
            )
            assert code == 0, err
            assert "service scopenet (network) created" in out and "user scopenet created" in out, out
            creds, projects = await asyncio.to_thread(stack.enter_context, _users(ks))
            settings = ApiSettings(
                nats_url=infra.nats_url,
                api_port=port,
                health_port=0,
                request_timeout=10,
                auth="keystone",
                keystone_auth_url=ks.url,
                keystone_username="scopenet",
                keystone_password=SERVICE_PASSWORD,
                keystone_token_cache_time=CACHE_TIME,
            )
            async with api_service(settings, nats_url=infra.nats_url) as api:
                yield World(ks, api, creds, projects)
        finally:
            await asyncio.to_thread(stack.close)


async def get(world: World, path: str, token: str | None) -> tuple[int, Any, Any]:
    headers = {"X-Auth-Token": token} if token is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(world.api.url + path, headers=headers) as resp,
    ):
        body = await resp.read()
        return resp.status, json.loads(body) if body else None, resp.headers


async def token_of(creds: dict[str, str]) -> dict[str, Any]:
    issued: dict[str, Any] = await openstack(creds, "token", "issue")
    return issued


async def test_register_fills_the_catalog_and_runs_again_from_clouds_yaml(world: World, tmp_path: Path) -> None:
    endpoints = await openstack(world.creds["admin"], "endpoint", "list", "--service", "network")
    assert sorted(e["Interface"] for e in endpoints) == ["admin", "internal", "public"]
    assert {e["URL"] for e in endpoints} == {world.api.url} and {e["Region"] for e in endpoints} == {"RegionOne"}

    admin = world.creds["admin"]
    clouds = tmp_path / "clouds.yaml"
    cloud = {
        "auth": {
            "auth_url": admin["OS_AUTH_URL"],
            "username": "admin",
            "password": admin["OS_PASSWORD"],
            "project_name": "admin",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": "RegionOne",
        "identity_api_version": 3,
    }
    clouds.write_text(yaml.safe_dump({"clouds": {"ks-admin": cloud}}))
    env = _clean_env(OS_CLIENT_CONFIG_FILE=str(clouds), SCOPENET_KEYSTONE_PASSWORD=SERVICE_PASSWORD)
    argv = [
        SCOPENET,
        "keystone",
        "register",
        "--os-cloud",
        "ks-admin",
        "--url",
        world.api.url,
        "--service-user",
        "scopenet",
    ]
    code, out, err = await run(argv, env)
    assert code == 0, err
    assert "service scopenet (network) exists" in out and "endpoint public " + world.api.url + " exists" in out
    assert len(await openstack(admin, "endpoint", "list", "--service", "network")) == 3  # nothing doubled

    code, _, err = await run([SCOPENET, "keystone", "register", "--url", world.api.url], _clean_env())
    assert code != 0 and "\n" not in err.strip() and "Traceback" not in err  # no credentials: one line


async def test_walkthrough_with_password_credentials(world: World) -> None:
    """The seed's commands as an admin and as members of two other projects, logged in with passwords."""
    admin, alice, bob = (world.creds[n] for n in ("admin", "alice", "bob"))
    scope = await openstack(admin, "address", "scope", "create", "--share", "--ip-version", "4", "ks-scope-ip4")
    assert (scope["project_id"], scope["shared"]) == (world.projects["admin"], True)
    pool = await openstack(
        admin, "subnet", "pool", "create", "--address-scope", "ks-scope-ip4", "--share",
        "--pool-prefix", "203.0.113.0/24", "--default-prefix-length", "26", "ks-pool-ip4",
    )  # fmt: skip
    assert pool["address_scope_id"] == scope["id"]

    net = await openstack(alice, "network", "create", "ks-network2")
    assert net["project_id"] == world.projects["alice"]
    sub = await openstack(alice, "subnet", "create", "--subnet-pool", "ks-pool-ip4", "--network", "ks-network2",
                          "ks-subnet-ip4-2")  # fmt: skip
    assert sub["cidr"].startswith("203.0.113.") and sub["cidr"].endswith("/26")
    assert (await openstack(alice, "network", "show", "ks-network2"))["ipv4_address_scope"] == scope["id"]
    await openstack(alice, "router", "create", "ks-router1")
    await openstack(alice, "router", "add", "subnet", "ks-router1", "ks-subnet-ip4-2", fmt=False)
    port = await openstack(alice, "port", "create", "--network", "ks-network2", "ks-port2")
    assert port["project_id"] == world.projects["alice"]

    err = await openstack_fails(alice, "address", "scope", "create", "--share", "--ip-version", "4", "mine")
    assert "ForbiddenException: 403" in err and "create_address_scope:shared" in err

    # bob, a member of another project, sees the admin's shared pool and nothing of alice's
    assert "ks-network2" not in {n["Name"] for n in await openstack(bob, "network", "list")}
    assert "ks-pool-ip4" in {p["Name"] for p in await openstack(bob, "subnet", "pool", "list")}
    assert "No Network found for ks-network2" in await openstack_fails(bob, "network", "show", "ks-network2")
    bob_token = (await token_of(bob))["id"]
    for path, obj in (("networks", net), ("subnets", sub), ("ports", port)):
        status, _, _ = await get(world, f"/v2.0/{path}/{obj['id']}", bob_token)
        assert status == 404, path
    status, body, _ = await get(world, "/v2.0/networks", bob_token)
    assert status == 200 and net["id"] not in {n["id"] for n in body["networks"]}
    # and the admin sees everything
    assert "ks-network2" in {n["Name"] for n in await openstack(admin, "network", "list")}


async def test_missing_or_bad_tokens_get_401_with_keystones_header(world: World) -> None:
    for token in (None, "not-a-keystone-token", "gAAAAABnot-a-fernet-token-at-all"):
        status, body, headers = await get(world, "/v2.0/networks", token)
        assert status == 401, token
        assert headers["WWW-Authenticate"] == f'Keystone uri="{world.keystone.url}"'
        assert body["error"]["code"] == 401
    status, _, _ = await get(world, "/", None)  # the version document stays public
    assert status == 200


async def test_a_revoked_token_stops_working_within_the_cache_time(world: World) -> None:
    token = (await token_of(world.creds["alice"]))["id"]
    assert (await get(world, "/v2.0/networks", token))[0] == 200  # now in auth_token's cache
    await openstack(world.creds["admin"], "token", "revoke", token, fmt=False)
    revoked = time.monotonic()
    deadline = revoked + CACHE_TIME + 30  # the margin is the loaded machine's, not auth_token's
    status = 200
    while time.monotonic() < deadline:
        status = (await get(world, "/v2.0/networks", token))[0]
        if status != 200:
            break
        await asyncio.sleep(0.5)
    assert status == 401, f"a revoked token still worked {time.monotonic() - revoked:.1f}s later"


def _lower(shown: dict[str, Any]) -> dict[str, Any]:
    """``openstack ... show -f json`` keys as attribute names ("Expires At" -> "expires_at")."""
    return {k.lower().replace(" ", "_"): v for k, v in shown.items()}


async def test_application_credentials_and_expiry(world: World) -> None:
    alice = world.creds["alice"]
    await openstack(alice, "network", "create", "ks-appcred-net")
    cred = _lower(await openstack(alice, "application", "credential", "create", "ks-cli"))
    app_env = {
        "OS_AUTH_URL": world.keystone.url,
        "OS_AUTH_TYPE": "v3applicationcredential",
        "OS_APPLICATION_CREDENTIAL_ID": cred["id"],
        "OS_APPLICATION_CREDENTIAL_SECRET": cred["secret"],
        "OS_IDENTITY_API_VERSION": "3",
        "OS_REGION_NAME": "RegionOne",
    }
    assert "ks-appcred-net" in {n["Name"] for n in await openstack(app_env, "network", "list")}

    # A token of an application credential never outlives the credential: one that expires soon.
    expires = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0) + dt.timedelta(seconds=25)
    argv = ["application", "credential", "create", "--expiration", expires.isoformat(), "ks-short"]
    short = _lower(await openstack(alice, *argv))
    short_env = {
        **app_env,
        "OS_APPLICATION_CREDENTIAL_ID": short["id"],
        "OS_APPLICATION_CREDENTIAL_SECRET": short["secret"],
    }
    issued = await token_of(short_env)
    token_expiry = dt.datetime.fromisoformat(issued["expires"].replace("Z", "+00:00"))
    assert token_expiry <= expires.replace(tzinfo=dt.UTC) + dt.timedelta(seconds=1)
    status, body, _ = await get(world, "/v2.0/networks", issued["id"])
    assert status == 200 and "ks-appcred-net" in {n["name"] for n in body["networks"]}
    left = (token_expiry - dt.datetime.now(dt.UTC)).total_seconds()
    await asyncio.sleep(max(0.0, left) + 1)
    status, body, headers = await get(world, "/v2.0/networks", issued["id"])
    assert status == 401 and headers["WWW-Authenticate"] == f'Keystone uri="{world.keystone.url}"'


async def test_clouds_yaml_of_a_member(world: World, tmp_path: Path) -> None:
    bob = world.creds["bob"]
    clouds = tmp_path / "clouds.yaml"
    auth = {
        "auth_url": bob["OS_AUTH_URL"],
        "username": "bob",
        "password": bob["OS_PASSWORD"],
        "project_name": "ks-bob",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    }
    cloud = {"auth": auth, "region_name": "RegionOne", "identity_api_version": 3}
    clouds.write_text(yaml.safe_dump({"clouds": {"ks-bob": cloud}}))
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds), "OS_CLOUD": "ks-bob"}
    net = await openstack(env, "network", "create", "ks-bob-net")
    assert net["project_id"] == world.projects["bob"]
    assert "ks-bob-net" in {n["Name"] for n in await openstack(env, "network", "list")}
