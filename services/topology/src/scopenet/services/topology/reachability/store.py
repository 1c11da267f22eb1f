"""SQL behind the explainer: the endpoints as the caller may see them, and the routers around them.

The routers' RouterSpecs are built by ``specs.service.build_specs`` from the same rows a published
spec is, so the verdict is computed from exactly what the agent renders.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import asyncpg

from scopenet.contracts import topology as t
from scopenet.services.topology.networks import store as netstore
from scopenet.services.topology.ports import store as portstore
from scopenet.services.topology.specs import rules as b
from scopenet.services.topology.specs.store import PORT_ROUTERS, router_row


async def visible_port(conn: asyncpg.Connection, port_id: UUID, *, project: str, admin: bool) -> t.Port | None:
    return await portstore.one_port(conn, port_id, project=project, admin=admin)


async def port_at(conn: asyncpg.Connection, address: str) -> UUID | None:
    """The active port holding this fixed address (any project's: the caller decides visibility)."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """SELECT p.id FROM port_ips i JOIN ports p ON p.id = i.port_id
           WHERE i.ip_address = $1::inet AND p.state = 'active' ORDER BY p.created_at LIMIT 1""",
        address,
    )


async def ports_at(conn: asyncpg.Connection, addresses: Iterable[str]) -> list[t.Port]:
    """Ports holding these fixed addresses (floating IPs' and forwardings' internal ends), for hops."""
    ids = await conn.fetch(
        "SELECT DISTINCT port_id FROM port_ips WHERE ip_address = ANY($1::inet[])", list(set(addresses))
    )
    return await portstore.load_ports(
        conn, project="", admin=True, where="p.id = ANY($3::uuid[])", args=([r["port_id"] for r in ids],)
    )


async def subnet_at(conn: asyncpg.Connection, address: str) -> asyncpg.Record | None:
    """The active subnet whose CIDR holds the address (the most specific one)."""
    return await conn.fetchrow(
        """SELECT id, network_id FROM subnets WHERE state = 'active' AND cidr >>= $1::inet
           ORDER BY masklen(cidr) DESC LIMIT 1""",
        address,
    )


async def network_visible(conn: asyncpg.Connection, network_id: UUID, *, project: str, admin: bool) -> bool:
    return await netstore.network(conn, network_id, project=project, admin=admin) is not None


async def routers_around(conn: asyncpg.Connection, network_ids: list[UUID], addresses: list[str]) -> list[UUID]:
    """Routers with a port on these networks, and those holding these addresses as floating IPs."""
    ids = {r["router_id"] for r in await conn.fetch(PORT_ROUTERS, network_ids)}
    rows = await conn.fetch(
        """SELECT router_id FROM floatingips WHERE router_id IS NOT NULL AND floating_ip_address = ANY($1::inet[])""",
        addresses,
    )
    return sorted(ids | {r["router_id"] for r in rows})


async def router_rows(conn: asyncpg.Connection, ids: list[UUID]) -> list[tuple[b.RouterRow, str, str]]:
    """(row as the spec builder reads it, name, project) of the active routers among ``ids``."""
    rows = await conn.fetch("SELECT * FROM routers WHERE id = ANY($1::uuid[]) AND state = 'active'", ids)
    return [(router_row(r), r["name"], r["project_id"]) for r in rows]


async def networks(conn: asyncpg.Connection, ids: list[UUID]) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT id, name, router_external FROM networks WHERE id = ANY($1::uuid[])", ids))


async def subnets(conn: asyncpg.Connection, network_ids: list[UUID]) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT s.id, s.network_id, s.cidr, s.gateway_ip, s.subnetpool_id, s.name, p.ip_version,
                      p.address_scope_id
               FROM subnets s LEFT JOIN subnetpools p ON p.id = s.subnetpool_id
               WHERE s.network_id = ANY($1::uuid[]) AND s.state = 'active' ORDER BY s.created_at, s.id""",
            network_ids,
        )
    )
