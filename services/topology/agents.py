"""L3 agents and router scheduling.

Agents put an ``AgentHeartbeat`` under their id in the ``scopenet_agents`` KV bucket every few
seconds; entries expire (bucket TTL). Expiry produces no event a watcher sees on every server
version, so liveness is "heard from within ``agent_ttl``", checked once a second.

Scheduling is level-triggered: a pass assigns every active router that has no live agent to the
least-loaded live agent (or leaves it PENDING when there is none), publishes ``present=false`` on
the old agent's subject and the full spec on the new one's. Passes run when an agent appears or
dies and once a second while routers wait; replicas take turns through an advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import asyncpg
import structlog
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError
from pydantic import ValidationError

from scopenet.contracts import routerspec as rs
from scopenet.contracts import topology as t
from scopenet.contracts.base import ListCommand
from scopenet.errors import NotAuthorized
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.l3store import one_router
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

    # ------------------------------------------------------------ liveness

    def alive(self) -> list[str]:
        now = time.monotonic()
        return sorted(a for a, (_, seen, _) in self._seen.items() if now - seen <= self.ttl)

    def heard(self, beat: rs.AgentHeartbeat) -> None:
        new = beat.agent_id not in self.alive()
        self._seen[beat.agent_id] = (beat, time.monotonic(), datetime.now(UTC))
        if new:
            log.info("agent_up", agent_id=beat.agent_id, host=beat.host)
            self._kick.set()

    async def watch(self, js: JetStreamContext) -> None:
        kv = await agents_bucket(js, self.ttl)
        watcher = await kv.watchall()
        async for entry in watcher:
            if entry is None or entry.value is None or entry.operation is not None:
                continue
            try:
                self.heard(rs.AgentHeartbeat.model_validate_json(entry.value))
            except ValidationError as exc:
                log.warning("agent_heartbeat_invalid", key=entry.key, error=str(exc.errors()[0]["msg"]))

    async def run_scheduler(self) -> None:
        alive_before: list[str] = []
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=1.0)
            self._kick.clear()
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
        counts = {
            r["agent_id"]: r["n"]
            for r in await conn.fetch(
                "SELECT agent_id, count(*) AS n FROM routers WHERE agent_id = ANY($1::text[]) GROUP BY agent_id", alive
            )
        }
        return min(alive, key=lambda a: (counts.get(a, 0), a))

    async def schedule(self) -> int:
        """Move every router without a live agent; returns how many moved."""
        alive = self.alive()
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('topology-scheduler'))"):
                return 0
            rows = await conn.fetch(
                """SELECT id, agent_id, spec_revision FROM routers
                   WHERE state = 'active' AND (agent_id IS NULL OR NOT agent_id = ANY($1::text[]))
                   ORDER BY created_at, id FOR UPDATE""",
                alive,
            )
            if not rows or (not alive and all(r["agent_id"] is None for r in rows)):
                return 0
            moved = 0
            for r in rows:
                agent = await self.pick(conn)
                if r["agent_id"] is not None:
                    await self.d.specs.publish_removal(conn, r["id"], r["agent_id"], r["spec_revision"] + 1)
                await conn.execute(
                    "UPDATE routers SET agent_id = $2, spec_revision = spec_revision + 1, status = 'PENDING', "
                    "status_reason = $3 WHERE id = $1",
                    r["id"],
                    agent,
                    None if agent else "no live L3 agent",
                )
                moved += 1
            await self.d.specs.publish_for_routers(conn, [r["id"] for r in rows])
            log.info("routers_scheduled", count=moved, agents=len(alive))
            return moved

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
        Agents act as a service: the context needs the ``admin`` or ``service`` role."""
        if not (cmd.context.is_admin or "service" in cmd.context.roles):
            raise NotAuthorized("rule:report_router_status is disallowed by policy")
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM routers WHERE id = $1 AND state = 'active' FOR UPDATE", cmd.router_id
            )
            if row is None or row["agent_id"] != cmd.agent_id or cmd.revision < row["status_revision"]:
                return t.RouterStatusAck(router_id=cmd.router_id, accepted=False)
            status = "DOWN" if cmd.status == "DOWN" else cmd.status
            reason = cmd.reason if cmd.status == "ERROR" else None
            changed = (row["status"], row["status_reason"]) != (status, reason)
            before = await one_router(conn, cmd.router_id) if changed else None
            await conn.execute(
                "UPDATE routers SET status = $2, status_reason = $3, status_revision = $4 WHERE id = $1",
                cmd.router_id,
                status,
                reason,
                cmd.revision,
            )
            if changed:
                await emit(conn, "router", "updated", await one_router(conn, cmd.router_id), before)  # type: ignore[arg-type]
        return t.RouterStatusAck(router_id=cmd.router_id, accepted=True)
