"""SQL and views for routers and floating IPs (and the checks several L3 commands share)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from netaddr import IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.errors import BadRequest


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


async def router_subnets(conn: asyncpg.Connection, router_id: uuid.UUID) -> list[asyncpg.Record]:
    """Subnets the router is attached to: its interfaces' subnets and every subnet of its gateway
    network (rule 60's overlap domain)."""
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


def check_overlap(new: list[asyncpg.Record], attached: list[asyncpg.Record]) -> None:
    """Rule 60: a router's subnets may not overlap (interfaces and its gateway network's subnets)."""
    for n in new:
        a_net = IPNetwork(str(n["cidr"]))
        for a in attached:
            if a["id"] == n["id"]:
                continue
            b_net = IPNetwork(str(a["cidr"]))
            if a_net.version == b_net.version and a_net.first <= b_net.last and b_net.first <= a_net.last:
                raise BadRequest(
                    f"Bad router request: Cidr {a_net} of subnet {n['id']} overlaps with cidr {b_net} of "
                    f"subnet {a['id']}.",
                    field="subnet_id",
                )


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


async def fip_view_row(conn: asyncpg.Connection, fip_id: uuid.UUID) -> t.FloatingIp | None:
    rows = await fips(conn, project="", admin=True, where="f.id = $3", args=(fip_id,))
    return fip_view(rows[0]) if rows else None
