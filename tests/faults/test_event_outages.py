"""Topology's consumers of IPAM's events ride out long outages; what nobody acknowledged is parked.

The stack: IPAM and topology as real processes, each with its own NATS user and its own Postgres
(two private servers, so topology's database can go away while IPAM goes on publishing), and a
private nats-server. Topology is restarted between the tests with another
``SCOPENET_TOPOLOGY_EVENT_BACKOFF``, which also shows a changed schedule reaching the existing
durable consumers.

- A Postgres outage longer than the old retry window (8 deliveries, 1 s naks: ~7 s, then the dead
  letters) with a shortened schedule (23 s): every event is applied once the database is back,
  nothing is dead-lettered.
- A message no delivery acknowledged (a replica that takes it and dies or hangs, three times, with
  ``max_deliver`` 3) reaches the dead letters through the server's max-deliveries advisory, even
  though no topology process ran when the server sent it (it is kept in ``SCOPENET_ADVISORIES``);
  ``scopenet dlq list`` shows it and ``scopenet dlq replay`` gets it applied.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from scopenet.bus.client import BusClient
from scopenet.commands.stack import service_env
from scopenet.contracts.subjects import EVENTS_STREAM
from scopenet.contracts.topology import ADVISORIES_STREAM, DLQ_STREAM
from scopenet.infra.select import Endpoints
from tests.faults.cluster import ENV, Proc
from tests.faults.infra import Nats, Postgres
from tests.helpers import eventually
from tests.integration.conftest import ADMIN, Ipam

POOLS = "topology-subnetpools"
OUTAGE = 12.0
"""Seconds topology's Postgres is away: past the old window (~7 s), within the schedule below."""
SCHEDULE = "1,2,4,8,8"
"""23 s in all, 6 deliveries."""


@dataclass
class Stack:
    tmp: Path
    ipam_pg: Postgres
    topo_pg: Postgres
    nats: Nats
    ipam_proc: Proc
    topo_env: dict[str, str]
    topo_db: str
    nc: Any
    ipam: Ipam
    topology: Proc | None = None

    async def start_topology(self, schedule: str) -> Proc:
        await self.stop_topology()
        env = {**self.topo_env, "SCOPENET_TOPOLOGY_EVENT_BACKOFF": schedule}
        self.topology = Proc("topology", env=env, log=self.tmp / "topology.log").start()
        await self.topology.ready()
        return self.topology

    async def stop_topology(self) -> None:
        if self.topology is not None:
            await self.topology.stop()
            self.topology = None

    async def mirrored(self, pool_id: object) -> bool:
        conn = await asyncpg.connect(self.topo_db)
        try:
            return bool(
                await conn.fetchval("SELECT EXISTS (SELECT 1 FROM topology.subnetpools WHERE id = $1)", pool_id)
            )
        finally:
            await conn.close()

    async def scope_mirrored(self, scope_id: object) -> bool:
        conn = await asyncpg.connect(self.topo_db)
        try:
            sql = "SELECT EXISTS (SELECT 1 FROM topology.address_scopes WHERE id = $1)"
            return bool(await conn.fetchval(sql, scope_id))
        finally:
            await conn.close()

    async def messages(self, stream: str) -> int:
        return int((await self.nc.jetstream().stream_info(stream)).state.messages)

    def tails(self) -> str:
        procs = [self.ipam_proc, *([self.topology] if self.topology else [])]
        return "\n".join(f"--- {p.name}\n{p.tail(60)}" for p in procs)


async def _database(pg: Postgres) -> str:
    admin = await asyncio.to_thread(pg.start)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute('CREATE DATABASE "scopenet"')
    finally:
        await conn.close()
    return admin.replace("/postgres?", "/scopenet?")


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    tmp = Path(tempfile.mkdtemp(prefix="scopenet-event-outages-"))
    os.chmod(tmp, 0o755)  # the embedded Postgres runs as its own user
    ipam_pg, topo_pg, nats_server = Postgres(tmp / "pg-ipam"), Postgres(tmp / "pg-topology"), Nats(tmp / "nats")
    procs: list[Proc] = []
    nc: Any = None
    try:
        ipam_db, topo_db = await _database(ipam_pg), await _database(topo_pg)
        await asyncio.to_thread(nats_server.start)
        own_ipam = service_env(Endpoints(ipam_db, nats_server.url, "embedded", nats_server.data_dir), ["ipam"], {})
        own_topo = service_env(Endpoints(topo_db, nats_server.url, "embedded", nats_server.data_dir), ["topology"], {})
        ipam_proc = Proc("ipam", env={**ENV, **own_ipam["ipam"]}, log=tmp / "ipam.log").start()
        procs.append(ipam_proc)
        await ipam_proc.ready()
        nc = await nats.connect(nats_server.url)  # admin
        stack = Stack(
            tmp=tmp,
            ipam_pg=ipam_pg,
            topo_pg=topo_pg,
            nats=nats_server,
            ipam_proc=ipam_proc,
            topo_env={**ENV, **own_topo["topology"]},
            topo_db=topo_db,
            nc=nc,
            ipam=Ipam(BusClient(nc, timeout=10)),
        )
        try:
            yield stack
        finally:
            print(stack.tails())
            await stack.stop_topology()
    finally:
        if nc is not None:
            await nc.close()
        for p in procs:
            await p.stop()
        await asyncio.to_thread(nats_server.stop)
        for pg in (ipam_pg, topo_pg):
            await asyncio.to_thread(pg.close)
        shutil.rmtree(tmp, ignore_errors=True)


async def _pool(stack: Stack, name: str, prefix: str, scope: Any = None) -> Any:
    body: dict[str, Any] = {"name": name, "prefixes": [prefix], "shared": True}
    if scope is not None:
        body["address_scope_id"] = str(scope.id)
    return (await stack.ipam("subnetpool.create", ADMIN, subnetpool=body)).subnetpool


async def _consumer(stack: Stack, durable: str) -> Any:
    return await stack.nc.jetstream().consumer_info(EVENTS_STREAM, durable)


async def test_a_postgres_outage_longer_than_the_old_retry_window_loses_nothing(stack: Stack) -> None:
    await stack.start_topology(SCHEDULE)
    info = await _consumer(stack, POOLS)
    assert (info.config.backoff, info.config.max_deliver) == ([1.0, 2.0, 4.0, 8.0, 8.0], 6)
    letters, advisories = await stack.messages(DLQ_STREAM), await stack.messages(ADVISORIES_STREAM)
    scope = (
        await stack.ipam("address_scope.create", ADMIN, address_scope={"name": "s", "ip_version": 4})
    ).address_scope
    doomed = await _pool(stack, "doomed", "10.90.0.0/16", scope)
    await eventually(lambda: stack.mirrored(doomed.id), what="the first pool mirrored")
    assert await stack.scope_mirrored(scope.id)

    await asyncio.to_thread(stack.topo_pg.stop, "fast")
    outage = time.monotonic()
    made = [await _pool(stack, f"p{i}", f"10.{91 + i}.0.0/16", scope) for i in range(4)]
    await stack.ipam("subnetpool.delete", ADMIN, id=str(doomed.id))
    await asyncio.sleep(OUTAGE - (time.monotonic() - outage))
    during = await _consumer(stack, POOLS)
    await asyncio.to_thread(stack.topo_pg.start)
    back = time.monotonic()

    async def applied() -> bool:
        return all([*[await stack.mirrored(p.id) for p in made], not await stack.mirrored(doomed.id)])

    await eventually(applied, timeout=90, what="every event of the outage applied")
    caught_up = time.monotonic() - back
    after = await _consumer(stack, POOLS)
    assert (after.num_pending, after.num_ack_pending) == (0, 0)
    assert await stack.messages(DLQ_STREAM) == letters, "nothing dead-lettered"
    assert await stack.messages(ADVISORIES_STREAM) == advisories, "nothing ran out of deliveries"
    assert stack.topology is not None
    retries = [json.loads(line) for line in stack.topology.grep('"event_retry_scheduled"')]
    assert retries, "the consumer did meet the outage (its handler failed and waited on the schedule)"
    print(
        f"outage {OUTAGE:.0f} s: {len(retries)} failed deliveries, highest delivery "
        f"{max(r['delivered'] for r in retries)}, pending during the outage {during.num_ack_pending}, "
        f"caught up {caught_up:.1f} s after Postgres returned"
    )


async def _scopenet(stack: Stack, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "SCOPENET_NATS_URL": stack.nats.url, "SCOPENET_STATE_DIR": str(stack.tmp / "cli")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scopenet.commands.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _listed(stack: Stack) -> list[dict[str, Any]]:
    code, out, err = await _scopenet(stack, "dlq", "list", "--json", "--consumer", POOLS)
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


async def test_a_message_nobody_acknowledged_is_dead_lettered_and_replayed(stack: Stack) -> None:
    await stack.start_topology("1,1")  # 3 deliveries; the consumer made with another schedule is updated
    info = await _consumer(stack, POOLS)
    assert (info.config.backoff, info.config.max_deliver) == ([1.0, 1.0], 3)
    pool = await _pool(stack, "orphan", "10.120.0.0/16")
    await eventually(lambda: stack.mirrored(pool.id), what="the pool mirrored")
    advisories = await stack.messages(ADVISORIES_STREAM)

    # Topology is down; a replica takes the delete three times and never acknowledges it (it hangs,
    # or dies mid-way): the server gives the message up while no topology process runs.
    await stack.stop_topology()
    await stack.ipam("subnetpool.delete", ADMIN, id=str(pool.id))
    js = stack.nc.jetstream()
    hung = await js.pull_subscribe_bind(durable=POOLS, stream=EVENTS_STREAM)
    deliveries = []
    for _ in range(3):
        (msg,) = await hung.fetch(1, timeout=10)
        deliveries.append((msg.subject, msg.metadata.sequence.stream, msg.metadata.num_delivered))
    seq = deliveries[0][1]
    assert deliveries == [("scopenet.v1.evt.subnetpool.deleted", seq, n) for n in (1, 2, 3)]
    # The server gives it up when it would deliver it a fourth time: at the next pull after the last
    # ack wait, which gets nothing.
    await asyncio.sleep(1.5)
    with pytest.raises(nats.errors.TimeoutError):
        await hung.fetch(1, timeout=3)
    await hung.unsubscribe()
    await eventually(
        lambda: stack.messages(ADVISORIES_STREAM), passes=lambda n: n == advisories + 1, what="the advisory kept"
    )

    # Topology comes back: its watcher parks the message from the advisory.
    await stack.start_topology("1,1")

    async def parked() -> list[dict[str, Any]]:
        return [r for r in await _listed(stack) if r["stream_sequence"] == seq]

    (row,) = await eventually(parked, timeout=30, what="the dead letter")
    assert row["subject"] == "scopenet.v1.evt.subnetpool.deleted"
    assert (row["consumer"], row["stream"], row["deliveries"]) == (POOLS, EVENTS_STREAM, 3)
    assert row["reason"].startswith("not acknowledged after 3 deliveries")
    assert str(pool.id) in row["summary"] and "subnetpool" in row["summary"]
    assert await stack.mirrored(pool.id), "the delete was never applied (the restart's fill does not remove pools)"

    code, out, _ = await _scopenet(stack, "dlq", "list")
    assert code == 0 and str(row["id"]) in out and "subnetpool.deleted" in out

    code, _, err = await _scopenet(stack, "dlq", "replay", "999999")
    assert code == 1 and "no dead letter 999999" in err, err

    code, out, err = await _scopenet(stack, "dlq", "replay", str(row["id"]))
    assert code == 0, err
    assert f"replayed {row['id']}" in out
    await eventually(lambda: stack.mirrored(pool.id), passes=lambda m: not m, timeout=30, what="the replay applied")
    assert not [r for r in await _listed(stack) if r["stream_sequence"] == seq], "the letter left the DLQ"

    code, _, err = await _scopenet(stack, "dlq", "replay", str(row["id"]))
    assert code == 1 and f"no dead letter {row['id']}" in err
