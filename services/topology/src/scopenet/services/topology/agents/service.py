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

import asyncpg
import structlog
from nats.js import JetStreamContext

from scopenet.contracts import routerspec as rs
from scopenet.contracts import topology as t
from scopenet.contracts.base import ListCommand
from scopenet.contracts.errors import NotAuthorized
from scopenet.runtime.supervise import retry
from scopenet.services.topology.agents import heartbeats, rules, store
from scopenet.services.topology.agents.liveness import Liveness
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit_many
from scopenet.services.topology.routers.store import routers_by_id
from scopenet.store.batching import Item, Step
from scopenet.store.db import db_errors

log = structlog.get_logger("topology.agents")


class Agents:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db
        self.liveness = Liveness(deps.settings.agent_ttl)
        self._kick = asyncio.Event()
        self._reports = Step(self._decide_reports, name="router-status", max_batch=256)

    # ------------------------------------------------------------ liveness

    @property
    def ttl(self) -> float:
        return self.liveness.ttl

    def alive(self) -> list[str]:
        return self.liveness.alive()

    def heard(self, beat: rs.AgentHeartbeat, *, age: float = 0.0) -> None:
        """``beat`` was put ``age`` seconds ago (by the server's clock)."""
        if self.liveness.heard(beat, age=age):
            log.info("agent_up", agent_id=beat.agent_id, host=beat.host)
            self._kick.set()

    def grace(self, seconds: float) -> None:
        """This replica could not hear anyone for ``seconds``: do not count them against agents."""
        self.liveness.grace(seconds)

    async def watch(self, js: JetStreamContext) -> None:
        kv = await heartbeats.agents_bucket(js, self.ttl)
        self.liveness.ttl = (await kv.status()).ttl or self.ttl
        log.info("agents_bucket", ttl=self.ttl)
        while True:
            # NATS away: the liveness clock is paused meanwhile (``grace``)
            watcher = await retry(kv.watchall, log=log, event="agents_watch_failed", delay=1.0)
            try:
                await heartbeats.follow(watcher, silence=self.ttl / 2, heard=lambda b, a: self.heard(b, age=a))
            finally:
                with contextlib.suppress(Exception):
                    await watcher.stop()

    async def run_scheduler(self, connected: Callable[[], bool] = lambda: True) -> None:
        alive_before: list[str] = []
        cut_off_since: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=self.liveness.next_expiry())
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
        return rules.least_loaded(await store.loads(conn, alive))

    async def schedule(self) -> int:
        """Move every router without a live agent; returns how many moved.

        A fixed number of statements whatever the count (a dead agent leaves hundreds of routers):
        agents are chosen in memory from one count per agent (``rules.assign``); the removals, the
        rows and the new specs are written in one statement each."""
        alive = self.alive()
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            if not await store.take_scheduler_turn(conn):
                return 0
            rows = await store.routers_to_move(conn, alive)
            if rules.nothing_to_move([r["agent_id"] for r in rows], alive):
                return 0
            chosen = rules.assign(len(rows), await store.loads(conn, alive) if alive else {})
            await self.d.specs.publish_removals(
                conn, [(r["id"], r["agent_id"], r["spec_revision"] + 1) for r in rows if r["agent_id"] is not None]
            )
            await store.assign(conn, [r["id"] for r in rows], chosen)
            await self.d.specs.publish_for_routers(conn, [r["id"] for r in rows])
            log.info("routers_scheduled", count=len(rows), agents=len(alive))
            return len(rows)

    # ------------------------------------------------------------ commands

    async def list(self, cmd: ListCommand) -> t.AgentList:
        if not cmd.context.is_admin:
            raise NotAuthorized("rule:get_agent is disallowed by policy")
        alive = set(self.alive())
        async with db_errors(), self.db.acquire() as conn:
            counts = await store.router_counts(conn)
        return t.AgentList(
            agents=[
                t.Agent(
                    agent_id=a,
                    host=s.beat.host,
                    alive=a in alive,
                    routers=counts.get(a, 0),
                    started_at=s.beat.started_at,
                    last_seen=s.when,
                )
                for a, s in sorted(self.liveness.seen.items())
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
        over a dead one's routers reports hundreds at once. One statement writes the rows, one the
        events (a router whose status moved twice in the batch gets one event, from where it was to
        where it ended)."""
        ids = sorted({it.request.router_id for it in items})
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            rows = await store.lock_statuses(conn, ids)
            decided = rules.decide_reports(rows, [it.request for it in items])
            if decided.touched:
                await store.write_statuses(conn, {rid: decided.now[rid] for rid in decided.touched})
            if decided.moved:
                before = await routers_by_id(conn, decided.moved)
                # Only the status moved: each view after is the one before, updated.
                now = decided.now
                changes = [
                    (v.model_copy(update={"status": now[v.id][0], "status_reason": now[v.id][1]}), v) for v in before
                ]
                await emit_many(conn, "router", "updated", changes)  # type: ignore[arg-type]
        for it, accepted in zip(items, decided.accepted, strict=True):
            it.resolve(t.RouterStatusAck(router_id=it.request.router_id, accepted=accepted))
