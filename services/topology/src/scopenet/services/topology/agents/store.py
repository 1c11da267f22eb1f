"""SQL of L3 scheduling and router status: loads per agent, routers to move, reported statuses."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from scopenet.services.topology.agents.rules import Status, StatusRow


async def loads(conn: asyncpg.Connection, alive: list[str]) -> dict[str, int]:
    """Routers scheduled to each live agent (0 for those with none)."""
    rows = await conn.fetch(
        "SELECT agent_id, count(*) AS n FROM routers WHERE agent_id = ANY($1::text[]) GROUP BY agent_id", alive
    )
    return {a: 0 for a in alive} | {r["agent_id"]: r["n"] for r in rows}


async def router_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Routers per agent, live or not."""
    rows = await conn.fetch("SELECT agent_id, count(*) AS n FROM routers WHERE agent_id IS NOT NULL GROUP BY agent_id")
    return {r["agent_id"]: r["n"] for r in rows}


async def take_scheduler_turn(conn: asyncpg.Connection) -> bool:
    """Replicas take turns (until the transaction ends); False when another one is scheduling."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('topology-scheduler'))"))


async def routers_to_move(conn: asyncpg.Connection, alive: list[str]) -> list[asyncpg.Record]:
    """Active routers without a live agent (id, agent_id, spec_revision), oldest first; locked in
    id order, as every other writer of many routers locks them (no deadlocks)."""
    rows = list(
        await conn.fetch(
            """SELECT id, agent_id, spec_revision, created_at FROM routers
               WHERE state = 'active' AND (agent_id IS NULL OR NOT agent_id = ANY($1::text[]))
               ORDER BY id FOR UPDATE""",
            alive,
        )
    )
    rows.sort(key=lambda r: (r["created_at"], r["id"]))
    return rows


async def assign(conn: asyncpg.Connection, router_ids: list[UUID], agents: list[str | None]) -> None:
    """Each router to its agent (None: unscheduled, with the reason), as ``PENDING`` with a new spec revision."""
    await conn.execute(
        """UPDATE routers r SET agent_id = m.agent, spec_revision = r.spec_revision + 1, status = 'PENDING',
                  status_reason = CASE WHEN m.agent IS NULL THEN 'no live L3 agent' END
           FROM unnest($1::uuid[], $2::text[]) AS m(id, agent) WHERE r.id = m.id""",
        router_ids,
        agents,
    )


async def lock_statuses(conn: asyncpg.Connection, router_ids: list[UUID]) -> dict[UUID, StatusRow]:
    """The active routers among these, locked in id order, with their agent and status."""
    rows = await conn.fetch(
        """SELECT id, agent_id, status, status_reason, status_revision FROM routers
           WHERE id = ANY($1::uuid[]) AND state = 'active' ORDER BY id FOR UPDATE""",
        router_ids,
    )
    return {r["id"]: StatusRow(r["agent_id"], (r["status"], r["status_reason"], r["status_revision"])) for r in rows}


async def write_statuses(conn: asyncpg.Connection, statuses: dict[UUID, Status]) -> None:
    ids = list(statuses)
    await conn.execute(
        """UPDATE routers r SET status = u.status, status_reason = u.reason, status_revision = u.revision
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[]) AS u(id, status, reason, revision)
           WHERE r.id = u.id""",
        ids,
        [statuses[i][0] for i in ids],
        [statuses[i][1] for i in ids],
        [statuses[i][2] for i in ids],
    )
