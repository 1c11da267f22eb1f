"""Load what feeds RouterSpecs and queue them in the outbox, inside the caller's transaction.

Every change that can alter a spec calls one of the ``publish_*`` methods before it commits. The
router rows are locked first (in id order, so two publishers cannot deadlock), and the spec
revision is bumped under that lock; everything is read after the lock is held, so the spec with
the higher revision always includes every change committed before it. Only scheduled routers are
published (an unscheduled one has no agent subject yet; scheduling publishes it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from uuid import UUID

import asyncpg
import structlog

from scopenet.contracts import routerspec as rs
from scopenet.services.topology import routerspec as b
from scopenet.services.topology.events import emit_spec, emit_specs

log = structlog.get_logger("topology.specs")

#: Routers with a port (interface, gateway, floating IP's fixed port) on the networks ``$1``.
PORT_ROUTERS = _PORT_ROUTERS = """
    SELECT rp.router_id FROM router_ports rp JOIN ports p ON p.id = rp.port_id WHERE p.network_id = ANY($1::uuid[])
    UNION SELECT r.id FROM routers r JOIN ports p ON p.id = r.gw_port_id WHERE p.network_id = ANY($1::uuid[])
    UNION SELECT f.router_id FROM floatingips f JOIN ports p ON p.id = f.port_id
          WHERE f.router_id IS NOT NULL AND p.network_id = ANY($1::uuid[])"""


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


async def build_specs(conn: asyncpg.Connection, routers: list[asyncpg.Record]) -> list[rs.RouterSpec]:
    ids = [r["id"] for r in routers]
    interfaces = await _ports(
        conn,
        """SELECT p.id, p.network_id, p.mac_address, rp.router_id FROM router_ports rp JOIN ports p ON p.id = rp.port_id
           WHERE rp.router_id = ANY($1::uuid[]) AND p.state = 'active' ORDER BY p.created_at, p.id""",
        ids,
    )
    gateways = await _ports(
        conn,
        """SELECT p.id, p.network_id, p.mac_address, r.id AS router_id
           FROM routers r JOIN ports p ON p.id = r.gw_port_id
           WHERE r.id = ANY($1::uuid[]) AND p.state = 'active'""",
        ids,
    )
    fips = await conn.fetch(
        """SELECT f.id, f.router_id, f.floating_ip_address, f.fixed_ip_address, f.port_id, fp.network_id AS fixed_net
           FROM floatingips f JOIN ports fp ON fp.id = f.port_id JOIN ports flp ON flp.id = f.floating_port_id
           WHERE f.router_id = ANY($1::uuid[]) AND flp.state = 'active' AND f.fixed_ip_address IS NOT NULL""",
        ids,
    )
    nets = {p.network_id for _, p in interfaces + gateways} | {f["fixed_net"] for f in fips}
    world = await load_world(conn, nets)
    # Grouped once: a scheduling pass builds hundreds of specs, and scanning every list per router
    # would be quadratic in them.
    ifaces_of: dict[UUID, list[b.PortRow]] = {}
    for rid, p in interfaces:
        ifaces_of.setdefault(rid, []).append(p)
    gateway_of = {rid: p for rid, p in reversed(gateways)}  # the first one, as before
    fips_of: dict[UUID, list[asyncpg.Record]] = {}
    for f in fips:
        fips_of.setdefault(f["router_id"], []).append(f)
    out = []
    for r in routers:
        row = b.RouterRow(
            id=r["id"],
            admin_state_up=r["admin_state_up"],
            agent_id=r["agent_id"] or "",
            revision=r["spec_revision"],
            enable_snat=r["enable_snat"],
            routes=tuple((x["destination"], x["nexthop"]) for x in r["routes"]),
        )
        try:
            out.append(
                b.build(
                    row,
                    gateway=gateway_of.get(r["id"]),
                    interfaces=ifaces_of.get(r["id"], []),
                    floating_ips=[
                        b.FipRow(
                            f["id"],
                            str(f["floating_ip_address"]),
                            str(f["fixed_ip_address"]),
                            f["port_id"],
                            f["fixed_net"],
                        )
                        for f in fips_of.get(r["id"], [])
                    ],
                    world=world,
                )
            )
        except b.UnknownScope as exc:  # the mirror lags: the scope event will republish
            log.error("router_spec_unbuildable", router_id=str(r["id"]), error=str(exc))
    return out


RoutersChanged = Callable[[asyncpg.Connection, list[UUID]], Awaitable[None]]


class Specs:
    def __init__(self) -> None:
        self.hooks: list[RoutersChanged] = []
        """Called with the routers whose specs changed, in the same transaction (BGP speakers)."""

    async def publish_for_routers(self, conn: asyncpg.Connection, router_ids: Iterable[UUID]) -> list[rs.RouterSpec]:
        ids = sorted(set(router_ids))
        if not ids:
            return []
        await conn.execute("SELECT 1 FROM routers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", ids)
        rows = await conn.fetch(
            """UPDATE routers SET spec_revision = spec_revision + 1
               WHERE id = ANY($1::uuid[]) AND agent_id IS NOT NULL AND state = 'active' RETURNING *""",
            ids,
        )
        specs = await build_specs(conn, list(rows))
        await emit_specs(conn, specs)
        for hook in self.hooks:
            await hook(conn, ids)
        return specs

    async def publish_for_networks(self, conn: asyncpg.Connection, network_ids: Iterable[UUID]) -> None:
        nets = list(set(network_ids))
        if nets:
            await self.publish_for_routers(conn, [r["router_id"] for r in await conn.fetch(_PORT_ROUTERS, nets)])

    async def publish_for_pools(self, conn: asyncpg.Connection, pool_ids: Iterable[UUID]) -> list[rs.RouterSpec]:
        """A pool changed scope: routers with any port on a network holding a subnet of it (SPEC §5.5)."""
        nets = [
            r["network_id"]
            for r in await conn.fetch(
                "SELECT DISTINCT network_id FROM subnets WHERE subnetpool_id = ANY($1::uuid[])", list(pool_ids)
            )
        ]
        if not nets:
            return []
        return await self.publish_for_routers(conn, [r["router_id"] for r in await conn.fetch(_PORT_ROUTERS, nets)])

    async def publish_removal(self, conn: asyncpg.Connection, router_id: UUID, agent_id: str, revision: int) -> None:
        await emit_spec(conn, b.removal(router_id, agent_id=agent_id, revision=revision))

    async def publish_removals(self, conn: asyncpg.Connection, removals: Iterable[tuple[UUID, str, int]]) -> None:
        """``(router, agent, revision)``: each agent drops its router, all in one round trip."""
        await emit_specs(conn, [b.removal(rid, agent_id=agent, revision=rev) for rid, agent, rev in removals])

    async def current(self, conn: asyncpg.Connection, router_id: UUID) -> rs.RouterSpec | None:
        row = await conn.fetchrow("SELECT * FROM routers WHERE id = $1 AND state = 'active'", router_id)
        if row is None:
            return None
        specs = await build_specs(conn, [row])
        return specs[0] if specs else None
