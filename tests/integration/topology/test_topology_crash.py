"""kill -9 a topology process at random moments while clients create and delete subnets and ports:
once the reconciler has run, IPAM and topology agree (every allocation has its owner and every
owner its allocation), every acknowledged create is still there and every acknowledged delete gone.

The in-process topology steps aside (stops taking commands) so that the process being killed
serves every command; its reconciler keeps running, as another replica's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from scopenet.bus.client import BusClient
from scopenet.bus.micro import serve
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.infra import processes
from scopenet.infra.select import Endpoints
from scopenet.services.topology.app import TopologyRunning
from scopenet.services.topology.handlers import routes
from scopenet.store.service import Running
from tests.helpers import eventually
from tests.integration.topology.conftest import Build, Topo, project

EXPECTED_REFUSALS = {"SubnetInUse", "PortNotFound", "SubnetNotFound", "IpAddressGenerationFailure"}


class Victim:
    """``scopenet service topology`` as a child process; its log (JSON lines) goes to a file."""

    def __init__(self, infra: Endpoints, log: Path) -> None:
        self.env = {
            "SCOPENET_DATABASE_URL": infra.database_url,
            "SCOPENET_NATS_URL": infra.nats_url,
            "SCOPENET_LOG_LEVEL": "info",
            "SCOPENET_TOPOLOGY_STALE_AFTER": "2",
            "SCOPENET_TOPOLOGY_RECONCILE_INTERVAL": "1",
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.closed = False

    def start(self) -> None:
        if self.closed:  # never outlive the test, whatever task still runs
            return
        self.proc = processes.start_service("topology", env=self.env, log=self.log)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        self.closed = True
        if self.proc is not None:
            processes.stop([self.proc], timeout=15)

    def repairs(self) -> Counter[str]:
        done: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == "reconciled":
                    done.update({k: v for k, v in entry.items() if isinstance(v, int)})
        return done


@contextlib.asynccontextmanager
async def in_process_paused(svc: Running) -> AsyncIterator[None]:
    assert svc.server is not None
    await svc.server.stop()
    try:
        yield
    finally:
        deps = svc.deps
        svc.server = await serve(
            svc.nc, name="topology", version="0.1.0", description="topology (tests)", routes=routes(deps), limit=64
        )
        await svc.nc.flush()  # its subscriptions are in place before the next test calls


async def disagreements(db: asyncpg.Connection, networks: list[str]) -> dict[str, Any]:
    """What IPAM and topology disagree about on these networks (empty: they agree)."""
    t_sub = {
        r["id"]: (str(r["cidr"]), r["state"])
        for r in await db.fetch(
            "SELECT id, cidr, state FROM topology.subnets WHERE network_id = ANY($1::uuid[])", networks
        )
    }
    i_sub = {
        r["id"]: str(r["cidr"])
        for r in await db.fetch("SELECT id, cidr FROM ipam.subnets WHERE network_id = ANY($1::uuid[])", networks)
    }
    t_ips = {
        (r["port_id"], r["subnet_id"], str(r["ip_address"]))
        for r in await db.fetch(
            """SELECT i.* FROM topology.port_ips i JOIN topology.ports p ON p.id = i.port_id
           WHERE p.network_id = ANY($1::uuid[]) AND i.ipam_held""",
            networks,
        )
    }
    i_ips = {
        (r["port_id"], r["subnet_id"], str(r["ip_address"]))
        for r in await db.fetch(
            "SELECT a.* FROM ipam.ip_allocations a JOIN ipam.subnets s ON s.id = a.subnet_id "
            "WHERE s.network_id = ANY($1::uuid[])",
            networks,
        )
    }
    unsettled = await db.fetchval(
        "SELECT (SELECT count(*) FROM topology.subnets WHERE state <> 'active' AND network_id = ANY($1::uuid[])) "
        "+ (SELECT count(*) FROM topology.ports WHERE state <> 'active' AND network_id = ANY($1::uuid[]))",
        networks,
    )
    out = {
        "unsettled_rows": unsettled,
        "subnet_without_allocation": [s for s in t_sub if s not in i_sub],
        "allocation_without_subnet": [s for s in i_sub if s not in t_sub],
        "cidr_mismatch": [s for s in t_sub if s in i_sub and t_sub[s][0] != i_sub[s]],
        "address_without_allocation": sorted(t_ips - i_ips),
        "allocation_without_address": sorted(i_ips - t_ips),
    }
    return {k: v for k, v in out.items() if v}


async def test_kill9_topology_under_load_converges(
    topo: Topo, mk: Build, infra: Endpoints, nats_client: Any, topology_running: TopologyRunning, tmp_path: Path
) -> None:
    alice = project()
    pool = await mk.pool(["10.200.0.0/16"], default_prefixlen=28)
    nets = [await mk.network(alice) for _ in range(6)]
    net_ids = [str(n.id) for n in nets]
    fast = Topo(BusClient(nats_client, timeout=1.0))  # a dead process must not stall clients for long
    victim = Victim(infra, tmp_path / "topology.log")
    ops: Counter[str] = Counter()
    alive_ports: set[str] = set()
    gone_ports: set[str] = set()

    async def call(verb: str, **body: Any) -> Any:
        try:
            result = await fast(verb, alice, **body)
            ops[f"{verb} ok"] += 1
            return result
        except TransientError:
            ops[f"{verb} unavailable"] += 1
            await asyncio.sleep(0.05)  # nobody answers while the victim restarts
        except DomainError as exc:
            assert exc.code < 500 and exc.type in EXPECTED_REFUSALS, f"{verb}: {exc.code} {exc.type}: {exc.message}"
            ops[f"{verb} refused"] += 1
        return None

    load = asyncio.Event()  # set: the clients stop

    async def client(net: Any) -> None:
        subnet: str | None = None
        mine: list[str] = []
        while not load.is_set():
            if subnet is None:
                reply = await call(
                    "subnet.create", subnet={"network_id": str(net.id), "ip_version": 4, "subnetpool_id": str(pool.id)}
                )
                subnet = str(reply.subnet.id) if reply else None
                continue
            roll = random.random()
            if roll < 0.55:
                reply = await call("port.create", port={"network_id": str(net.id)})
                if reply:
                    mine.append(str(reply.port.id))
                    alive_ports.add(str(reply.port.id))
            elif roll < 0.9 and mine:
                port = mine.pop(random.randrange(len(mine)))
                alive_ports.discard(port)  # without an answer its fate is unknown; with one, it is gone
                if await call("port.delete", id=port):
                    gone_ports.add(port)
            elif not mine:
                if await call("subnet.delete", id=subnet):
                    subnet = None

    async def chaos() -> None:
        """At least 3 kills, at random moments while the victim is serving, over at least 6 s."""
        started = time.monotonic()
        while victim.kills < 3 or time.monotonic() - started < 6:
            await victim_answers()
            await asyncio.sleep(random.uniform(0.2, 0.8))  # a random moment of a busy process
            victim.kill9()
            victim.start()
        await asyncio.sleep(0.5)
        load.set()

    async def victim_answers() -> None:
        await eventually(
            lambda: fast("network.list", alice, filters={"id": net_ids[0]}),
            timeout=60,
            passes=lambda _: True,
            tolerate=TransientError,
            what="the restarted topology answers",
        )

    victim.start()
    try:
        async with in_process_paused(topology_running):
            await victim_answers()
            async with asyncio.TaskGroup() as tasks:  # one failing cancels the others
                tasks.create_task(chaos())
                for n in nets:
                    tasks.create_task(client(n))
            await victim_answers()
            settled_at = time.monotonic()
            db = await asyncpg.connect(infra.database_url)
            try:
                first = await disagreements(db, net_ids)
                diff = first
                async with asyncio.timeout(30):
                    while diff:
                        await asyncio.sleep(0.25)
                        diff = await disagreements(db, net_ids)
                converged = time.monotonic() - settled_at
                ports_now = {
                    str(r["id"])
                    for r in await db.fetch("SELECT id FROM topology.ports WHERE network_id = ANY($1::uuid[])", net_ids)
                }
            finally:
                await db.close()
    finally:
        victim.stop()
    reconciler = topology_running.deps.reconciler
    repaired = victim.repairs() + reconciler.total
    summary = {k: len(v) if isinstance(v, list) else v for k, v in first.items()}
    print(f"\ncrash loop: {victim.kills} kill -9, operations {dict(sorted(ops.items()))}")
    print(
        f"after the load: disagreements {summary}, converged in {converged:.1f}s; "
        f"reconciler repairs (victim + in-process replica, whole session) {dict(repaired)}"
    )
    assert victim.kills >= 3
    assert ops["port.create ok"] > 10 and ops["subnet.create ok"] >= len(nets)
    assert alive_ports <= ports_now, "an acknowledged port vanished"
    assert not (gone_ports & ports_now), "an acknowledged delete came back"
