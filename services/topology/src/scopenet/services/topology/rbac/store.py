"""SQL of network RBAC entries (and of what depends on them)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from scopenet.contracts import topology as t

_DEPENDANTS = {
    "access_as_shared": """SELECT project_id FROM ports WHERE network_id = $1 AND project_id <> ''
                           UNION SELECT project_id FROM subnets WHERE network_id = $1""",
    "access_as_external": """SELECT r.project_id FROM routers r JOIN ports p ON p.id = r.gw_port_id
                             WHERE p.network_id = $1
                             UNION SELECT project_id FROM floatingips WHERE floating_network_id = $1""",
}


def rbac_view(row: asyncpg.Record) -> t.NetworkRbacPolicy:
    return t.NetworkRbacPolicy(
        id=row["id"],
        object_type="network",
        object_id=row["network_id"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        target_tenant=row["target_project"],
        target_project=row["target_project"],
        action=row["action"],
    )


async def insert_rbac(
    conn: asyncpg.Connection, *, id_: UUID, network_id: UUID, project_id: str, target: str, action: str
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """INSERT INTO network_rbac (id, network_id, project_id, target_project, action)
           VALUES ($1, $2, $3, $4, $5) RETURNING *""",
        id_,
        network_id,
        project_id,
        target,
        action,
    )
    assert row is not None
    return row


async def rbac_targets(conn: asyncpg.Connection, network_id: UUID, action: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT target_project FROM network_rbac WHERE network_id = $1 AND action = $2", network_id, action
    )
    return {r["target_project"] for r in rows}


async def wildcard(conn: asyncpg.Connection, network_id: UUID, action: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM network_rbac WHERE network_id = $1 AND action = $2 AND target_project = '*'",
        network_id,
        action,
    )


async def other_targets(conn: asyncpg.Connection, row: asyncpg.Record) -> set[str]:
    """The targets of the network's other entries with the same action as ``row``."""
    rows = await conn.fetch(
        "SELECT target_project FROM network_rbac WHERE network_id = $1 AND action = $2 AND id <> $3",
        row["network_id"],
        row["action"],
        row["id"],
    )
    return {r["target_project"] for r in rows}


async def dependants(conn: asyncpg.Connection, network_id: UUID, action: str) -> set[str]:
    """Projects with something on the network that needs this kind of access."""
    return {r["project_id"] for r in await conn.fetch(_DEPENDANTS[action], network_id)}


async def visible_rbac(conn: asyncpg.Connection, id_: UUID, *, project: str, admin: bool) -> asyncpg.Record | None:
    """An entry the caller may see (its own project's, or any for an admin), locked."""
    return await conn.fetchrow(
        "SELECT * FROM network_rbac WHERE id = $1 AND ($2 OR project_id = $3) FOR UPDATE", id_, admin, project
    )


async def list_rbac(conn: asyncpg.Connection, *, project: str, admin: bool) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM network_rbac WHERE $1 OR project_id = $2 ORDER BY id", admin, project))


async def set_target(conn: asyncpg.Connection, id_: UUID, target: str) -> asyncpg.Record:
    row = await conn.fetchrow("UPDATE network_rbac SET target_project = $2 WHERE id = $1 RETURNING *", id_, target)
    assert row is not None
    return row


async def delete_rbac(conn: asyncpg.Connection, id_: UUID) -> None:
    await conn.execute("DELETE FROM network_rbac WHERE id = $1", id_)
