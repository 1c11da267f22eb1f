"""A production-shaped stack whose Postgres and NATS the test stops and restarts at will.

IPAM, topology and the HTTP API run as real processes (``scopenet service <name>``), each with its
probe port and a log file; the L3 agent runs as a real process inside an ``AgentSandbox`` (private
network and mount namespaces: its kernel state never touches the machine), reaching NATS through
the sandbox's relay. Postgres and NATS are ``infra.Postgres`` / ``infra.Nats``: private to the
test, restartable on the same address. The test talks to the stack as users do (HTTP with a
token) and audits it as an operator would (SQL on both schemas, the JetStream streams).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

from scopenet.commands.bench.sandbox import AgentSandbox
from scopenet.commands.stack import service_env
from scopenet.infra import processes
from scopenet.infra.select import Endpoints
from tests.faults.infra import Nats, Postgres, free_port

ADMIN_TOKEN = "tok-faults-admin-0123456789"
PROJECT = "f" * 32
AGENT_ID = "fault-agent"
AGENT_HEALTH_PORT = 9697
#: Timeouts of the stack (the same relations as the defaults, shorter so a CI run converges sooner):
#: topology → IPAM below the API's request timeout, a saga is "stale" well after both.
ENV = {
    "SCOPENET_REQUEST_TIMEOUT": "3",
    "SCOPENET_TOPOLOGY_IPAM_TIMEOUT": "2",
    "SCOPENET_TOPOLOGY_STALE_AFTER": "5",
    "SCOPENET_TOPOLOGY_RECONCILE_INTERVAL": "1",
    # The relays' safety-net poll, far above anything measured: events must flow on NOTIFY, also
    # after a Postgres restart (a relay that stopped listening would show as 30 s latencies).
    "SCOPENET_OUTBOX_POLL": "30",
}
REQUEST_TIMEOUT = float(ENV["SCOPENET_REQUEST_TIMEOUT"])


class Proc:
    """One ``scopenet service <name>`` process with its probe port and a log file."""

    def __init__(self, name: str, *, env: dict[str, str], log: Path, box: AgentSandbox | None = None) -> None:
        self.name = name
        self.env = env
        self.log = log
        self.box = box
        self.health_port = AGENT_HEALTH_PORT if box is not None else free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        env = {
            "SCOPENET_HEALTH_PORT": str(self.health_port),
            "SCOPENET_LOG_LEVEL": "info",
            "SCOPENET_LOG_FORMAT": "json",
            **ENV,
            **self.env,
        }
        spawn = self.box.spawn if self.box is not None else subprocess.Popen
        self.proc = processes.start_service(self.name, env=env, log=self.log, inherit_scopenet=False, spawn=spawn)
        return self

    async def probe(self, path: str = "/readyz") -> tuple[int, Any]:
        """(status, JSON body) of a probe; (0, error) when it does not answer."""
        try:
            if self.box is not None:
                return await self.box.http_get(self.health_port, path, timeout=3)
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s,
                s.get(f"http://127.0.0.1:{self.health_port}{path}") as r,
            ):
                return r.status, await r.json(content_type=None)
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError, IndexError) as exc:
            return 0, repr(exc)

    async def ready(self, timeout: float = 60) -> None:
        assert self.proc is not None

        async def answers() -> bool:
            return (await self.probe())[0] == 200

        await processes.wait_ready(self.proc, answers, name=self.name, timeout=timeout, log=self.log)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def stop(self) -> None:
        if self.proc is not None:
            await processes.stop_async([self.proc], timeout=20)

    def tail(self, lines: int = 40) -> str:
        return processes.tail(self.log, lines)

    def grep(self, word: str) -> list[str]:
        with contextlib.suppress(OSError):
            return [line for line in self.log.read_text(errors="replace").splitlines() if word in line]
        return []


class Cluster:
    def __init__(self) -> None:
        # Not under pytest's temp root (another run may reset it to 0700, and Postgres runs as its own user).
        self.tmp = Path(tempfile.mkdtemp(prefix="scopenet-faults-"))
        os.chmod(self.tmp, 0o755)
        self.pg = Postgres(self.tmp / "postgres")
        self.nats = Nats(self.tmp / "nats")
        self.box = AgentSandbox()
        self.api_port = free_port()
        self.procs: dict[str, Proc] = {}
        self.database_url = ""
        self.admin_url = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def start(self) -> Cluster:
        self.admin_url = await asyncio.to_thread(self.pg.start)
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute('CREATE DATABASE "scopenet"')
        finally:
            await conn.close()
        self.database_url = self.admin_url.replace("/postgres?", "/scopenet?")
        await asyncio.to_thread(self.nats.start)
        tokens = self.tmp / "tokens.yaml"
        tokens.write_text(yaml.safe_dump({"tokens": {ADMIN_TOKEN: {"project_id": PROJECT, "roles": ["admin"]}}}))
        # Each process logs in as itself (its NATS user, its Postgres role), as `scopenet up` does.
        ep = Endpoints(self.database_url, self.nats.url, "embedded", self.nats.data_dir)
        own = service_env(ep, ["ipam", "topology", "api", "l3-agent"], {"SCOPENET_AGENT_ID": AGENT_ID})
        self.procs["ipam"] = Proc("ipam", env=own["ipam"], log=self.tmp / "ipam.log").start()
        await self.procs["ipam"].ready()  # it creates the events stream topology binds to
        self.procs["topology"] = Proc("topology", env=own["topology"], log=self.tmp / "topology.log").start()
        api_env = {
            **own["api"],
            "SCOPENET_API_PORT": str(self.api_port),
            "SCOPENET_TOKENS_FILE": str(tokens),
            "SCOPENET_AUTH": "tokens",
        }
        self.procs["api"] = Proc("api", env=api_env, log=self.tmp / "api.log").start()
        await self.box.start()
        agent_env = {
            # NATS as seen from inside the sandbox (a relay), as the agent's own user
            "SCOPENET_NATS_URL": await self.box.expose(own["l3-agent"]["SCOPENET_NATS_URL"]),
            "SCOPENET_STATE_DIR": str(self.tmp / "agent-state"),
            "SCOPENET_AGENT_ID": AGENT_ID,
            "SCOPENET_AGENT_HOST_NETNS": self.box.host,
            "SCOPENET_AGENT_HEARTBEAT_INTERVAL": "1",
        }
        await self.procs["topology"].ready()  # the RouterSpec stream the agent consumes
        self.procs["agent"] = Proc("l3-agent", env=agent_env, log=self.tmp / "agent.log", box=self.box).start()
        await asyncio.gather(*(p.ready() for p in self.procs.values()))
        return self

    async def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            await proc.stop()
        await self.box.close()
        await asyncio.to_thread(self.nats.stop)
        await asyncio.to_thread(self.pg.close)
        if os.environ.get("SCOPENET_FAULTS_KEEP"):
            print(f"fault stack kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if not p.alive()]

    def tails(self) -> str:
        return "\n".join(f"--- {n} ({p.log})\n{p.tail()}" for n, p in self.procs.items())
