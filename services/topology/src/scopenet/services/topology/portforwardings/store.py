"""SQL of port forwardings (what a change means, and its events, are ``service``'s).

Lock order, the same everywhere: the internal port's row, then the floating IP's, so a forwarding
being created and its port being deleted wait for each other instead of deadlocking.
"""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.services.topology.portforwardings import rules


async def lock_port(conn: asyncpg.Connection, port_id: uuid.UUID) -> None:
    """Hold the internal port still (its addresses, its deletion) until the transaction ends."""
    await conn.execute("SELECT 1 FROM ports WHERE id = $1 FOR SHARE", port_id)


async def of_fip(conn: asyncpg.Connection, fip_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch("SELECT * FROM port_forwardings WHERE floatingip_id = $1 ORDER BY created_at, id", fip_id)
    )


async def one(
    conn: asyncpg.Connection, fip_id: uuid.UUID, pf_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    sql = "SELECT * FROM port_forwardings WHERE id = $1 AND floatingip_id = $2" + (" FOR UPDATE" if lock else "")
    return await conn.fetchrow(sql, pf_id, fip_id)


async def fip_has_any(conn: asyncpg.Connection, fip_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM port_forwardings WHERE floatingip_id = $1)", fip_id))


async def neighbours(
    conn: asyncpg.Connection, *, fip_id: uuid.UUID, port_id: uuid.UUID, exclude: uuid.UUID | None
) -> list[asyncpg.Record]:
    """The forwardings a new or changed one could collide with: same floating IP, or same internal port."""
    return list(
        await conn.fetch(
            """SELECT * FROM port_forwardings
               WHERE (floatingip_id = $1 OR internal_port_id = $2) AND id IS DISTINCT FROM $3""",
            fip_id,
            port_id,
            exclude,
        )
    )


async def bound_fip(conn: asyncpg.Connection, port_id: uuid.UUID) -> asyncpg.Record | None:
    """A floating IP associated with the port as a whole, if any."""
    return await conn.fetchrow(
        "SELECT id, floating_ip_address FROM floatingips WHERE port_id = $1 ORDER BY created_at LIMIT 1", port_id
    )


async def _write(conn: asyncpg.Connection, sql: str, *args: object) -> asyncpg.Record:
    """Run the write; an exclusion constraint that refuses it (a race the checks did not see) is
    Neutron's collision answer, 400."""
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction stays usable
            row = await conn.fetchrow(sql, *args)
    except asyncpg.ExclusionViolationError as exc:
        key = "internal_port_range" if "internal" in (exc.constraint_name or "") else "external_port_range"
        raise rules.collision_race(key) from exc
    assert row is not None
    return row


async def insert(
    conn: asyncpg.Connection,
    *,
    pf_id: uuid.UUID,
    project_id: str,
    fip_id: uuid.UUID,
    port_id: uuid.UUID,
    proto: str,
    address: str,
    ports: rules.Ports,
    description: str,
) -> asyncpg.Record:
    return await _write(
        conn,
        """INSERT INTO port_forwardings (id, project_id, floatingip_id, internal_port_id, protocol, internal_ip_address,
               external_port_start, external_port_end, internal_port_start, internal_port_end, description)
           VALUES ($1, $2, $3, $4, $5, $6::inet, $7, $8, $9, $10, $11) RETURNING *""",
        pf_id,
        project_id,
        fip_id,
        port_id,
        proto,
        address,
        *ports.external,
        *ports.internal,
        description,
    )


async def update(
    conn: asyncpg.Connection,
    pf_id: uuid.UUID,
    *,
    port_id: uuid.UUID,
    proto: str,
    address: str,
    ports: rules.Ports,
    description: str,
) -> asyncpg.Record:
    return await _write(
        conn,
        """UPDATE port_forwardings SET internal_port_id = $2, protocol = $3, internal_ip_address = $4::inet,
               external_port_start = $5, external_port_end = $6, internal_port_start = $7, internal_port_end = $8,
               description = $9, revision_number = revision_number + 1, updated_at = now()
           WHERE id = $1 RETURNING *""",
        pf_id,
        port_id,
        proto,
        address,
        *ports.external,
        *ports.internal,
        description,
    )


async def set_fip_router(conn: asyncpg.Connection, fip_id: uuid.UUID, router_id: uuid.UUID | None) -> None:
    await conn.execute(
        "UPDATE floatingips SET router_id = $2, revision_number = revision_number + 1, updated_at = now() "
        "WHERE id = $1",
        fip_id,
        router_id,
    )


async def delete(conn: asyncpg.Connection, pf_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM port_forwardings WHERE id = $1", pf_id)


async def fip_router_and_port(conn: asyncpg.Connection, fip_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT router_id, port_id FROM floatingips WHERE id = $1", fip_id)


async def of_port(conn: asyncpg.Connection, port_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT * FROM port_forwardings WHERE internal_port_id = $1 ORDER BY floatingip_id, id", port_id
        )
    )
