"""SQL of the topology service: networks, subnets, network RBAC and the IPAM mirror.

No policy here: callers decide who may act. Readers only ever see rows in state ``active``;
rows of a saga in flight (``allocating``/``deleting``) are the saga's and the reconciler's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t

Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"

# $1 = the caller's project, $2 = is admin
_NET_VISIBLE = """($2 OR n.project_id = $1 OR EXISTS (SELECT 1 FROM network_rbac r
                   WHERE r.network_id = n.id AND r.target_project IN ('*', $1)))"""
_NET_SHARED = """EXISTS (SELECT 1 FROM network_rbac r WHERE r.network_id = n.id
                 AND r.action = 'access_as_shared' AND r.target_project IN ('*', $1))"""
_SCOPE = """(SELECT p.address_scope_id FROM subnets s JOIN subnetpools p ON p.id = s.subnetpool_id
             WHERE s.network_id = n.id AND s.state = 'active' AND p.ip_version = {v}
             ORDER BY s.created_at DESC, s.id DESC LIMIT 1)"""
_NET_COLS = f"""n.*, {_NET_SHARED} AS shared,
    ARRAY(SELECT s.id FROM subnets s WHERE s.network_id = n.id AND s.state = 'active'
          ORDER BY s.created_at, s.id) AS subnet_ids,
    {_SCOPE.format(v=4)} AS ipv4_address_scope, {_SCOPE.format(v=6)} AS ipv6_address_scope"""


# ---------------------------------------------------------------- networks


def network_view(row: asyncpg.Record) -> t.Network:
    return t.Network(
        id=row["id"],
        name=row["name"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        admin_state_up=row["admin_state_up"],
        shared=row["shared"],
        router_external=row["router_external"],
        mtu=row["mtu"],
        provider_segmentation_id=row["segmentation_id"],
        status=row["status"],
        subnets=list(row["subnet_ids"]),
        ipv4_address_scope=row["ipv4_address_scope"],
        ipv6_address_scope=row["ipv6_address_scope"],
        port_security_enabled=row["port_security_enabled"],
        description=row["description"],
        tags=list(row["tags"]),
        revision_number=row["revision_number"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def networks(
    conn: Conn, *, project: str, admin: bool, where: str = "TRUE", args: tuple[Any, ...] = ()
) -> list[asyncpg.Record]:
    sql = f"SELECT {_NET_COLS} FROM networks n WHERE {_NET_VISIBLE} AND {where} ORDER BY n.created_at, n.id"
    return list(await conn.fetch(sql, project, admin, *args))


async def network(conn: Conn, id_: UUID, *, project: str, admin: bool, lock: bool = False) -> asyncpg.Record | None:
    if lock:
        await conn.execute("SELECT 1 FROM networks WHERE id = $1 FOR UPDATE", id_)
    rows = await networks(conn, project=project, admin=admin, where="n.id = $3", args=(id_,))
    return rows[0] if rows else None


@dataclass(frozen=True)
class NetAccess:
    """What a create needs to know about a network for a caller: ownership, MTU and RBAC entries
    (``_NET_VISIBLE`` / ``_NET_SHARED`` decided in Python, so one query serves a whole batch)."""

    id: UUID
    project_id: str
    mtu: int
    rbac: tuple[tuple[str, str], ...]
    """(action, target project)"""

    def visible(self, project: str, admin: bool) -> bool:
        return admin or self.project_id == project or any(target in ("*", project) for _, target in self.rbac)

    def shared(self, project: str) -> bool:
        return any(a == "access_as_shared" and target in ("*", project) for a, target in self.rbac)


async def networks_access(conn: Conn, ids: Iterable[UUID]) -> dict[UUID, NetAccess]:
    rows = await conn.fetch(
        """SELECT n.id, n.project_id, n.mtu,
                  ARRAY(SELECT r.action FROM network_rbac r WHERE r.network_id = n.id ORDER BY r.id) AS actions,
                  ARRAY(SELECT r.target_project FROM network_rbac r WHERE r.network_id = n.id ORDER BY r.id) AS targets
           FROM networks n WHERE n.id = ANY($1::uuid[])""",
        list(set(ids)),
    )
    return {
        r["id"]: NetAccess(r["id"], r["project_id"], r["mtu"], tuple(zip(r["actions"], r["targets"], strict=True)))
        for r in rows
    }


async def bump_network(conn: Conn, network_id: UUID) -> None:
    """Subnet changes bump the parent network's revision (SPEC §1.4, §7.2)."""
    await conn.execute(
        "UPDATE networks SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1", network_id
    )


async def rbac_targets(conn: Conn, network_id: UUID, action: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT target_project FROM network_rbac WHERE network_id = $1 AND action = $2", network_id, action
    )
    return {r["target_project"] for r in rows}


# ---------------------------------------------------------------- subnets

_SUBNET_VISIBLE = """($2 OR s.project_id = $1 OR EXISTS (SELECT 1 FROM network_rbac r
                      WHERE r.network_id = s.network_id AND r.target_project IN ('*', $1)))"""


def subnet_view(row: asyncpg.Record) -> t.Subnet:
    return t.Subnet(
        id=row["id"],
        name=row["name"],
        network_id=row["network_id"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        ip_version=row["ip_version"],
        cidr=str(row["cidr"]),
        subnetpool_id=row["subnetpool_id"],
        gateway_ip=str(row["gateway_ip"]) if row["gateway_ip"] is not None else None,
        allocation_pools=[im.AllocationPool(**p) for p in row["allocation_pools"]],
        enable_dhcp=row["enable_dhcp"],
        ipv6_ra_mode=row["ipv6_ra_mode"],
        ipv6_address_mode=row["ipv6_address_mode"],
        dns_nameservers=list(row["dns_nameservers"]),
        host_routes=[t.HostRoute(**r) for r in row["host_routes"]],
        service_types=list(row["service_types"]),
        description=row["description"],
        tags=list(row["tags"]),
        revision_number=row["revision_number"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def subnets(
    conn: Conn, *, project: str, admin: bool, where: str = "TRUE", args: tuple[Any, ...] = (), lock: bool = False
) -> list[asyncpg.Record]:
    sql = (
        f"SELECT s.* FROM subnets s WHERE s.state = 'active' AND {_SUBNET_VISIBLE} AND {where} "
        "ORDER BY s.created_at, s.id"
    )
    return list(await conn.fetch(sql + (" FOR UPDATE OF s" if lock else ""), project, admin, *args))


async def subnet(conn: Conn, id_: UUID, *, project: str, admin: bool, lock: bool = False) -> asyncpg.Record | None:
    rows = await subnets(conn, project=project, admin=admin, where="s.id = $3", args=(id_,), lock=lock)
    return rows[0] if rows else None


async def network_subnets(conn: Conn, network_ids: list[UUID]) -> list[asyncpg.Record]:
    """Every active subnet of these networks, whoever owns it (for rules, not for replies)."""
    return list(
        await conn.fetch(
            "SELECT s.* FROM subnets s WHERE s.network_id = ANY($1::uuid[]) AND s.state = 'active' "
            "ORDER BY s.created_at, s.id",
            network_ids,
        )
    )


async def subnet_any(conn: Conn, id_: UUID) -> asyncpg.Record | None:
    """An active subnet regardless of visibility (the caller decides what to tell whom)."""
    return await conn.fetchrow("SELECT * FROM subnets WHERE id = $1 AND state = 'active'", id_)


# ---------------------------------------------------------------- network RBAC


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
    conn: Conn, *, id_: UUID, network_id: UUID, project_id: str, target: str, action: str
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


# ---------------------------------------------------------------- IPAM mirror


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
