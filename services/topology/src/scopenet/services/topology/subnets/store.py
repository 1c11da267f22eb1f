"""SQL of subnets: rows as the caller may see them, their views, and the saga's state changes.

Readers only ever see rows in state ``active``; rows of a saga in flight (``allocating`` /
``deleting``) are the saga's and the reconciler's. The batched create writes with one statement
per step (``insert_allocating``, ``complete``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.services.topology.specs.store import PORT_ROUTERS
from scopenet.services.topology.sqllist import Column, Table, common_columns
from scopenet.services.topology.subnets.rules import NewSubnet
from scopenet.store.outbox import Row

# $1 = the caller's project, $2 = is admin
_SUBNET_VISIBLE = """($2 OR s.project_id = $1 OR EXISTS (SELECT 1 FROM network_rbac r
                      WHERE r.network_id = s.network_id AND r.target_project IN ('*', $1)))"""


def _objects(column: str, *keys: str) -> str:
    """A jsonb array of objects rebuilt with the model's keys in the model's order."""
    pairs = ", ".join(f"'{k}', e->>'{k}'" for k in keys)
    return f"""COALESCE((SELECT json_agg(json_build_object({pairs}) ORDER BY o)
                         FROM jsonb_array_elements({column}) WITH ORDINALITY AS x(e, o)), '[]'::json)"""


_POOLS = _objects("s.allocation_pools", "start", "end")
_ROUTES = _objects("s.host_routes", "destination", "nexthop")

TABLE = Table(
    resource="subnet",
    source="subnets s",
    where="s.state = 'active'",
    visible="""(s.project_id = $me OR EXISTS (SELECT 1 FROM network_rbac r
                WHERE r.network_id = s.network_id AND r.target_project IN ('*', $me)))""",
    columns={
        "id": Column("s.id", "uuid"),
        "name": Column("s.name"),
        "network_id": Column("s.network_id", "uuid"),
        "project_id": Column("s.project_id"),
        "tenant_id": Column("s.project_id"),
        "ip_version": Column("s.ip_version", "int"),
        "cidr": Column("s.cidr::text"),
        "subnetpool_id": Column("s.subnetpool_id", "uuid", nullable=True),
        "gateway_ip": Column("host(s.gateway_ip)", nullable=True),
        "allocation_pools": Column(
            "s.allocation_pools",
            "json",
            sortable=False,
            filterable=False,
            json=_objects("s.allocation_pools", "start", "end"),
        ),
        "enable_dhcp": Column("s.enable_dhcp", "bool"),
        "ipv6_ra_mode": Column("s.ipv6_ra_mode", nullable=True),
        "ipv6_address_mode": Column("s.ipv6_address_mode", nullable=True),
        "dns_nameservers": Column("s.dns_nameservers", "json", sortable=False, filterable=False),
        "host_routes": Column(
            "s.host_routes",
            "json",
            sortable=False,
            filterable=False,
            json=_objects("s.host_routes", "destination", "nexthop"),
        ),
        "service_types": Column("s.service_types", "json", sortable=False, filterable=False),
        "segment_id": Column("NULL::uuid", "uuid", nullable=True),
        **common_columns("s"),
    },
    natural=("s.created_at", "s.id"),
    id_sql="s.id",
    tags_sql="s.tags",
)
"""Subnet lists in SQL (``sqllist``); the JSON is ``subnet_view``'s, built by Postgres."""


def pools_json(pools: Sequence[im.AllocationPool]) -> str:
    return json.dumps([p.model_dump() for p in pools])


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


# ---------------------------------------------------------------- reads


async def subnets(
    conn: asyncpg.Connection,
    *,
    project: str,
    admin: bool,
    where: str = "TRUE",
    args: tuple[Any, ...] = (),
    lock: bool = False,
) -> list[asyncpg.Record]:
    sql = (
        f"SELECT s.* FROM subnets s WHERE s.state = 'active' AND {_SUBNET_VISIBLE} AND {where} "
        "ORDER BY s.created_at, s.id"
    )
    return list(await conn.fetch(sql + (" FOR UPDATE OF s" if lock else ""), project, admin, *args))


async def subnet(
    conn: asyncpg.Connection, id_: UUID, *, project: str, admin: bool, lock: bool = False
) -> asyncpg.Record | None:
    rows = await subnets(conn, project=project, admin=admin, where="s.id = $3", args=(id_,), lock=lock)
    return rows[0] if rows else None


async def network_subnets(conn: asyncpg.Connection, network_ids: list[UUID]) -> list[asyncpg.Record]:
    """Every active subnet of these networks, whoever owns it (for rules, not for replies)."""
    return list(
        await conn.fetch(
            "SELECT s.* FROM subnets s WHERE s.network_id = ANY($1::uuid[]) AND s.state = 'active' "
            "ORDER BY s.created_at, s.id",
            network_ids,
        )
    )


async def active_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> set[UUID]:
    """Which of these subnets exist (active), regardless of visibility (the caller decides what
    to tell whom)."""
    if not ids:
        return set()
    rows = await conn.fetch("SELECT id FROM subnets WHERE id = ANY($1::uuid[]) AND state = 'active'", list(ids))
    return {r["id"] for r in rows}


async def gateway_holder(conn: asyncpg.Connection, subnet_id: UUID, gateway: str) -> UUID | None:
    """The router port holding the subnet's gateway address, if any."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """SELECT i.port_id FROM port_ips i JOIN ports p ON p.id = i.port_id
           WHERE i.subnet_id = $1 AND i.ip_address = $2::inet AND p.device_owner = ANY($3::text[])""",
        subnet_id,
        gateway,
        list(t.ROUTER_DEVICE_OWNERS),
    )


async def port_users(conn: asyncpg.Connection, subnet_id: UUID) -> list[asyncpg.Record]:
    """The ports with an address on the subnet (``id``, ``device_owner``)."""
    return list(
        await conn.fetch(
            """SELECT DISTINCT p.id, p.device_owner FROM port_ips i JOIN ports p ON p.id = i.port_id
               WHERE i.subnet_id = $1""",
            subnet_id,
        )
    )


async def mirrored_scopes(conn: asyncpg.Connection, ids: Sequence[UUID]) -> set[UUID]:
    """Which of these address scopes the IPAM mirror already holds."""
    return {r["id"] for r in await conn.fetch("SELECT id FROM address_scopes WHERE id = ANY($1)", list(ids))}


# ---------------------------------------------------------------- writes


async def update_subnet(
    conn: asyncpg.Connection,
    id_: UUID,
    body: t.SubnetUpdateBody,
    *,
    gateway: str | None,
    pools: Sequence[im.AllocationPool],
    dns: list[str] | None,
    routes: list[dict[str, str]] | None,
) -> None:
    """Set what the update names (``None`` keeps the value; gateway and pools are always IPAM's
    current ones) and bump the revision."""
    await conn.execute(
        """UPDATE subnets SET name = coalesce($2, name), description = coalesce($3, description),
               gateway_ip = $4::inet, allocation_pools = $5::text::jsonb,
               enable_dhcp = coalesce($6, enable_dhcp), dns_nameservers = coalesce($7, dns_nameservers),
               host_routes = coalesce($8::text::jsonb, host_routes),
               service_types = coalesce($9, service_types), tags = coalesce($10, tags),
               revision_number = revision_number + 1, updated_at = now()
           WHERE id = $1""",
        id_,
        body.name,
        body.description,
        gateway,
        pools_json(pools),
        body.enable_dhcp,
        dns,
        json.dumps(routes) if routes is not None else None,
        list(body.service_types) if body.service_types is not None else None,
        list(body.tags) if body.tags is not None else None,
    )


async def lock_any(conn: asyncpg.Connection, id_: UUID) -> asyncpg.Record | None:
    """The subnet's row in whatever state, locked."""
    return await conn.fetchrow("SELECT * FROM subnets WHERE id = $1 FOR UPDATE", id_)


async def lock_deleting(conn: asyncpg.Connection, id_: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM subnets WHERE id = $1 AND state = 'deleting' FOR UPDATE", id_)


async def mark_deleting(conn: asyncpg.Connection, id_: UUID) -> None:
    await conn.execute("UPDATE subnets SET state = 'deleting', state_at = now() WHERE id = $1", id_)


async def claim_allocating(conn: asyncpg.Connection, id_: UUID) -> bool:
    """``allocating`` → ``deleting``, atomically: true when this caller took the row."""
    return bool(
        await conn.fetchval(
            "UPDATE subnets SET state = 'deleting', state_at = now() WHERE id = $1 AND state = 'allocating' "
            "RETURNING true",
            id_,
        )
    )


async def revert_deleting(conn: asyncpg.Connection, id_: UUID) -> None:
    await conn.execute(
        "UPDATE subnets SET state = 'active', state_at = now() WHERE id = $1 AND state = 'deleting'", id_
    )


async def delete_if_deleting(conn: asyncpg.Connection, id_: UUID) -> None:
    await conn.execute("DELETE FROM subnets WHERE id = $1 AND state = 'deleting'", id_)


async def drop_port_ips(conn: asyncpg.Connection, id_: UUID, port_ids: list[UUID] | None = None) -> None:
    """The addresses ports hold on the subnet (those of ``port_ids``, or all)."""
    if port_ids is None:
        await conn.execute("DELETE FROM port_ips WHERE subnet_id = $1", id_)
    else:
        await conn.execute("DELETE FROM port_ips WHERE subnet_id = $1 AND port_id = ANY($2::uuid[])", id_, port_ids)


async def delete_subnet(conn: asyncpg.Connection, id_: UUID) -> None:
    await conn.execute("DELETE FROM subnets WHERE id = $1", id_)


# ---------------------------------------------------------------- the batched create

_INSERT = """
INSERT INTO subnets (id, network_id, project_id, name, ip_version, enable_dhcp, ipv6_ra_mode, ipv6_address_mode,
    dns_nameservers, host_routes, service_types, description, tags, state)
SELECT x.id, x.network_id, x.project_id, x.name, x.ip_version, x.dhcp, x.ra, x.am,
    ARRAY(SELECT jsonb_array_elements_text(x.dns::jsonb)), x.routes::jsonb,
    ARRAY(SELECT jsonb_array_elements_text(x.st::jsonb)), x.descr,
    ARRAY(SELECT jsonb_array_elements_text(x.tags::jsonb)), 'allocating'
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::smallint[], $6::bool[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
     AS x(id, network_id, project_id, name, ip_version, dhcp, ra, am, dns, routes, st, descr, tags)"""


async def insert_allocating(conn: asyncpg.Connection, rows: list[NewSubnet]) -> None:
    """Every row of the batch, state ``allocating``, in one statement."""
    await conn.execute(
        _INSERT,
        [n.id for n in rows],
        [n.body.network_id for n in rows],
        [n.owner for n in rows],
        [n.body.name for n in rows],
        [n.body.ip_version for n in rows],
        [n.body.enable_dhcp for n in rows],
        [n.body.ipv6_ra_mode for n in rows],
        [n.body.ipv6_address_mode for n in rows],
        [json.dumps(n.dns) for n in rows],
        [json.dumps(n.routes) for n in rows],
        [json.dumps(list(n.body.service_types)) for n in rows],
        [n.body.description for n in rows],
        [json.dumps(list(n.body.tags)) for n in rows],
    )


_COMPLETE = f"""
WITH x AS (
    SELECT * FROM unnest($1::uuid[], $2::cidr[], $3::uuid[], $4::inet[], $5::text[], $6::smallint[])
        AS x(id, cidr, pool, gw, pools, ip_version)
), up AS (
    UPDATE subnets s SET cidr = x.cidr, subnetpool_id = x.pool, gateway_ip = x.gw, allocation_pools = x.pools::jsonb,
        ip_version = x.ip_version, state = 'active', state_at = $7, created_at = $7, updated_at = $7
    FROM x WHERE s.id = x.id AND s.state = 'allocating' RETURNING s.id, s.network_id
), learn AS (
    -- a pool seen here before its event arrived (any event overrides it: revision -1)
    INSERT INTO subnetpools (id, ip_version, address_scope_id, revision_number)
    SELECT DISTINCT ON (p.id) p.id, p.v, p.scope, -1
    FROM unnest($8::uuid[], $9::smallint[], $10::uuid[]) AS p(id, v, scope)
    ON CONFLICT (id) DO NOTHING
), bump AS (
    -- subnet changes bump the parent network's revision (as Neutron's do)
    UPDATE networks n SET revision_number = n.revision_number + c.k, updated_at = $7
    FROM (SELECT network_id, count(*) AS k FROM up GROUP BY network_id) c WHERE n.id = c.network_id
), ev AS (
    INSERT INTO outbox (event_id, subject, payload, headers)
    SELECT e.event_id, e.subject, e.payload::jsonb, e.headers::jsonb
    FROM unnest($11::text[], $12::text[], $13::text[], $1::uuid[], $15::text[]) WITH ORDINALITY
         AS e(event_id, subject, payload, id, headers, n)
    JOIN up ON up.id = e.id ORDER BY e.n
)
SELECT ARRAY(SELECT id FROM up) AS done,
       ARRAY(SELECT DISTINCT r.router_id FROM ({PORT_ROUTERS.replace("$1", "$14")}) r) AS routers"""


async def complete(
    conn: asyncpg.Connection,
    allocs: list[im.Subnet],
    *,
    now: datetime,
    events: list[Row],
    network_ids: list[UUID],
) -> tuple[list[UUID], list[UUID]]:
    """Rows ``active`` with what IPAM chose, pools mirrored, networks bumped, ``events`` (outbox
    rows, one per subnet, in order) written, in one statement. Returns (the subnets completed: the
    others were rolled back meanwhile, the routers with a port on ``network_ids``)."""
    pooled = [a for a in allocs if a.subnetpool_id is not None]
    row = await conn.fetchrow(
        _COMPLETE,
        [a.id for a in allocs],
        [a.cidr for a in allocs],
        [a.subnetpool_id for a in allocs],
        [a.gateway_ip for a in allocs],
        [pools_json(a.allocation_pools) for a in allocs],
        [a.ip_version for a in allocs],
        now,
        [a.subnetpool_id for a in pooled],
        [a.ip_version for a in pooled],
        [a.address_scope_id for a in pooled],
        [str(e[0]) for e in events],
        [e[1] for e in events],
        [e[2] for e in events],
        network_ids,
        [e[3] for e in events],
    )
    assert row is not None
    return list(row["done"]), list(row["routers"])
