"""SQL behind RouterSpecs: the rows a spec is built from, and the router rows it is published for.

Rows come out as the plain dataclasses of ``specs.rules``, so the building stays pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import asyncpg

from scopenet.services.topology.specs import rules as b

#: Routers with a port (interface, gateway, floating IP's fixed port) on the networks ``$1``.
PORT_ROUTERS = """
    SELECT rp.router_id FROM router_ports rp JOIN ports p ON p.id = rp.port_id WHERE p.network_id = ANY($1::uuid[])
    UNION SELECT r.id FROM routers r JOIN ports p ON p.id = r.gw_port_id WHERE p.network_id = ANY($1::uuid[])
    UNION SELECT f.router_id FROM floatingips f JOIN ports p ON p.id = f.port_id
          WHERE f.router_id IS NOT NULL AND p.network_id = ANY($1::uuid[])
    UNION SELECT f.router_id FROM port_forwardings pf JOIN floatingips f ON f.id = pf.floatingip_id
          JOIN ports p ON p.id = pf.internal_port_id WHERE f.router_id IS NOT NULL AND p.network_id = ANY($1::uuid[])"""


def router_row(r: Any) -> b.RouterRow:
    """A ``routers`` row as the builder reads it."""
    return b.RouterRow(
        id=r["id"],
        admin_state_up=r["admin_state_up"],
        agent_id=r["agent_id"] or "",
        revision=r["spec_revision"],
        enable_snat=r["enable_snat"],
        routes=tuple((x["destination"], x["nexthop"]) for x in r["routes"]),
    )


async def load_world(conn: asyncpg.Connection, network_ids: Iterable[UUID]) -> b.World:
    nets = list(set(network_ids))
    net_rows = await conn.fetch("SELECT id, segmentation_id, mtu FROM networks WHERE id = ANY($1::uuid[])", nets)
    sub_rows = await conn.fetch(
        """SELECT id, network_id, ip_version, cidr, gateway_ip, subnetpool_id FROM subnets
           WHERE network_id = ANY($1::uuid[]) AND state <> 'allocating' ORDER BY created_at, id""",
        nets,
    )
    pool_ids = list({r["subnetpool_id"] for r in sub_rows if r["subnetpool_id"] is not None})
    pools = await conn.fetch("SELECT id, ip_version, address_scope_id FROM subnetpools WHERE id = ANY($1)", pool_ids)
    scope_ids = list({p["address_scope_id"] for p in pools if p["address_scope_id"] is not None})
    marks = await conn.fetch("SELECT id, mark_id FROM address_scopes WHERE id = ANY($1::uuid[])", scope_ids)
    return b.World(
        networks={r["id"]: b.NetworkRow(r["id"], r["segmentation_id"], r["mtu"]) for r in net_rows},
        subnets=[
            b.SubnetRow(
                r["id"],
                r["network_id"],
                r["ip_version"],
                str(r["cidr"]),
                str(r["gateway_ip"]) if r["gateway_ip"] is not None else None,
                r["subnetpool_id"],
            )
            for r in sub_rows
        ],
        pools={p["id"]: (p["ip_version"], p["address_scope_id"]) for p in pools},
        marks={m["id"]: m["mark_id"] for m in marks},
    )


async def _ports(conn: asyncpg.Connection, sql: str, *args: object) -> list[tuple[UUID, b.PortRow]]:
    rows = await conn.fetch(sql, *args)
    ips = await conn.fetch(
        "SELECT port_id, subnet_id, ip_address FROM port_ips WHERE port_id = ANY($1::uuid[])",
        [r["id"] for r in rows],
    )
    by_port: dict[UUID, list[tuple[UUID, str]]] = {}
    for i in ips:
        by_port.setdefault(i["port_id"], []).append((i["subnet_id"], str(i["ip_address"])))
    return [
        (r["router_id"], b.PortRow(r["id"], r["network_id"], str(r["mac_address"]), tuple(by_port.get(r["id"], ()))))
        for r in rows
    ]


async def interfaces(conn: asyncpg.Connection, router_ids: list[UUID]) -> list[tuple[UUID, b.PortRow]]:
    """(router, port) of every active interface of these routers, oldest first."""
    return await _ports(
        conn,
        """SELECT p.id, p.network_id, p.mac_address, rp.router_id FROM router_ports rp JOIN ports p ON p.id = rp.port_id
           WHERE rp.router_id = ANY($1::uuid[]) AND p.state = 'active' ORDER BY p.created_at, p.id""",
        router_ids,
    )


async def gateways(conn: asyncpg.Connection, router_ids: list[UUID]) -> list[tuple[UUID, b.PortRow]]:
    """(router, port) of the active gateway port of these routers."""
    return await _ports(
        conn,
        """SELECT p.id, p.network_id, p.mac_address, r.id AS router_id
           FROM routers r JOIN ports p ON p.id = r.gw_port_id
           WHERE r.id = ANY($1::uuid[]) AND p.state = 'active'""",
        router_ids,
    )


async def floating_ips(conn: asyncpg.Connection, router_ids: list[UUID]) -> list[tuple[UUID, b.FipRow]]:
    """(router, floating IP) of every associated floating IP these routers serve."""
    rows = await conn.fetch(
        """SELECT f.id, f.router_id, f.floating_ip_address, f.fixed_ip_address, f.port_id, fp.network_id AS fixed_net
           FROM floatingips f JOIN ports fp ON fp.id = f.port_id JOIN ports flp ON flp.id = f.floating_port_id
           WHERE f.router_id = ANY($1::uuid[]) AND flp.state = 'active' AND f.fixed_ip_address IS NOT NULL""",
        router_ids,
    )
    return [
        (
            f["router_id"],
            b.FipRow(f["id"], str(f["floating_ip_address"]), str(f["fixed_ip_address"]), f["port_id"], f["fixed_net"]),
        )
        for f in rows
    ]


async def port_forwardings(conn: asyncpg.Connection, router_ids: list[UUID]) -> list[tuple[UUID, b.PfRow]]:
    """(router, port forwarding) of every forwarding these routers serve (active floating IPs only)."""
    rows = await conn.fetch(
        """SELECT pf.*, f.router_id, f.floating_ip_address, ip.network_id AS internal_net
           FROM port_forwardings pf JOIN floatingips f ON f.id = pf.floatingip_id
               JOIN ports flp ON flp.id = f.floating_port_id JOIN ports ip ON ip.id = pf.internal_port_id
           WHERE f.router_id = ANY($1::uuid[]) AND flp.state = 'active' AND ip.state = 'active'""",
        router_ids,
    )
    return [
        (
            r["router_id"],
            b.PfRow(
                id=r["id"],
                floating_ip_address=str(r["floating_ip_address"]),
                protocol=r["protocol"],
                external=(r["external_port_start"], r["external_port_end"]),
                internal_ip_address=str(r["internal_ip_address"]).split("/")[0],
                internal=(r["internal_port_start"], r["internal_port_end"]),
                internal_network_id=r["internal_net"],
            ),
        )
        for r in rows
    ]


async def next_revisions(conn: asyncpg.Connection, router_ids: list[UUID]) -> list[b.RouterRow]:
    """Lock the routers (in id order: two publishers cannot deadlock) and bump the spec revision
    of the scheduled, active ones; returns those, read under the lock."""
    await conn.execute("SELECT 1 FROM routers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", router_ids)
    rows = await conn.fetch(
        """UPDATE routers SET spec_revision = spec_revision + 1
           WHERE id = ANY($1::uuid[]) AND agent_id IS NOT NULL AND state = 'active' RETURNING *""",
        router_ids,
    )
    return [router_row(r) for r in rows]


async def active_router(conn: asyncpg.Connection, router_id: UUID) -> b.RouterRow | None:
    row = await conn.fetchrow("SELECT * FROM routers WHERE id = $1 AND state = 'active'", router_id)
    return router_row(row) if row is not None else None


async def port_routers(conn: asyncpg.Connection, network_ids: list[UUID]) -> list[UUID]:
    """Routers with a port (interface, gateway, floating IP's fixed port) on these networks."""
    return [r["router_id"] for r in await conn.fetch(PORT_ROUTERS, network_ids)]


async def pool_networks(conn: asyncpg.Connection, pool_ids: list[UUID]) -> list[UUID]:
    """Networks holding a subnet of these pools."""
    rows = await conn.fetch("SELECT DISTINCT network_id FROM subnets WHERE subnetpool_id = ANY($1::uuid[])", pool_ids)
    return [r["network_id"] for r in rows]
