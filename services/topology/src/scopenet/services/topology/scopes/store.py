"""SQL of the IPAM mirror: pools and address scopes as IPAM's events describe them, and the views
of the networks whose derived scopes follow them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.services.topology.networks import store as netstore

Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"

# The mirror reads every network, whoever owns it.
_ANYONE = ""


async def upsert_pool(conn: Conn, pool: im.SubnetPool) -> asyncpg.Record | None:
    """Apply a pool's state unless we already hold a newer revision; returns the row it replaced."""
    before = await conn.fetchrow("SELECT * FROM subnetpools WHERE id = $1 FOR UPDATE", pool.id)
    if before is not None and before["revision_number"] > pool.revision_number:
        return before
    await conn.execute(
        """INSERT INTO subnetpools (id, ip_version, address_scope_id, revision_number) VALUES ($1, $2, $3, $4)
           ON CONFLICT (id) DO UPDATE SET ip_version = $2, address_scope_id = $3, revision_number = $4""",
        pool.id,
        pool.ip_version,
        pool.address_scope_id,
        pool.revision_number,
    )
    return before


async def learn_pool(conn: Conn, pool_id: UUID, ip_version: int, scope_id: UUID | None) -> None:
    """A pool seen on a subnet before its own event arrived (any event overrides it: revision -1)."""
    await conn.execute(
        """INSERT INTO subnetpools (id, ip_version, address_scope_id, revision_number) VALUES ($1, $2, $3, -1)
           ON CONFLICT (id) DO NOTHING""",
        pool_id,
        ip_version,
        scope_id,
    )


async def upsert_scope(conn: Conn, scope: im.AddressScope) -> None:
    await conn.execute(
        """INSERT INTO address_scopes (id, ip_version, mark_id) VALUES ($1, $2, $3)
           ON CONFLICT (id) DO UPDATE SET ip_version = $2, mark_id = $3""",
        scope.id,
        scope.ip_version,
        scope.mark_id,
    )


async def known_scope(conn: Conn, scope_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM address_scopes WHERE id = $1)", scope_id))


async def delete_pool(conn: Conn, pool_id: UUID) -> None:
    await conn.execute("DELETE FROM subnetpools WHERE id = $1", pool_id)


async def delete_scope(conn: Conn, scope_id: UUID) -> None:
    await conn.execute("DELETE FROM address_scopes WHERE id = $1", scope_id)


async def lock_pool_scope(conn: Conn, pool_id: UUID) -> UUID | None:
    """The mirrored scope of a pool (None: unscoped or not mirrored), the row locked."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT address_scope_id FROM subnetpools WHERE id = $1 FOR UPDATE", pool_id
    )


async def pool_scopes(conn: Conn) -> dict[UUID, UUID | None]:
    """Every mirrored pool's scope."""
    return {r["id"]: r["address_scope_id"] for r in await conn.fetch("SELECT * FROM subnetpools")}


async def pool_networks(conn: asyncpg.Connection, pool_ids: Iterable[UUID]) -> dict[UUID, t.Network]:
    """The views of every network holding a subnet of these pools (read before a pool moves)."""
    ids = list(pool_ids)
    if not ids:
        return {}
    rows = await netstore.networks(
        conn,
        project=_ANYONE,
        admin=True,
        where="n.id IN (SELECT s.network_id FROM subnets s WHERE s.subnetpool_id = ANY($3::uuid[]))",
        args=(ids,),
    )
    return {r["id"]: netstore.network_view(r) for r in rows}


async def network_views(conn: asyncpg.Connection, ids: list[UUID]) -> dict[UUID, t.Network]:
    rows = await netstore.networks(conn, project=_ANYONE, admin=True, where="n.id = ANY($3::uuid[])", args=(ids,))
    return {r["id"]: netstore.network_view(r) for r in rows}


async def bump_networks(conn: Conn, ids: list[UUID]) -> list[asyncpg.Record]:
    """A new revision for each network (its representation changed): (id, revision_number, updated_at)."""
    return list(
        await conn.fetch(
            "UPDATE networks SET revision_number = revision_number + 1, updated_at = now() "
            "WHERE id = ANY($1::uuid[]) RETURNING id, revision_number, updated_at",
            ids,
        )
    )
