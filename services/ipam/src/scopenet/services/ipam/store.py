"""SQL of the IPAM service (the ``ipam`` schema). No policy here: callers decide who may act."""

from __future__ import annotations

from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from scopenet.contracts import ipam as m

Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"

_SHARED = """EXISTS (SELECT 1 FROM rbac_policies r WHERE r.object_id = {t}.id
                 AND r.target_project IN ('*', $1))"""
_VISIBLE = f"($2 OR {{t}}.project_id = $1 OR {_SHARED})"


def _shared(t: str) -> str:
    return _SHARED.format(t=t)


def _visible(t: str) -> str:
    return _VISIBLE.format(t=t)


# ---------------------------------------------------------------- views


def must(row: asyncpg.Record | None) -> asyncpg.Record:
    """A row the caller just read or wrote under lock: its absence is a bug, not a 404."""
    if row is None:
        raise RuntimeError("row vanished inside its own transaction")
    return row


def scope_view(row: asyncpg.Record) -> m.AddressScope:
    return m.AddressScope(
        id=row["id"],
        name=row["name"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        shared=row["shared"],
        ip_version=row["ip_version"],
        mark_id=row["mark_id"],
    )


def pool_view(row: asyncpg.Record) -> m.SubnetPool:
    return m.SubnetPool(
        id=row["id"],
        name=row["name"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        prefixes=[str(p) for p in row["prefixes"]],
        ip_version=row["ip_version"],
        min_prefixlen=row["min_prefixlen"],
        max_prefixlen=row["max_prefixlen"],
        default_prefixlen=row["default_prefixlen"],
        default_quota=row["default_quota"],
        address_scope_id=row["address_scope_id"],
        is_default=row["is_default"],
        shared=row["shared"],
        description=row["description"],
        tags=list(row["tags"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        revision_number=row["revision_number"],
    )


def subnet_view(row: asyncpg.Record) -> m.Subnet:
    return m.Subnet(
        id=row["id"],
        network_id=row["network_id"],
        project_id=row["project_id"],
        ip_version=row["ip_version"],
        cidr=str(row["cidr"]),
        subnetpool_id=row["subnetpool_id"],
        address_scope_id=row["address_scope_id"],
        gateway_ip=str(row["gateway_ip"]) if row["gateway_ip"] is not None else None,
        allocation_pools=[m.AllocationPool(**p) for p in row["allocation_pools"]],
    )


def rbac_view(row: asyncpg.Record) -> m.RbacPolicy:
    return m.RbacPolicy(
        id=row["id"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        target_tenant=row["target_project"],
        target_project=row["target_project"],
        action=row["action"],
    )


# ---------------------------------------------------------------- address scopes

_SCOPE_COLS = f"s.*, {_shared('s')} AS shared"


async def scopes(
    conn: Conn, *, project: str, admin: bool, where: str = "TRUE", args: tuple[Any, ...] = ()
) -> list[asyncpg.Record]:
    sql = f"SELECT {_SCOPE_COLS} FROM address_scopes s WHERE {_visible('s')} AND {where} ORDER BY s.created_at, s.id"
    return list(await conn.fetch(sql, project, admin, *args))


async def scope(conn: Conn, id_: UUID, *, project: str, admin: bool, lock: bool = False) -> asyncpg.Record | None:
    rows = await scopes(conn, project=project, admin=admin, where="s.id = $3", args=(id_,))
    if rows and lock:
        await conn.execute("SELECT 1 FROM address_scopes WHERE id = $1 FOR UPDATE", id_)
    return rows[0] if rows else None


async def insert_scope(conn: Conn, *, id_: UUID, name: str, project_id: str, ip_version: int) -> None:
    """Insert with the lowest free mark id (inside a transaction); the UNIQUE constraint is the backstop.

    "Lowest free" is the same answer for every concurrent creator, so they take turns (an advisory
    lock held to commit); without it they collide, and a handful of retries is not enough for ten.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('ipam-scope-mark', 0))")
    await conn.execute(
        """INSERT INTO address_scopes (id, name, project_id, ip_version, mark_id)
           VALUES ($1, $2, $3, $4, (SELECT min(c) FROM generate_series(1025, 65535) c
                                    WHERE NOT EXISTS (SELECT 1 FROM address_scopes WHERE mark_id = c)))""",
        id_,
        name,
        project_id,
        ip_version,
    )


# ---------------------------------------------------------------- subnet pools

_POOL_COLS = f"""p.*, {_shared("p")} AS shared,
    ARRAY(SELECT x.cidr FROM subnetpool_prefixes x WHERE x.subnetpool_id = p.id ORDER BY x.cidr) AS prefixes,
    (SELECT a.mark_id FROM address_scopes a WHERE a.id = p.address_scope_id) AS mark_id,
    ARRAY(SELECT r.target_project FROM rbac_policies r WHERE r.object_id = p.id) AS rbac_targets"""


async def pools(
    conn: Conn, *, project: str, admin: bool, where: str = "TRUE", args: tuple[Any, ...] = (), lock: bool = False
) -> list[asyncpg.Record]:
    sql = f"SELECT {_POOL_COLS} FROM subnetpools p WHERE {_visible('p')} AND {where} ORDER BY p.created_at, p.id"
    if lock:
        sql += " FOR UPDATE OF p"
    return list(await conn.fetch(sql, project, admin, *args))


async def pool(conn: Conn, id_: UUID, *, project: str, admin: bool, lock: bool = False) -> asyncpg.Record | None:
    rows = await pools(conn, project=project, admin=admin, where="p.id = $3", args=(id_,), lock=lock)
    return rows[0] if rows else None


async def set_pool_prefixes(conn: Conn, pool_id: UUID, prefixes: list[str], scope_key: int | None) -> None:
    await conn.execute("DELETE FROM subnetpool_prefixes WHERE subnetpool_id = $1", pool_id)
    await conn.executemany(
        "INSERT INTO subnetpool_prefixes (subnetpool_id, cidr, scope_key) VALUES ($1, $2::cidr, $3)",
        [(pool_id, p, scope_key) for p in prefixes],
    )


async def scope_overlaps(
    conn: Conn, scope_id: UUID, prefixes: list[str], exclude_pool: UUID | None
) -> list[asyncpg.Record]:
    """Prefixes of *every* pool in the scope, whoever owns it, that overlap ``prefixes``.

    docs/neutron.md#overlap-is-checked-against-every-pool
    """
    return list(
        await conn.fetch(
            """SELECT x.subnetpool_id, x.cidr, n.c AS wanted FROM subnetpool_prefixes x
           JOIN subnetpools p ON p.id = x.subnetpool_id
           JOIN unnest($2::cidr[]) AS n(c) ON x.cidr && n.c
           WHERE p.address_scope_id = $1 AND p.id IS DISTINCT FROM $3""",
            scope_id,
            prefixes,
            exclude_pool,
        )
    )


async def pool_allocations(conn: Conn, pool_id: UUID) -> list[str]:
    return [str(r["cidr"]) for r in await conn.fetch("SELECT cidr FROM subnets WHERE subnetpool_id = $1", pool_id)]


async def mixed_networks(conn: Conn, pool_id: UUID, ip_version: int) -> list[UUID]:
    """Networks holding subnets of this pool and same-family subnets not from it (rule 22.4)."""
    rows = await conn.fetch(
        """SELECT DISTINCT a.network_id FROM subnets a JOIN subnets b ON a.network_id = b.network_id
           WHERE a.subnetpool_id = $1 AND b.ip_version = $2 AND b.subnetpool_id IS DISTINCT FROM $1""",
        pool_id,
        ip_version,
    )
    return [r["network_id"] for r in rows]


async def rekey_pool(conn: Conn, pool_id: UUID, pool_seq: int, mark_id: int | None) -> None:
    """A pool changed scope: move its prefixes and subnets into the new overlap domain. The
    exclusion constraints re-check every moved row, so a conflict here cannot slip through."""
    await conn.execute("UPDATE subnetpool_prefixes SET scope_key = $2 WHERE subnetpool_id = $1", pool_id, mark_id)
    await conn.execute(
        "UPDATE subnets SET overlap_key = $2 WHERE subnetpool_id = $1",
        pool_id,
        mark_id if mark_id is not None else -pool_seq,
    )


# ---------------------------------------------------------------- subnets

_SUBNET_COLS = "s.*, (SELECT p.address_scope_id FROM subnetpools p WHERE p.id = s.subnetpool_id) AS address_scope_id"


async def subnets(conn: Conn, where: str, *args: Any, lock: bool = False) -> list[asyncpg.Record]:
    sql = f"SELECT {_SUBNET_COLS} FROM subnets s WHERE {where} ORDER BY s.created_at, s.id"
    return list(await conn.fetch(sql + (" FOR UPDATE OF s" if lock else ""), *args))


async def subnets_by_id(conn: Conn, where: str, *args: Any, limit: int | None) -> list[asyncpg.Record]:
    """A page of subnets in id order (keyset pagination: ``where`` carries the marker)."""
    sql = f"SELECT {_SUBNET_COLS} FROM subnets s WHERE {where} ORDER BY s.id LIMIT ${len(args) + 1}"
    return list(await conn.fetch(sql, *args, limit))


async def subnet(conn: Conn, id_: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    rows = await subnets(conn, "s.id = $1", id_, lock=lock)
    return rows[0] if rows else None


async def project_usage(conn: Conn, pool_id: UUID, project_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT cidr FROM subnets WHERE subnetpool_id = $1 AND project_id = $2", pool_id, project_id
    )
    return [str(r["cidr"]) for r in rows]


# ---------------------------------------------------------------- RBAC


async def rbac_rows(conn: Conn, where: str, *args: Any, lock: bool = False) -> list[asyncpg.Record]:
    sql = f"SELECT * FROM rbac_policies WHERE {where} ORDER BY id"
    return list(await conn.fetch(sql + (" FOR UPDATE" if lock else ""), *args))


async def insert_rbac(
    conn: Conn, *, id_: UUID, object_type: str, object_id: UUID, project_id: str, target: str
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """INSERT INTO rbac_policies (id, object_type, object_id, project_id, target_project, action)
           VALUES ($1, $2, $3, $4, $5, 'access_as_shared') RETURNING *""",
        id_,
        object_type,
        object_id,
        project_id,
        target,
    )
    assert row is not None
    return row
