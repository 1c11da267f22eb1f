"""L3 agents and router scheduling.

Agents put an ``AgentHeartbeat`` under their id in the ``scopenet_agents`` KV bucket every few
seconds; entries expire (bucket TTL). Expiry produces no event a watcher sees on every server
version, so liveness is "heard from within the TTL", checked once a second. The one truth for both
is the bucket: the TTL is the bucket's (whoever created it; ``agent_ttl`` only when creating it),
and "heard" is the server's timestamp of the entry — every topology replica, and the agents' own
fences, judge by the same two numbers (so topology's clock and the NATS servers' are assumed
NTP-synchronised: a skew lengthens or shortens the TTL by as much). Time during which this replica
itself was cut off from NATS does not count against agents (it could not have heard them).

Scheduling is level-triggered: a pass assigns every active router that has no live agent to the
least-loaded live agent (or leaves it PENDING when there is none), publishes ``present=false`` on
the old agent's subject and the full spec on the new one's. Passes run when an agent appears or
dies and once a second while routers wait; replicas take turns through an advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError
from pydantic import ValidationError

from scopenet.contracts import routerspec as rs
from scopenet.contracts import topology as t
from scopenet.contracts.base import ListCommand
from scopenet.contracts.errors import NotAuthorized
from scopenet.services.topology.batching import Item, Step
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit_many
from scopenet.services.topology.l3store import load_routers
from scopenet.store.db import db_errors

log = structlog.get_logger("topology.agents")


async def agents_bucket(js: JetStreamContext, ttl: float):  # type: ignore[no-untyped-def]
    """The heartbeat bucket, created if missing (agents may create it too: same config)."""
    try:
        return await js.key_value(rs.AGENTS_BUCKET)
    except BucketNotFoundError:
        try:
            return await js.create_key_value(KeyValueConfig(bucket=rs.AGENTS_BUCKET, ttl=ttl, history=1))
        except Exception:
            return await js.key_value(rs.AGENTS_BUCKET)


class Agents:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db
        self.ttl = deps.settings.agent_ttl
        self._seen: dict[str, tuple[rs.AgentHeartbeat, float, datetime]] = {}
        self._kick = asyncio.Event()
        self._reports = Step(self._decide_reports, name="router-status", max_batch=256)

    # ------------------------------------------------------------ liveness

    def alive(self) -> list[str]:
        now = time.monotonic()
        return sorted(a for a, (_, seen, _) in self._seen.items() if now - seen <= self.ttl)

    def _next_expiry(self) -> float:
        """Seconds until the next live agent would turn dead (at most 1 s: routers may be waiting),
        so a death is acted on when it happens, not up to a tick later."""
        now = time.monotonic()
        due = [seen + self.ttl - now for (_, seen, _) in self._seen.values() if now - seen <= self.ttl]
        return min([1.0, *(d + 0.01 for d in due)])

    def heard(self, beat: rs.AgentHeartbeat, *, age: float = 0.0) -> None:
        """``beat`` was put ``age`` seconds ago (by the server's clock)."""
        age = max(age, 0.0)
        known = self._seen.get(beat.agent_id)
        seen = time.monotonic() - age
        if known is not None and known[1] >= seen:
            return  # a replay of something already heard (a restarted watcher)
        new = beat.agent_id not in self.alive()
        self._seen[beat.agent_id] = (beat, seen, datetime.now(UTC) - timedelta(seconds=age))
        if new and beat.agent_id in self.alive():
            log.info("agent_up", agent_id=beat.agent_id, host=beat.host)
            self._kick.set()

    def grace(self, seconds: float) -> None:
        """This replica could not hear anyone for ``seconds``: do not count them against agents."""
        now = time.monotonic()
        for agent, (beat, seen, when) in list(self._seen.items()):
            self._seen[agent] = (beat, min(seen + seconds, now), when)

    async def watch(self, js: JetStreamContext) -> None:
        kv = await agents_bucket(js, self.ttl)
        self.ttl = (await kv.status()).ttl or self.ttl
        log.info("agents_bucket", ttl=self.ttl)
        while True:
            try:
                watcher = await kv.watchall()
            except Exception as exc:  # NATS away: the liveness clock is paused meanwhile (``grace``)
                log.warning("agents_watch_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            try:
                await self._follow(watcher)
            finally:
                with contextlib.suppress(Exception):
                    await watcher.stop()

    async def _follow(self, watcher: Any) -> None:
        """Hear heartbeats until the watcher has been silent for half a TTL — agents beat every few
        seconds, so silence that long means the watcher itself was lost (e.g. NATS restarted
        without it): return, and a new one replays each agent's last entry with its timestamp."""
        while True:
            try:
                entry = await watcher.updates(timeout=self.ttl / 2)
            except NatsTimeout:
                return
            if entry is None or entry.value is None or entry.operation is not None:
                continue
            try:
                beat = rs.AgentHeartbeat.model_validate_json(entry.value)
            except ValidationError as exc:
                log.warning("agent_heartbeat_invalid", key=entry.key, error=str(exc.errors()[0]["msg"]))
                continue
            self.heard(beat, age=_age(entry.created))

    async def run_scheduler(self, connected: Callable[[], bool] = lambda: True) -> None:
        alive_before: list[str] = []
        cut_off_since: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=self._next_expiry())
            self._kick.clear()
            if not connected():
                cut_off_since = cut_off_since or time.monotonic()
                continue
            if cut_off_since is not None:
                self.grace(time.monotonic() - cut_off_since)
                log.info("scheduler_resumed", cut_off_seconds=round(time.monotonic() - cut_off_since, 1))
                cut_off_since = None
            alive = self.alive()
            for gone in set(alive_before) - set(alive):
                log.warning("agent_down", agent_id=gone)
            alive_before = alive
            try:
                await self.schedule()
            except Exception as exc:
                log.warning("schedule_failed", error=str(exc) or type(exc).__name__)

    # ------------------------------------------------------------ scheduling

    async def pick(self, conn: asyncpg.Connection) -> str | None:
        """The least-loaded live agent (ties: by id), or None when no agent is alive."""
        alive = self.alive()
        if not alive:
            return None
        return _least_loaded(await _loads(conn, alive))

    async def schedule(self) -> int:
        """Move every router without a live agent; returns how many moved.

        A fixed number of statements whatever the count (a dead agent leaves hundreds of routers):
        agents are chosen in memory from one count per agent, router by router least-loaded first
        (the choice ``pick`` would make for each in turn); the removals, the rows and the new specs
        are written in one statement each."""
        alive = self.alive()
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('topology-scheduler'))"):
                return 0
            # Locked in id order, as every other writer of many routers locks them (no deadlocks);
            # placed oldest first.
            rows = await conn.fetch(
                """SELECT id, agent_id, spec_revision, created_at FROM routers
                   WHERE state = 'active' AND (agent_id IS NULL OR NOT agent_id = ANY($1::text[]))
                   ORDER BY id FOR UPDATE""",
                alive,
            )
            rows.sort(key=lambda r: (r["created_at"], r["id"]))
            if not rows or (not alive and all(r["agent_id"] is None for r in rows)):
                return 0
            loads = await _loads(conn, alive) if alive else {}
            chosen: list[str | None] = []
            for _ in rows:
                agent = _least_loaded(loads)
                if agent is not None:
                    loads[agent] += 1
                chosen.append(agent)
            await self.d.specs.publish_removals(
                conn, [(r["id"], r["agent_id"], r["spec_revision"] + 1) for r in rows if r["agent_id"] is not None]
            )
            await conn.execute(
                """UPDATE routers r SET agent_id = m.agent, spec_revision = r.spec_revision + 1, status = 'PENDING',
                          status_reason = CASE WHEN m.agent IS NULL THEN 'no live L3 agent' END
                   FROM unnest($1::uuid[], $2::text[]) AS m(id, agent) WHERE r.id = m.id""",
                [r["id"] for r in rows],
                chosen,
            )
            await self.d.specs.publish_for_routers(conn, [r["id"] for r in rows])
            log.info("routers_scheduled", count=len(rows), agents=len(alive))
            return len(rows)

    # ------------------------------------------------------------ commands

    async def list(self, cmd: ListCommand) -> t.AgentList:
        if not cmd.context.is_admin:
            raise NotAuthorized("rule:get_agent is disallowed by policy")
        alive = set(self.alive())
        async with db_errors(), self.db.acquire() as conn:
            counts = {
                r["agent_id"]: r["n"]
                for r in await conn.fetch(
                    "SELECT agent_id, count(*) AS n FROM routers WHERE agent_id IS NOT NULL GROUP BY agent_id"
                )
            }
        return t.AgentList(
            agents=[
                t.Agent(
                    agent_id=a,
                    host=beat.host,
                    alive=a in alive,
                    routers=counts.get(a, 0),
                    started_at=beat.started_at,
                    last_seen=when,
                )
                for a, (beat, _, when) in sorted(self._seen.items())
            ]
        )

    async def report(self, cmd: rs.RouterStatusReport) -> t.RouterStatusAck:
        """An agent's verdict on a spec: only the router's current agent is heard, newest revision wins.
        Agents act as a service: the context needs the ``admin`` or ``service`` role. ``cmd.agent_id``
        is the sender's: it came on the agent's own subject, which the adapter checked it names
        (``Endpoint.check_sender``) and NATS lets only that agent's user publish to."""
        if not (cmd.context.is_admin or "service" in cmd.context.roles):
            raise NotAuthorized("rule:report_router_status is disallowed by policy")
        ack: t.RouterStatusAck = await self._reports.submit(cmd)
        return ack

    async def _decide_reports(self, items: Sequence[Item[rs.RouterStatusReport]]) -> None:
        """Every report waiting, in one transaction (group commit, ``batching``): an agent taking
        over a dead one's routers reports hundreds at once. Decided in arrival order, each against
        what the ones before it left; one statement writes the rows, one the events (a router whose
        status moved twice in the batch gets one event, from where it was to where it ended)."""
        ids = sorted({it.request.router_id for it in items})
        acks: list[tuple[Item[rs.RouterStatusReport], bool]] = []
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            rows = {
                r["id"]: r
                for r in await conn.fetch(
                    """SELECT id, agent_id, status, status_reason, status_revision FROM routers
                       WHERE id = ANY($1::uuid[]) AND state = 'active' ORDER BY id FOR UPDATE""",
                    ids,
                )
            }
            was = {rid: (r["status"], r["status_reason"], r["status_revision"]) for rid, r in rows.items()}
            now = dict(was)
            for it in items:
                cmd = it.request
                row = rows.get(cmd.router_id)
                if row is None or row["agent_id"] != cmd.agent_id or cmd.revision < now[cmd.router_id][2]:
                    acks.append((it, False))
                    continue
                status = "DOWN" if cmd.status == "DOWN" else cmd.status
                now[cmd.router_id] = (status, cmd.reason if cmd.status == "ERROR" else None, cmd.revision)
                acks.append((it, True))
            touched = [rid for rid in now if now[rid] != was[rid]]
            if touched:
                await conn.execute(
                    """UPDATE routers r SET status = u.status, status_reason = u.reason, status_revision = u.revision
                       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[]) AS u(id, status, reason, revision)
                       WHERE r.id = u.id""",
                    touched,
                    [now[rid][0] for rid in touched],
                    [now[rid][1] for rid in touched],
                    [now[rid][2] for rid in touched],
                )
            moved = [rid for rid in touched if now[rid][:2] != was[rid][:2]]
            if moved:
                before = await load_routers(conn, project="", admin=True, where="r.id = ANY($3::uuid[])", args=(moved,))
                # Only the status moved: each view after is the one before, updated.
                changes = [
                    (v.model_copy(update={"status": now[v.id][0], "status_reason": now[v.id][1]}), v) for v in before
                ]
                await emit_many(conn, "router", "updated", changes)  # type: ignore[arg-type]
        for it, accepted in acks:
            it.resolve(t.RouterStatusAck(router_id=it.request.router_id, accepted=accepted))


async def _loads(conn: asyncpg.Connection, alive: list[str]) -> dict[str, int]:
    """Routers scheduled to each live agent (0 for those with none)."""
    rows = await conn.fetch(
        "SELECT agent_id, count(*) AS n FROM routers WHERE agent_id = ANY($1::text[]) GROUP BY agent_id", alive
    )
    return {a: 0 for a in alive} | {r["agent_id"]: r["n"] for r in rows}


def _least_loaded(loads: dict[str, int]) -> str | None:
    """The agent with the fewest routers (ties: by id); None when there is none."""
    return min(loads, key=lambda a: (loads[a], a)) if loads else None


def _age(created: Any) -> float:
    """Seconds since a KV entry was stored (the server's timestamp; 0 when it has none)."""
    if isinstance(created, datetime):
        return (datetime.now(UTC) - created.astimezone(UTC)).total_seconds()
    if isinstance(created, int | float) and created > 0:
        return time.time() - (created / 1e9 if created > 1e12 else created)
    return 0.0
