"""The whole stack for kernel tests: IPAM + topology in-process, the L3 agent as a real process.

Isolation. Each test module gets a stack of its own: a nats-server of its own (so no other
module's fake agents heartbeat into its bucket, and no one else's RouterSpecs share its stream)
and a database of its own on the session's Postgres. The kernel side is an ``AgentSandbox``
(``scopenet.commands.bench.sandbox``): a private network *and* mount namespace held by this
process, a tmpfs on /run/netns, the agent's host namespace ``host`` inside. The agent —
``scopenet service l3-agent``, a real process — and every ``scopenet`` command a test runs are
started entirely inside it (``nsenter --net --mount``), so they cannot touch the machine's network;
they reach NATS through a relay the sandbox opens on its own loopback. A kill -9 of the agent
leaves its kernel state in the sandbox (this process holds it), which is what a restart must adopt;
the sandbox vanishes with the test module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from scopenet.bus.client import BusClient
from scopenet.bus.natsauth import user_url
from scopenet.commands.bench.sandbox import AgentSandbox
from scopenet.contracts.permissions import agent_user
from scopenet.datapath import nft
from scopenet.infra import processes
from scopenet.infra.embedded import add_nats_users, nats_server
from scopenet.infra.select import Endpoints
from scopenet.netlink import libnft
from scopenet.services.ipam.app import ipam_service
from scopenet.services.ipam.settings import IpamSettings
from scopenet.services.topology.app import topology_service
from scopenet.services.topology.settings import TopologySettings
from scopenet.store.roles import drop_roles_sql
from tests.conftest import with_database
from tests.integration.conftest import Ipam
from tests.integration.topology.conftest import Build, Topo

HEALTH_PORT = 9697
"""The agent's probe port, on the sandbox's own loopback (nothing else listens there)."""
TOPOLOGY = TopologySettings(topology_reconcile_interval=1.0, topology_stale_after=3.0, topology_agent_ttl=20.0)
"""agent_ttl well above an agent restart, so a restarted agent keeps its routers."""


@dataclass
class Stack:
    nats_url: str
    nc: Any
    topo: Topo
    ipam: Ipam
    mk: Build
    tmp: Path


class Box(AgentSandbox):
    nats_url: str = ""
    """NATS as seen from inside the sandbox (the relay to the module's nats-server)."""


async def _database(admin_url: str) -> str:
    name = f"scopenet_stack_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(drop_roles_sql(name))  # the services' roles for it (store/roles.py)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def stack(
    infra: Endpoints, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    """The module's stack; a module may set its own ``TOPOLOGY`` settings (e.g. a shorter agent TTL)."""
    topology = getattr(request.module, "TOPOLOGY", TOPOLOGY)
    tmp = tmp_path_factory.mktemp("stack")
    name = await _database(infra.database_url)
    db = with_database(infra.database_url, name)
    try:
        with nats_server(tmp / "nats") as nats_url:
            urls = {"database_url": db, "nats_url": nats_url, "health_port": 0}
            async with (
                ipam_service(IpamSettings(**urls), database_url=db, nats_url=nats_url),
                topology_service(topology.model_copy(update=urls), database_url=db, nats_url=nats_url),
            ):
                nc = await nats.connect(nats_url)
                try:
                    bus = BusClient(nc, timeout=10)
                    topo, ipam = Topo(bus), Ipam(bus)
                    yield Stack(nats_url, nc, topo, ipam, Build(topo, ipam), tmp)
                finally:
                    await nc.close()
    finally:
        await _drop(infra.database_url, name)


@pytest.fixture(scope="module")
async def box(stack: Stack) -> AsyncIterator[Box]:
    async with Box() as sandbox:
        sandbox.nats_url = await sandbox.expose(stack.nats_url)
        yield sandbox


class AgentProcess:
    """``scopenet service l3-agent`` inside the sandbox (see the module docstring)."""

    def __init__(self, box: Box, stack: Stack, *, agent_id: str, **env: str) -> None:
        self.box = box
        self.stack = stack
        self.agent_id = agent_id
        self.env = env
        self.port = HEALTH_PORT
        self.log = stack.tmp / f"{agent_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def nats_url(self) -> str:
        """The agent logs in as its own NATS user (``l3-agent-<id>``), as in production: it may read
        only its own RouterSpecs and send only its heartbeat and status reports."""
        user = agent_user(self.agent_id)
        passwords = add_nats_users(self.stack.tmp / "nats", [user])  # the module's server reloads
        return user_url(self.box.nats_url, user, passwords[user])

    def start(self) -> AgentProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {
            "SCOPENET_NATS_URL": self.nats_url(),
            "SCOPENET_STATE_DIR": str(self.stack.tmp / "agent-state"),
            "SCOPENET_AGENT_ID": self.agent_id,
            "SCOPENET_AGENT_HOST_NETNS": self.box.host,
            "SCOPENET_AGENT_HEARTBEAT_INTERVAL": "0.5",
            "SCOPENET_HEALTH_PORT": str(self.port),
            "SCOPENET_LOG_LEVEL": "info",
            "SCOPENET_LOG_FORMAT": "json",
            **self.env,
        }
        self.proc = processes.start_service(
            "l3-agent", env=env, log=self.log, drop=["SCOPENET_DATABASE_URL"], spawn=self.box.spawn
        )
        self.started = time.monotonic()
        return self

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        status, body = await self.box.http_get(self.port, "/readyz")
        return status, body

    async def ready(self, timeout: float = 30) -> float:
        """Wait for /readyz 200 (first sync done); seconds since the process started."""
        assert self.proc is not None

        async def answers() -> bool:
            return (await self.readyz())[0] == 200

        await processes.wait_ready(self.proc, answers, name="agent", timeout=timeout, every=0.05, log=self.log)
        return time.monotonic() - self.started

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.proc is not None
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait()

    def tail(self, lines: int = 30) -> str:
        return processes.tail(self.log, lines)


@contextlib.asynccontextmanager
async def running_agent(box: Box, stack: Stack, agent_id: str, **env: str) -> AsyncIterator[AgentProcess]:
    agent = AgentProcess(box, stack, agent_id=agent_id, **env).start()
    try:
        await agent.ready()
        yield agent
    finally:
        await agent.stop()


async def cli(box: Box, state_dir: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``scopenet <args>`` as a user in a second terminal would run it (inside the sandbox), with
    ``SCOPENET_STATE_DIR`` the stack's. Async: the services it talks to run on this test's loop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPENET_")}
    env |= {"SCOPENET_STATE_DIR": str(state_dir), "SCOPENET_LOG_LEVEL": "warning"}
    argv = box.argv([sys.executable, "-m", "scopenet.commands.cli", *args])
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())


_references: dict[str, str] = {}
"""nft text → its reference fingerprint (a scratch namespace per ruleset, not per check)."""


async def reference_fingerprint(box: AgentSandbox, text: str) -> str:
    """The listing fingerprint of ``text`` written once into a fresh namespace (then removed): what
    an agent's table must list as, with no rule missing or doubled."""
    if text in _references:
        return _references[text]
    name = f"ref-{uuid.uuid4().hex[:8]}"

    def write() -> Any:
        def run(ctx: libnft.Nft) -> Any:
            ctx.run(text)
            return libnft.table_listing(ctx)

        return libnft.session(run)

    listing = await box.ns.run(lambda: box.ns.create(name, write))
    await box.ns.run(lambda: box.ns.delete(name))
    parsed = nft.parse_listing(listing) if listing is not None else None
    assert parsed is not None, "the reference table could not be listed"
    _references[text] = parsed.fingerprint
    return parsed.fingerprint
