"""SQL of floating IPs: rows, views, and what an association is decided from."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from scopenet.contracts import topology as t
from scopenet.services.topology.sqllist import Column, Table, common_columns

TABLE = Table(
    resource="floatingip",
    source="floatingips f JOIN ports fp ON fp.id = f.floating_port_id",
    where="fp.state = 'active'",
    visible="f.project_id = $me",
    columns={
        "id": Column("f.id", "uuid"),
        "project_id": Column("f.project_id"),
        "tenant_id": Column("f.project_id"),
        "floating_network_id": Column("f.floating_network_id", "uuid"),
        "floating_ip_address": Column("host(f.floating_ip_address)"),
        "router_id": Column("f.router_id", "uuid", nullable=True),
        "port_id": Column("f.port_id", "uuid", nullable=True),
        "fixed_ip_address": Column("host(f.fixed_ip_address)", nullable=True),
        "status": Column("CASE WHEN f.router_id IS NULL THEN 'DOWN' ELSE 'ACTIVE' END"),
        **common_columns("f"),
    },
    natural=("f.created_at", "f.id"),
    id_sql="f.id",
    tags_sql="f.tags",
)
"""Floating IP lists in SQL (``sqllist``); the JSON is ``fip_view``'s, built by Postgres."""


def fip_view(row: asyncpg.Record) -> t.FloatingIp:
    return t.FloatingIp(
        id=row["id"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        floating_network_id=row["floating_network_id"],
        floating_ip_address=str(row["floating_ip_address"]),
        router_id=row["router_id"],
        port_id=row["port_id"],
        fixed_ip_address=str(row["fixed_ip_address"]) if row["fixed_ip_address"] is not None else None,
        status="ACTIVE" if row["router_id"] is not None else "DOWN",
        description=row["description"],
        tags=list(row["tags"]),
        revision_number=row["revision_number"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def fips(
    conn: asyncpg.Connection,
    *,
    project: str,
    admin: bool,
    where: str = "TRUE",
    args: tuple[Any, ...] = (),
    lock: bool = False,
) -> list[asyncpg.Record]:
    sql = f"""SELECT f.* FROM floatingips f JOIN ports p ON p.id = f.floating_port_id
              WHERE p.state = 'active' AND ($2 OR f.project_id = $1) AND {where} ORDER BY f.created_at, f.id"""
    return list(await conn.fetch(sql + (" FOR UPDATE OF f" if lock else ""), project, admin, *args))


async def fip(
    conn: asyncpg.Connection, fip_id: uuid.UUID, *, project: str, admin: bool, lock: bool = False
) -> asyncpg.Record | None:
    """One floating IP the caller sees (whose port is active), locked if asked."""
    rows = await fips(conn, project=project, admin=admin, where="f.id = $3", args=(fip_id,), lock=lock)
    return rows[0] if rows else None


async def fip_view_row(conn: asyncpg.Connection, fip_id: uuid.UUID) -> t.FloatingIp | None:
    row = await fip(conn, fip_id, project="", admin=True)
    return fip_view(row) if row is not None else None


async def fip_on_router(conn: asyncpg.Connection, router_id: uuid.UUID) -> uuid.UUID | None:
    """One floating IP the router serves, if any."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT id FROM floatingips WHERE router_id = $1 LIMIT 1", router_id
    )


async def router_fips(conn: asyncpg.Connection, router_id: uuid.UUID) -> list[asyncpg.Record]:
    """(id, fixed_ip_address) of every floating IP the router serves: its fixed address, or the
    internal address of each of its port forwardings."""
    return list(
        await conn.fetch(
            """SELECT id, fixed_ip_address FROM floatingips WHERE router_id = $1
               UNION ALL SELECT f.id, pf.internal_ip_address FROM floatingips f
                   JOIN port_forwardings pf ON pf.floatingip_id = f.id WHERE f.router_id = $1""",
            router_id,
        )
    )


# ---------------------------------------------------------------- association


async def port(conn: asyncpg.Connection, port_id: uuid.UUID) -> asyncpg.Record | None:
    """An active port with its network's owner (``net_owner``)."""
    return await conn.fetchrow(
        "SELECT p.*, n.project_id AS net_owner FROM ports p JOIN networks n ON n.id = p.network_id "
        "WHERE p.id = $1 AND p.state = 'active'",
        port_id,
    )


async def port_addresses(conn: asyncpg.Connection, port_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT subnet_id, ip_address FROM port_ips WHERE port_id = $1", port_id))


async def serving_router(conn: asyncpg.Connection, subnet_id: uuid.UUID, network_id: uuid.UUID) -> uuid.UUID | None:
    """The (oldest) active router linking the subnet to the external network: an interface on the
    one, its gateway on the other."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """SELECT r.id FROM routers r JOIN router_ports rp ON rp.router_id = r.id
               JOIN port_ips i ON i.port_id = rp.port_id JOIN ports g ON g.id = r.gw_port_id
           WHERE i.subnet_id = $1 AND g.network_id = $2 AND r.state = 'active' AND g.state = 'active'
           ORDER BY r.created_at LIMIT 1""",
        subnet_id,
        network_id,
    )


async def other_fip_state(
    conn: asyncpg.Connection, *, port_id: uuid.UUID, address: str, fip_id: uuid.UUID, network_id: uuid.UUID
) -> str | None:
    """The port state of another floating IP of this network on the same fixed address, if any."""
    row = await conn.fetchrow(
        "SELECT f.id, p.state FROM floatingips f JOIN ports p ON p.id = f.floating_port_id "
        "WHERE f.port_id = $1 AND f.fixed_ip_address = $2::inet AND f.id <> $3 AND f.floating_network_id = $4",
        port_id,
        address,
        fip_id,
        network_id,
    )
    return row["state"] if row is not None else None


# ---------------------------------------------------------------- writes


async def insert(
    conn: asyncpg.Connection,
    *,
    fip_id: uuid.UUID,
    owner: str,
    body: t.FloatingIpCreateBody,
    port_id: uuid.UUID,
    fixed: str | None,
    router: uuid.UUID | None,
) -> None:
    await conn.execute(
        """INSERT INTO floatingips (id, project_id, floating_network_id, floating_port_id, port_id,
               fixed_ip_address, router_id, description, tags)
           VALUES ($1, $2, $3, $4, $5, $6::inet, $7, $8, $9)""",
        fip_id,
        owner,
        body.floating_network_id,
        port_id,
        body.port_id,
        fixed,
        router,
        body.description,
        list(body.tags),
    )


async def set_address(conn: asyncpg.Connection, fip_id: uuid.UUID, address: str) -> None:
    """The address IPAM gave; the floating IP is created as of now."""
    await conn.execute(
        "UPDATE floatingips SET floating_ip_address = $2::inet, created_at = now(), updated_at = now() WHERE id = $1",
        fip_id,
        address,
    )


async def drop_pending_association(conn: asyncpg.Connection, fip_id: uuid.UUID) -> None:
    """Dissociate a floating IP whose port never became active (a failed create)."""
    await conn.execute(
        "UPDATE floatingips f SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL "
        "FROM ports p WHERE f.id = $1 AND p.id = f.floating_port_id AND p.state <> 'active'",
        fip_id,
    )


async def update(
    conn: asyncpg.Connection,
    fip_id: uuid.UUID,
    *,
    port_id: uuid.UUID | None,
    fixed: str | None,
    router: uuid.UUID | None,
    description: str | None,
    tags: list[str] | None,
) -> None:
    await conn.execute(
        """UPDATE floatingips SET port_id = $2, fixed_ip_address = $3::inet, router_id = $4,
               description = coalesce($5, description), tags = coalesce($6, tags),
               revision_number = revision_number + 1, updated_at = now() WHERE id = $1""",
        fip_id,
        port_id,
        fixed,
        router,
        description,
        tags,
    )


async def dissociate(conn: asyncpg.Connection, fip_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE floatingips SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL WHERE id = $1", fip_id
    )
