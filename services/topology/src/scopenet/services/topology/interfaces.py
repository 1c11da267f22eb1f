"""``add_router_interface`` / ``remove_router_interface`` (SPEC §1.5, §2.K rules 60-61).

By subnet, the interface takes the subnet's gateway IP, which IPAM reserves for the subnet itself:
no IPAM call, one transaction (``port_ips.ipam_held = false``). IPv6 subnets of one network share
one router port, as in Neutron. By port, an existing port of the caller becomes the interface.
Removing deletes the port (or only the subnet's address, when a merged IPv6 port keeps others).
"""

from __future__ import annotations

import uuid

import asyncpg
from netaddr import IPAddress, IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, NotFound
from scopenet.policy.rules import not_found, require_owner
from scopenet.services.topology import l3store, portsaga, store
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.ports import one_port, service_owner
from scopenet.store.db import db_errors


def _which(cmd: t.RouterInterface) -> None:
    if (cmd.subnet_id is None) == (cmd.port_id is None):
        raise BadRequest(
            "Bad router request: Either subnet_id or port_id must be specified, not both or neither.", field="subnet_id"
        )


class Interfaces:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def _router(self, conn: asyncpg.Connection, ctx: CallContext, router_id: uuid.UUID) -> asyncpg.Record:
        row = await conn.fetchrow("SELECT * FROM routers WHERE id = $1 AND state = 'active' FOR UPDATE", router_id)
        if row is None or not (ctx.is_admin or row["project_id"] == ctx.project_id):
            raise not_found("router", router_id)
        require_owner(ctx, row["project_id"], "update", "router")
        return row

    # ------------------------------------------------------------ add

    async def add_router_interface(self, cmd: t.RouterInterface) -> t.RouterInterfaceInfo:
        _which(cmd)
        ctx = cmd.context
        async with (
            db_errors("IP address is already in use", conflict_type="IpAddressAlreadyAllocated"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            router = await self._router(conn, ctx, cmd.id)
            if cmd.subnet_id is not None:
                info = await self._add_subnet(conn, ctx, router, cmd.subnet_id)
            else:
                assert cmd.port_id is not None
                info = await self._add_port(conn, ctx, router, cmd.port_id)
            await conn.execute(
                "UPDATE routers SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1", cmd.id
            )
            # Re-check overlap now that the port is in (a concurrent add on another subnet, rule 60).
            attached = await l3store.router_subnets(conn, cmd.id)
            l3store.check_overlap([s for s in attached if s["id"] in info.subnet_ids], attached)
            await self.d.specs.publish_for_routers(conn, [cmd.id])
        return info

    async def _add_subnet(
        self, conn: asyncpg.Connection, ctx: CallContext, router: asyncpg.Record, subnet_id: uuid.UUID
    ) -> t.RouterInterfaceInfo:
        s = await store.subnet(conn, subnet_id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
        if s is None:
            raise not_found("subnet", subnet_id, field="subnet_id")
        if not ctx.is_admin and s["project_id"] != ctx.project_id:
            targeted = ctx.project_id in await store.rbac_targets(conn, s["network_id"], "access_as_shared")
            if not targeted:
                raise BadRequest(
                    f"Bad router request: Cannot add interface for subnet {subnet_id}: it belongs to "
                    "another project and its network is not shared with yours.",
                    field="subnet_id",
                )
        if s["gateway_ip"] is None:
            raise BadRequest(f"Bad router request: Subnet {subnet_id} does not have a gateway IP.", field="subnet_id")
        if s["ip_version"] == 6 and s["ipv6_ra_mode"] is None and s["ipv6_address_mode"] is not None:
            raise BadRequest(
                f"Bad router request: IPv6 subnet {subnet_id} configured to receive RAs from an external "
                "router cannot be added to a router.",
                field="subnet_id",
            )
        attached = await l3store.router_subnets(conn, router["id"])
        if any(a["id"] == subnet_id and a["kind"] == "interface" for a in attached):
            raise BadRequest(f"Bad router request: Router already has a port on subnet {subnet_id}.", field="subnet_id")
        l3store.check_overlap([s], attached)
        gateway = str(s["gateway_ip"])
        merge = None
        if s["ip_version"] == 6:
            merge = await conn.fetchval(
                """SELECT p.id FROM router_ports rp JOIN ports p ON p.id = rp.port_id
                   WHERE rp.router_id = $1 AND p.network_id = $2 AND p.state = 'active'
                     AND EXISTS (SELECT 1 FROM port_ips i WHERE i.port_id = p.id AND family(i.ip_address) = 6)
                     AND NOT EXISTS (SELECT 1 FROM port_ips i WHERE i.port_id = p.id AND family(i.ip_address) = 4)""",
                router["id"],
                s["network_id"],
            )
        if merge is not None:
            before = await one_port(conn, merge)
            await conn.execute(
                "INSERT INTO port_ips (port_id, subnet_id, ip_address, ipam_held) VALUES ($1, $2, $3::inet, false)",
                merge,
                subnet_id,
                gateway,
            )
            await conn.execute(
                "UPDATE ports SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1", merge
            )
            await emit(conn, "port", "updated", await one_port(conn, merge), before)  # type: ignore[arg-type]
            port_id = merge
        else:
            port_id = uuid.uuid4()
            await portsaga.insert(
                conn,
                portsaga.NewPort(
                    id=port_id,
                    network_id=s["network_id"],
                    project_id=s["project_id"],
                    device_owner=t.DEVICE_OWNER_ROUTER_INTERFACE,
                    device_id=str(router["id"]),
                    status="ACTIVE",
                ),
            )
            await portsaga.activate(conn, port_id, [(subnet_id, gateway, False)])
            await conn.execute("INSERT INTO router_ports (port_id, router_id) VALUES ($1, $2)", port_id, router["id"])
            await emit(conn, "port", "created", await one_port(conn, port_id))  # type: ignore[arg-type]
        return t.RouterInterfaceInfo(
            id=router["id"],
            project_id=router["project_id"],
            tenant_id=router["project_id"],
            port_id=port_id,
            network_id=s["network_id"],
            subnet_id=subnet_id,
            subnet_ids=[subnet_id],
        )

    async def _add_port(
        self, conn: asyncpg.Connection, ctx: CallContext, router: asyncpg.Record, port_id: uuid.UUID
    ) -> t.RouterInterfaceInfo:
        p = await conn.fetchrow(
            "SELECT p.*, n.project_id AS net_owner FROM ports p JOIN networks n ON n.id = p.network_id "
            "WHERE p.id = $1 AND p.state = 'active' FOR UPDATE OF p",
            port_id,
        )
        if p is None or not (ctx.is_admin or ctx.project_id in (p["project_id"], p["net_owner"])):
            raise not_found("port", port_id, field="port_id")
        if p["device_id"] or await service_owner(conn, port_id):
            raise Conflict(
                f"Unable to complete operation on port {port_id} for network {p['network_id']}. "
                f"Port already has an attached device {p['device_id']}.",
                type="PortInUse",
                field="port_id",
            )
        ips = await conn.fetch(
            "SELECT i.*, s.ip_version, s.cidr, s.project_id AS subnet_owner, s.allocation_pools "
            "FROM port_ips i JOIN subnets s ON s.id = i.subnet_id WHERE i.port_id = $1",
            port_id,
        )
        if not ips:
            raise BadRequest(
                f"Bad router request: Router port {port_id} must have at least one fixed IP.", field="port_id"
            )
        if len({i["subnet_id"] for i in ips if i["ip_version"] == 4}) > 1:
            raise BadRequest(
                f"Bad router request: Cannot have multiple IPv4 subnets on router port {port_id}.", field="port_id"
            )
        attached = await l3store.router_subnets(conn, router["id"])
        subnet_ids = [i["subnet_id"] for i in ips]
        for sid in subnet_ids:
            if any(a["id"] == sid and a["kind"] == "interface" for a in attached):
                raise BadRequest(f"Bad router request: Router already has a port on subnet {sid}.", field="port_id")
        if any(i["ip_version"] == 6 for i in ips) and await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM router_ports rp JOIN ports q ON q.id = rp.port_id
                   JOIN port_ips i ON i.port_id = q.id
               WHERE rp.router_id = $1 AND q.network_id = $2 AND family(i.ip_address) = 6)""",
            router["id"],
            p["network_id"],
        ):
            raise BadRequest(
                f"Bad router request: Cannot have multiple IPv6 ports from network {p['network_id']} on one router.",
                field="port_id",
            )
        l3store.check_overlap(
            [s for s in await store.network_subnets(conn, [p["network_id"]]) if s["id"] in subnet_ids], attached
        )
        if not ctx.is_admin:
            for i in ips:
                if i["subnet_owner"] != ctx.project_id and not _in_pools(str(i["ip_address"]), i["allocation_pools"]):
                    raise BadRequest(
                        f"Bad router request: IP {i['ip_address']} of port {port_id} is outside the "
                        f"allocation pools of subnet {i['subnet_id']}, which you do not own.",
                        field="port_id",
                    )
        before = await one_port(conn, port_id)
        await conn.execute(
            "UPDATE ports SET device_owner = $2, device_id = $3, status = 'ACTIVE', "
            "revision_number = revision_number + 1, updated_at = now() WHERE id = $1",
            port_id,
            t.DEVICE_OWNER_ROUTER_INTERFACE,
            str(router["id"]),
        )
        await conn.execute("INSERT INTO router_ports (port_id, router_id) VALUES ($1, $2)", port_id, router["id"])
        await emit(conn, "port", "updated", await one_port(conn, port_id), before)  # type: ignore[arg-type]
        return t.RouterInterfaceInfo(
            id=router["id"],
            project_id=router["project_id"],
            tenant_id=router["project_id"],
            port_id=port_id,
            network_id=p["network_id"],
            subnet_id=subnet_ids[0],
            subnet_ids=subnet_ids,
        )

    # ------------------------------------------------------------ remove

    async def remove_router_interface(self, cmd: t.RouterInterface) -> t.RouterInterfaceInfo:
        _which(cmd)
        ctx = cmd.context
        release: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        delete_port = False
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            router = await self._router(conn, ctx, cmd.id)
            ports = await conn.fetch(
                "SELECT p.* FROM router_ports rp JOIN ports p ON p.id = rp.port_id WHERE rp.router_id = $1 "
                "AND p.state = 'active'",
                cmd.id,
            )
            ips = await conn.fetch("SELECT * FROM port_ips WHERE port_id = ANY($1::uuid[])", [p["id"] for p in ports])
            if cmd.subnet_id is not None:
                if await store.subnet(conn, cmd.subnet_id, project=ctx.project_id, admin=ctx.is_admin) is None:
                    raise not_found("subnet", cmd.subnet_id, field="subnet_id")
                hit = [i for i in ips if i["subnet_id"] == cmd.subnet_id]
                if not hit:
                    raise NotFound(
                        f"Router {cmd.id} has no interface on subnet {cmd.subnet_id}",
                        type="RouterInterfaceNotFoundForSubnet",
                        field="subnet_id",
                    )
                port_id = hit[0]["port_id"]
                gone = [i for i in hit if i["port_id"] == port_id]
            else:
                port_id = cmd.port_id
                if port_id not in {p["id"] for p in ports}:
                    raise NotFound(
                        f"Router {cmd.id} does not have an interface with id {port_id}",
                        type="RouterInterfaceNotFound",
                        field="port_id",
                    )
                gone = [i for i in ips if i["port_id"] == port_id]
            await self._check_unused(conn, cmd.id, router, gone)
            port = next(p for p in ports if p["id"] == port_id)
            remaining = [i for i in ips if i["port_id"] == port_id and i not in gone]
            subnet_ids = [i["subnet_id"] for i in gone]
            if remaining:
                before = await one_port(conn, port_id)
                await conn.execute(
                    "DELETE FROM port_ips WHERE port_id = $1 AND subnet_id = ANY($2::uuid[])", port_id, subnet_ids
                )
                release = [(port_id, i["subnet_id"], str(i["ip_address"])) for i in gone if i["ipam_held"]]
                await emit(conn, "port", "updated", await one_port(conn, port_id), before)  # type: ignore[arg-type]
            elif any(i["ipam_held"] for i in gone):
                delete_port = True  # addresses in IPAM: the port saga's delete
                await conn.execute("DELETE FROM router_ports WHERE port_id = $1", port_id)
                await portsaga.mark_deleting(conn, port_id)
            else:
                await portsaga.drop(self.d, conn, port_id)
            await conn.execute(
                "UPDATE routers SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1", cmd.id
            )
            await self.d.specs.publish_for_routers(conn, [cmd.id])
        for pid, sid, ip in release:
            await self.d.ipam.release_ips(pid, subnet_id=sid, ip_address=ip)
        if delete_port:
            await portsaga.finish_delete(self.d, port_id)
        return t.RouterInterfaceInfo(
            id=cmd.id,
            project_id=router["project_id"],
            tenant_id=router["project_id"],
            port_id=port_id,
            network_id=port["network_id"],
            subnet_id=subnet_ids[0],
            subnet_ids=subnet_ids,
        )

    @staticmethod
    async def _check_unused(
        conn: asyncpg.Connection, router_id: uuid.UUID, router: asyncpg.Record, gone: list[asyncpg.Record]
    ) -> None:
        """Rule 61: no floating IP served through the subnet, no route via it."""
        cidrs = [
            IPNetwork(str(r["cidr"]))
            for r in await conn.fetch(
                "SELECT cidr FROM subnets WHERE id = ANY($1::uuid[])", [i["subnet_id"] for i in gone]
            )
        ]
        for f in await conn.fetch("SELECT id, fixed_ip_address FROM floatingips WHERE router_id = $1", router_id):
            if f["fixed_ip_address"] is not None and any(IPAddress(str(f["fixed_ip_address"])) in c for c in cidrs):
                raise Conflict(
                    f"Router interface for subnet on router {router_id} cannot be deleted, as it is "
                    f"required by one or more floating IPs ({f['id']}).",
                    type="RouterInterfaceInUseByFloatingIP",
                )
        for r in router["routes"]:
            if any(IPAddress(r["nexthop"]) in c for c in cidrs):
                raise Conflict(
                    f"Router interface for subnet on router {router_id} cannot be deleted, as it is "
                    f"required by one or more routes ({r['destination']} via {r['nexthop']}).",
                    type="RouterInterfaceInUseByRoute",
                )


def _in_pools(ip: str, pools: list[dict[str, str]]) -> bool:
    addr = IPAddress(ip)
    return any(IPAddress(p["start"]) <= addr <= IPAddress(p["end"]) for p in pools)
