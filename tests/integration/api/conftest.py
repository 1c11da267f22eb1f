"""The HTTP API on a free port, in front of in-process IPAM and topology services.

Everything runs in the session's event loop, so tests are ``async``: they talk HTTP with aiohttp
and run the real ``openstack`` CLI with ``asyncio`` subprocesses, which keeps the loop (and so the
services) running while the CLI waits for answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from scopenet.infra.select import Endpoints
from scopenet.services.api.app import RunningApi, api_service
from scopenet.services.api.settings import ApiSettings
from scopenet.services.topology.app import TopologyRunning, topology_service
from scopenet.services.topology.settings import TopologySettings
from scopenet.store.service import Running

ADMIN_PROJECT = "0" * 32
ALICE_PROJECT = "a" * 32
BOB_PROJECT = "b" * 32
TOKENS = {
    "admin": ("tok-admin-0123456789", ADMIN_PROJECT, ["admin", "member", "reader"]),
    "alice": ("tok-alice-0123456789", ALICE_PROJECT, ["member", "reader"]),
    "bob": ("tok-bob-0123456789ab", BOB_PROJECT, ["member", "reader"]),
    "reader": ("tok-reader-012345678", ALICE_PROJECT, ["reader"]),
}
OPENSTACK = str(Path(sys.executable).parent / "openstack")


@pytest.fixture(scope="session")
async def topology_running(ipam_running: Running, infra: Endpoints) -> AsyncIterator[Running]:
    settings = TopologySettings(database_url=infra.database_url, nats_url=infra.nats_url, health_port=0)
    async with topology_service(settings, database_url=infra.database_url, nats_url=infra.nats_url) as svc:
        yield svc


@pytest.fixture(scope="session")
async def api_server(
    ipam_running: Running, topology_running: TopologyRunning, infra: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningApi]:
    path = Path(tmp_path_factory.mktemp("api")) / "tokens.yaml"
    tokens = {t: {"project_id": p, "roles": r, "user_id": f"user-{who}"} for who, (t, p, r) in TOKENS.items()}
    path.write_text(yaml.safe_dump({"tokens": tokens}))
    settings = ApiSettings(nats_url=infra.nats_url, api_port=0, health_port=0, tokens_file=path, request_timeout=10)
    async with api_service(settings, nats_url=infra.nats_url) as running:
        yield running


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    def error(self) -> dict[str, str]:
        err: dict[str, str] = self.body["NeutronError"]
        return err


class Http:
    """A tiny Neutron client: ``await http.post("/v2.0/networks", "alice", {...})``."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session

    async def request(
        self,
        method: str,
        path: str,
        who: str | None = "admin",
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        hdrs = dict(headers or {})
        if who is not None:
            hdrs["X-Auth-Token"] = TOKENS[who][0]
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.base + path, data=data, headers=hdrs) as resp:
            text = await resp.read()
            parsed = json.loads(text) if text else None
            return Reply(resp.status, parsed, resp.headers)

    async def get(self, path: str, who: str | None = "admin", **kw: Any) -> Reply:
        return await self.request("GET", path, who, **kw)

    async def post(self, path: str, who: str | None = "admin", body: Any = None, **kw: Any) -> Reply:
        return await self.request("POST", path, who, body, **kw)

    async def put(self, path: str, who: str | None = "admin", body: Any = None, **kw: Any) -> Reply:
        return await self.request("PUT", path, who, body, **kw)

    async def delete(self, path: str, who: str | None = "admin", **kw: Any) -> Reply:
        return await self.request("DELETE", path, who, **kw)


@pytest.fixture(scope="session")
async def http(api_server: RunningApi) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(api_server.url, session)


@dataclass
class CliResult:
    code: int
    out: Any
    err: str


class Cli:
    """The real ``openstack`` command, as a user would run it (admin_token auth, -f json)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    async def __call__(self, who: str, *args: str, fmt: bool = True) -> CliResult:
        argv = [
            OPENSTACK,
            "--os-auth-type",
            "admin_token",
            "--os-token",
            TOKENS[who][0],
            "--os-endpoint",
            self.endpoint,
        ]
        argv += list(args) + (["-f", "json"] if fmt else [])
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        text = out.decode()
        parsed: Any = text
        with contextlib.suppress(ValueError):
            parsed = json.loads(text) if text.strip() else None
        return CliResult(proc.returncode or 0, parsed, err.decode())

    async def ok(self, who: str, *args: str, fmt: bool = True) -> Any:
        res = await self(who, *args, fmt=fmt)
        assert res.code == 0, f"openstack {' '.join(args)} failed: {res.err}"
        return res.out


@pytest.fixture(scope="session")
def cli(api_server: RunningApi) -> Cli:
    return Cli(api_server.url)
