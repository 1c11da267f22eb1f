"""SQL of routers, their interfaces and their gateway port; row → ``Router`` views.

No policy here: the callers (``service``, ``interfaces``, ``gateways``) decide who may act. Rows of
a saga in flight (``allocating``/``deleting``) are never shown.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from scopenet.contracts import topology as t
from scopenet.services.topology.sqllist import Column, Table, common_columns

# ---------------------------------------------------------------- views


_GATEWAY_JSON = """CASE WHEN gp.id IS NULL THEN NULL ELSE json_build_object(
    'network_id', gp.network_id, 'enable_snat', r.enable_snat,
    'external_fixed_ips', COALESCE((SELECT json_agg(json_build_object('subnet_id', i.subnet_id,
                                                                      'ip_address', host(i.ip_address))
                                                    ORDER BY i.ip_address)
                                    FROM port_ips i WHERE i.port_id = gp.id), '[]'::json)) END"""
_ROUTES_JSON = """COALESCE((SELECT json_agg(json_build_object('destination', e->>'destination',
                                                              'nexthop', e->>'nexthop') ORDER BY o)
                            FROM jsonb_array_elements(r.routes) WITH ORDINALITY AS x(e, o)), '[]'::json)"""

TABLE = Table(
    resource="router",
    source="routers r LEFT JOIN ports gp ON gp.id = r.gw_port_id AND gp.state = 'active'",
    where="r.state = 'active'",
    visible="r.project_id = $me",
    columns={
        "id": Column("r.id", "uuid"),
        "name": Column("r.name"),
        "project_id": Column("r.project_id"),
        "tenant_id": Column("r.project_id"),
        "admin_state_up": Column("r.admin_state_up", "bool"),
        "status": Column("r.status"),
        "status_reason": Column("r.status_reason", nullable=True),
        "external_gateway_info": Column("gp.id", "json", sortable=False, filterable=False, json=_GATEWAY_JSON),
        "routes": Column("r.routes", "json", sortable=False, filterable=False, json=_ROUTES_JSON),
        **common_columns("r"),
    },
    natural=("r.created_at", "r.id"),
    id_sql="r.id",
    tags_sql="r.tags",
)
"""Router lists in SQL (``sqllist``); the JSON is ``router_view``'s, built by Postgres."""


def router_view(row: asyncpg.Record, gw: asyncpg.Record | None, gw_ips: list[asyncpg.Record]) -> t.Router:
    info = None
    if gw is not None:
        info = t.ExternalGatewayInfo(
            network_id=gw["network_id"],
            enable_snat=row["enable_snat"],
            external_fixed_ips=[t.FixedIp(subnet_id=i["subnet_id"], ip_address=str(i["ip_address"])) for i in gw_ips],
        )
    return t.Router(
        id=row["id"],
        name=row["name"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        admin_state_up=row["admin_state_up"],
        status=row["status"],
        status_reason=row["status_reason"],
        external_gateway_info=info,
        routes=[t.HostRoute(**r) for r in row["routes"]],
        description=row["description"],
        tags=list(row["tags"]),
        revision_number=row["revision_number"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def load_routers(
    conn: asyncpg.Connection, *, project: str, admin: bool, where: str = "TRUE", args: tuple[Any, ...] = ()
) -> list[t.Router]:
    rows = await conn.fetch(
        f"""SELECT r.* FROM routers r WHERE r.state = 'active' AND ($2 OR r.project_id = $1) AND {where}
            ORDER BY r.created_at, r.id""",
        project,
        admin,
        *args,
    )
    gw_ids = [r["gw_port_id"] for r in rows if r["gw_port_id"] is not None]
    gws = {
        g["id"]: g
        for g in await conn.fetch(
            "SELECT id, network_id FROM ports WHERE id = ANY($1::uuid[]) AND state = 'active'", gw_ids
        )
    }
    ips: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for i in await conn.fetch(
        "SELECT * FROM port_ips WHERE port_id = ANY($1::uuid[]) ORDER BY family(ip_address), ip_address", gw_ids
    ):
        ips.setdefault(i["port_id"], []).append(i)
    return [router_view(r, gws.get(r["gw_port_id"]), ips.get(r["gw_port_id"], [])) for r in rows]


async def one_router(
    conn: asyncpg.Connection, id_: uuid.UUID, *, project: str = "", admin: bool = True
) -> t.Router | None:
    routers = await load_routers(conn, project=project, admin=admin, where="r.id = $3", args=(id_,))
    return routers[0] if routers else None


async def routers_by_id(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> list[t.Router]:
    """The views of these active routers, whoever owns them."""
    return await load_routers(conn, project="", admin=True, where="r.id = ANY($3::uuid[])", args=(ids,))


async def router_subnets(conn: asyncpg.Connection, router_id: uuid.UUID) -> list[asyncpg.Record]:
    """Subnets the router is attached to: its interfaces' subnets and every subnet of its gateway
    network (rule 60's overlap domain), each with ``kind`` 'interface' or 'gateway'."""
    return list(
        await conn.fetch(
            """SELECT DISTINCT s.id, s.cidr, s.ip_version, s.network_id, 'interface' AS kind FROM router_ports rp
                   JOIN port_ips i ON i.port_id = rp.port_id JOIN subnets s ON s.id = i.subnet_id
                   WHERE rp.router_id = $1
               UNION SELECT s.id, s.cidr, s.ip_version, s.network_id, 'gateway' FROM routers r
                   JOIN ports p ON p.id = r.gw_port_id JOIN subnets s ON s.network_id = p.network_id
                   WHERE r.id = $1 AND s.state = 'active'""",
            router_id,
        )
    )


# ---------------------------------------------------------------- router rows


async def lock(conn: asyncpg.Connection, router_id: uuid.UUID, *, active: bool = True) -> asyncpg.Record | None:
    """The router row, locked (only when active, unless ``active=False``)."""
    sql = "SELECT * FROM routers WHERE id = $1" + (" AND state = 'active'" if active else "") + " FOR UPDATE"
    return await conn.fetchrow(sql, router_id)


async def insert(
    conn: asyncpg.Connection, *, id_: uuid.UUID, owner: str, body: t.RouterCreateBody, agent: str | None, state: str
) -> None:
    await conn.execute(
        """INSERT INTO routers (id, project_id, name, admin_state_up, description, tags, agent_id, state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        id_,
        owner,
        body.name,
        body.admin_state_up,
        body.description,
        list(body.tags),
        agent,
        state,
    )


async def update(
    conn: asyncpg.Connection,
    router_id: uuid.UUID,
    *,
    name: str | None,
    admin_state_up: bool | None,
    description: str | None,
    tags: list[str] | None,
    routes: list[dict[str, str]] | None,
    enable_snat: bool | None,
) -> None:
    """Set what is given (None: unchanged), with one revision bump."""
    await conn.execute(
        """UPDATE routers SET name = coalesce($2, name), admin_state_up = coalesce($3, admin_state_up),
               description = coalesce($4, description), tags = coalesce($5, tags),
               routes = coalesce($6::text::jsonb, routes), enable_snat = coalesce($7, enable_snat),
               revision_number = revision_number + 1, updated_at = now()
           WHERE id = $1""",
        router_id,
        name,
        admin_state_up,
        description,
        tags,
        json.dumps(routes) if routes is not None else None,
        enable_snat,
    )


async def bump(conn: asyncpg.Connection, router_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE routers SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1", router_id
    )


async def set_gateway(conn: asyncpg.Connection, router_id: uuid.UUID, *, port_id: uuid.UUID, enable_snat: bool) -> None:
    """Point the router at its (new) gateway port; a router waiting for it becomes active."""
    await conn.execute(
        "UPDATE routers SET gw_port_id = $2, enable_snat = $3, state = 'active', state_at = now() WHERE id = $1",
        router_id,
        port_id,
        enable_snat,
    )


async def clear_gateway(conn: asyncpg.Connection, router_id: uuid.UUID) -> None:
    await conn.execute("UPDATE routers SET gw_port_id = NULL WHERE id = $1", router_id)


async def ports_and_fips(conn: asyncpg.Connection, router_id: uuid.UUID) -> int:
    """Interfaces and floating IPs the router still has (it cannot be deleted with any)."""
    return int(
        await conn.fetchval(
            "SELECT (SELECT count(*) FROM router_ports WHERE router_id = $1) + "
            "(SELECT count(*) FROM floatingips WHERE router_id = $1)",
            router_id,
        )
    )


async def mark_deleting(conn: asyncpg.Connection, router_id: uuid.UUID) -> None:
    await conn.execute("UPDATE routers SET state = 'deleting', state_at = now() WHERE id = $1", router_id)


async def drop(conn: asyncpg.Connection, router_id: uuid.UUID, *, states: tuple[str, ...]) -> None:
    """Delete the row if it is (still) in one of these saga states."""
    await conn.execute("DELETE FROM routers WHERE id = $1 AND state = ANY($2::text[])", router_id, list(states))


async def gateway_ports(conn: asyncpg.Connection, router_id: uuid.UUID) -> list[uuid.UUID]:
    """Every gateway port made for the router (the current one and any a crash left behind)."""
    rows = await conn.fetch(
        "SELECT id FROM ports WHERE device_id = $1 AND device_owner = $2",
        str(router_id),
        t.DEVICE_OWNER_ROUTER_GATEWAY,
    )
    return [r["id"] for r in rows]


# ---------------------------------------------------------------- interfaces


async def interface_ports(conn: asyncpg.Connection, router_id: uuid.UUID) -> list[asyncpg.Record]:
    """The router's active interface ports."""
    return list(
        await conn.fetch(
            "SELECT p.* FROM router_ports rp JOIN ports p ON p.id = rp.port_id WHERE rp.router_id = $1 "
            "AND p.state = 'active'",
            router_id,
        )
    )


async def v6_only_port(conn: asyncpg.Connection, router_id: uuid.UUID, network_id: uuid.UUID) -> uuid.UUID | None:
    """The router's interface on this network with IPv6 addresses only (a new IPv6 subnet joins it)."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """SELECT p.id FROM router_ports rp JOIN ports p ON p.id = rp.port_id
           WHERE rp.router_id = $1 AND p.network_id = $2 AND p.state = 'active'
             AND EXISTS (SELECT 1 FROM port_ips i WHERE i.port_id = p.id AND family(i.ip_address) = 6)
             AND NOT EXISTS (SELECT 1 FROM port_ips i WHERE i.port_id = p.id AND family(i.ip_address) = 4)""",
        router_id,
        network_id,
    )


async def has_v6_port(conn: asyncpg.Connection, router_id: uuid.UUID, network_id: uuid.UUID) -> bool:
    """Whether the router has an interface with an IPv6 address on this network."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM router_ports rp JOIN ports q ON q.id = rp.port_id
                   JOIN port_ips i ON i.port_id = q.id
               WHERE rp.router_id = $1 AND q.network_id = $2 AND family(i.ip_address) = 6)""",
            router_id,
            network_id,
        )
    )


async def lock_port(conn: asyncpg.Connection, port_id: uuid.UUID) -> asyncpg.Record | None:
    """An active port, locked, with its network's owner (``net_owner``)."""
    return await conn.fetchrow(
        "SELECT p.*, n.project_id AS net_owner FROM ports p JOIN networks n ON n.id = p.network_id "
        "WHERE p.id = $1 AND p.state = 'active' FOR UPDATE OF p",
        port_id,
    )


async def port_ips_with_subnets(conn: asyncpg.Connection, port_id: uuid.UUID) -> list[asyncpg.Record]:
    """A port's addresses with their subnet's version, CIDR, owner and allocation pools."""
    return list(
        await conn.fetch(
            "SELECT i.*, s.ip_version, s.cidr, s.project_id AS subnet_owner, s.allocation_pools "
            "FROM port_ips i JOIN subnets s ON s.id = i.subnet_id WHERE i.port_id = $1",
            port_id,
        )
    )


async def port_ips(conn: asyncpg.Connection, port_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM port_ips WHERE port_id = ANY($1::uuid[])", port_ids))


async def add_port_ip(conn: asyncpg.Connection, port_id: uuid.UUID, subnet_id: uuid.UUID, ip: str) -> None:
    """A subnet's gateway address on a router port (IPAM reserves it for the subnet: not held)."""
    await conn.execute(
        "INSERT INTO port_ips (port_id, subnet_id, ip_address, ipam_held) VALUES ($1, $2, $3::inet, false)",
        port_id,
        subnet_id,
        ip,
    )


async def remove_port_ips(conn: asyncpg.Connection, port_id: uuid.UUID, subnet_ids: list[uuid.UUID]) -> None:
    await conn.execute("DELETE FROM port_ips WHERE port_id = $1 AND subnet_id = ANY($2::uuid[])", port_id, subnet_ids)


async def replace_port_ips(
    conn: asyncpg.Connection, port_id: uuid.UUID, ips: list[tuple[uuid.UUID, str, bool]]
) -> None:
    """The port's addresses become exactly ``(subnet, address, held in IPAM)``."""
    await conn.execute("DELETE FROM port_ips WHERE port_id = $1", port_id)
    await conn.executemany(
        "INSERT INTO port_ips (port_id, subnet_id, ip_address, ipam_held) VALUES ($1, $2, $3::inet, $4)",
        [(port_id, s, ip, held) for s, ip, held in ips],
    )


async def bump_port(conn: asyncpg.Connection, port_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE ports SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1", port_id
    )


async def adopt_port(conn: asyncpg.Connection, port_id: uuid.UUID, router_id: uuid.UUID) -> None:
    """An existing port becomes the router's interface."""
    await conn.execute(
        "UPDATE ports SET device_owner = $2, device_id = $3, status = 'ACTIVE', "
        "revision_number = revision_number + 1, updated_at = now() WHERE id = $1",
        port_id,
        t.DEVICE_OWNER_ROUTER_INTERFACE,
        str(router_id),
    )
    await link_port(conn, port_id, router_id)


async def link_port(conn: asyncpg.Connection, port_id: uuid.UUID, router_id: uuid.UUID) -> None:
    await conn.execute("INSERT INTO router_ports (port_id, router_id) VALUES ($1, $2)", port_id, router_id)


async def unlink_port(conn: asyncpg.Connection, port_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM router_ports WHERE port_id = $1", port_id)


async def subnet_cidrs(conn: asyncpg.Connection, subnet_ids: list[uuid.UUID]) -> list[str]:
    rows = await conn.fetch("SELECT cidr FROM subnets WHERE id = ANY($1::uuid[])", subnet_ids)
    return [str(r["cidr"]) for r in rows]


# ---------------------------------------------------------------- extra routes


async def router_addresses(conn: asyncpg.Connection, router_id: uuid.UUID) -> list[asyncpg.Record]:
    """The router's own addresses (``ip_address``) with their subnet's ``cidr``, on its interfaces
    and its gateway port: where an extra route's next hop may be (Neutron reads the ports whose
    device is the router)."""
    return list(
        await conn.fetch(
            """SELECT i.ip_address, s.cidr FROM port_ips i JOIN subnets s ON s.id = i.subnet_id
               WHERE i.port_id IN (SELECT port_id FROM router_ports WHERE router_id = $1
                                   UNION SELECT gw_port_id FROM routers WHERE id = $1 AND gw_port_id IS NOT NULL)""",
            router_id,
        )
    )
