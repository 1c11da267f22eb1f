"""SQL of networks: rows as the caller may see them, their views, and what creates read in batches.

No policy here: callers decide who may act. Visibility has one rule (owner, admin, or an RBAC entry
for ``*`` or the caller's project), written once in SQL here and once in Python in ``NetAccess``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import asyncpg

from scopenet.contracts import topology as t
from scopenet.services.topology.networks.rules import NetAccess
from scopenet.services.topology.sqllist import Column, Params, Table, common_columns

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


def _subnets(p: Params, wanted: list[Any]) -> str:
    ids = [str(w) for w in wanted]
    return f"""EXISTS (SELECT 1 FROM subnets s WHERE s.network_id = n.id AND s.state = 'active'
                       AND s.id::text = ANY({p.add(ids)}::text[]))"""


TABLE = Table(
    resource="network",
    source="networks n",
    where="TRUE",
    visible="""(n.project_id = $me OR EXISTS (SELECT 1 FROM network_rbac r
                WHERE r.network_id = n.id AND r.target_project IN ('*', $me)))""",
    columns={
        "id": Column("n.id", "uuid"),
        "name": Column("n.name"),
        "project_id": Column("n.project_id"),
        "tenant_id": Column("n.project_id"),
        "admin_state_up": Column("n.admin_state_up", "bool"),
        "shared": Column(_NET_SHARED.replace("$1", "$me"), "bool"),
        "router:external": Column("n.router_external", "bool"),
        "mtu": Column("n.mtu", "int"),
        "provider:network_type": Column("'vxlan'::text"),
        "provider:physical_network": Column("NULL::text", nullable=True),
        "provider:segmentation_id": Column("n.segmentation_id", "int"),
        "status": Column("n.status"),
        "subnets": Column(
            """to_json(ARRAY(SELECT s.id FROM subnets s WHERE s.network_id = n.id AND s.state = 'active'
                             ORDER BY s.created_at, s.id))""",
            "json",
            sortable=False,
        ),
        "ipv4_address_scope": Column(_SCOPE.format(v=4), "uuid", nullable=True, sortable=False, filterable=False),
        "ipv6_address_scope": Column(_SCOPE.format(v=6), "uuid", nullable=True, sortable=False, filterable=False),
        "port_security_enabled": Column("n.port_security_enabled", "bool"),
        **common_columns("n"),
    },
    natural=("n.created_at", "n.id"),
    id_sql="n.id",
    matchers={"subnets": _subnets},
    tags_sql="n.tags",
    aliases={
        "router_external": "router:external",
        "provider_network_type": "provider:network_type",
        "provider_physical_network": "provider:physical_network",
        "provider_segmentation_id": "provider:segmentation_id",
    },
)
"""Network lists in SQL (``sqllist``); the JSON is ``network_view``'s, built by Postgres."""


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
    conn: asyncpg.Connection, *, project: str, admin: bool, where: str = "TRUE", args: tuple[Any, ...] = ()
) -> list[asyncpg.Record]:
    sql = f"SELECT {_NET_COLS} FROM networks n WHERE {_NET_VISIBLE} AND {where} ORDER BY n.created_at, n.id"
    return list(await conn.fetch(sql, project, admin, *args))


async def network(
    conn: asyncpg.Connection, id_: UUID, *, project: str, admin: bool, lock: bool = False
) -> asyncpg.Record | None:
    if lock:
        await conn.execute("SELECT 1 FROM networks WHERE id = $1 FOR UPDATE", id_)
    rows = await networks(conn, project=project, admin=admin, where="n.id = $3", args=(id_,))
    return rows[0] if rows else None


async def networks_access(conn: asyncpg.Connection, ids: Iterable[UUID]) -> dict[UUID, NetAccess]:
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


async def network_owner(conn: asyncpg.Connection, network_id: UUID) -> str | None:
    return await conn.fetchval("SELECT project_id FROM networks WHERE id = $1", network_id)  # type: ignore[no-any-return]


async def bump_network(conn: asyncpg.Connection, network_id: UUID) -> None:
    """Subnet changes bump the parent network's revision (as Neutron's do)."""
    await conn.execute(
        "UPDATE networks SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1", network_id
    )


async def next_segmentation_id(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT nextval('segmentation_ids')")  # type: ignore[no-any-return]


async def insert_network(
    conn: asyncpg.Connection, *, id_: UUID, body: t.NetworkCreateBody, owner: str, mtu: int, segmentation_id: int
) -> None:
    await conn.execute(
        """INSERT INTO networks (id, name, project_id, admin_state_up, router_external, mtu,
               segmentation_id, port_security_enabled, description, tags)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        id_,
        body.name,
        owner,
        body.admin_state_up,
        body.router_external,
        mtu,
        segmentation_id,
        body.port_security_enabled,
        body.description,
        list(body.tags),
    )


async def update_network(conn: asyncpg.Connection, id_: UUID, body: t.NetworkUpdateBody) -> None:
    """Set what the update names (``None`` keeps the value) and bump the revision."""
    await conn.execute(
        """UPDATE networks SET name = coalesce($2, name), admin_state_up = coalesce($3, admin_state_up),
               router_external = coalesce($4, router_external), mtu = coalesce($5, mtu),
               port_security_enabled = coalesce($6, port_security_enabled),
               description = coalesce($7, description), tags = coalesce($8, tags),
               revision_number = revision_number + 1, updated_at = now()
           WHERE id = $1""",
        id_,
        body.name,
        body.admin_state_up,
        body.router_external,
        body.mtu,
        body.port_security_enabled,
        body.description,
        list(body.tags) if body.tags is not None else None,
    )


async def user_ports(conn: asyncpg.Connection, network_id: UUID) -> int:
    """Ports that keep a network: all but DHCP ports and ports whose delete was acknowledged
    (``deleting``: gone for everyone, finished with the network)."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT count(*) FROM ports WHERE network_id = $1 AND device_owner <> $2 AND state <> 'deleting'",
        network_id,
        t.DEVICE_OWNER_DHCP,
    )


async def port_ids(conn: asyncpg.Connection, network_id: UUID) -> list[UUID]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM ports WHERE network_id = $1", network_id)]


async def subnet_ids(conn: asyncpg.Connection, network_id: UUID) -> list[UUID]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM subnets WHERE network_id = $1", network_id)]


async def leftovers(conn: asyncpg.Connection, network_id: UUID) -> int:
    """Ports and subnets of any state still on the network."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT (SELECT count(*) FROM ports WHERE network_id = $1) + "
        "(SELECT count(*) FROM subnets WHERE network_id = $1)",
        network_id,
    )


async def delete_network(conn: asyncpg.Connection, network_id: UUID) -> None:
    await conn.execute("DELETE FROM networks WHERE id = $1", network_id)
