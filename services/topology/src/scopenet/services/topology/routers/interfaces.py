"""``add_router_interface`` / ``remove_router_interface`` (rules 60-61).

By subnet, the interface takes the subnet's gateway IP, which IPAM reserves for the subnet itself:
no IPAM call, one transaction (``port_ips.ipam_held = false``). IPv6 subnets of one network share
one router port, as in Neutron. By port, an existing port of the caller becomes the interface.
Removing deletes the port (or only the subnet's address, when a merged IPv6 port keeps others).
"""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.policy.rules import not_found
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.floatingips import store as fipstore
from scopenet.services.topology.ports import rules as portrules
from scopenet.services.topology.ports import saga as portsaga
from scopenet.services.topology.ports.store import one_port, service_owner
from scopenet.services.topology.rbac import store as rbacstore
from scopenet.services.topology.routers import rules
from scopenet.services.topology.routers import store as routerstore
from scopenet.services.topology.subnets import store as subnetstore
from scopenet.store.db import db_errors


class Interfaces:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def _router(self, conn: asyncpg.Connection, ctx: CallContext, router_id: uuid.UUID) -> asyncpg.Record:
        return rules.check_router(ctx, await routerstore.lock(conn, router_id), router_id, "update")

    # ------------------------------------------------------------ add

    async def add_router_interface(self, cmd: t.RouterInterface) -> t.RouterInterfaceInfo:
        rules.check_one_of(cmd.subnet_id, cmd.port_id)
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
            await routerstore.bump(conn, cmd.id)
            # Re-check overlap now that the port is in (a concurrent add on another subnet, rule 60).
            attached = await routerstore.router_subnets(conn, cmd.id)
            rules.check_overlap([s for s in attached if s["id"] in info.subnet_ids], attached)
            await self.d.specs.publish_for_routers(conn, [cmd.id])
        return info

    async def _add_subnet(
        self, conn: asyncpg.Connection, ctx: CallContext, router: asyncpg.Record, subnet_id: uuid.UUID
    ) -> t.RouterInterfaceInfo:
        s = await subnetstore.subnet(conn, subnet_id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
        if s is None:
            raise not_found("subnet", subnet_id, field="subnet_id")
        if not rules.owns(ctx, s):
            rules.check_subnet_shared(
                ctx, subnet_id, await rbacstore.rbac_targets(conn, s["network_id"], "access_as_shared")
            )
        rules.check_subnet_interface(s, await routerstore.router_subnets(conn, router["id"]))
        gateway = str(s["gateway_ip"])
        merge = await routerstore.v6_only_port(conn, router["id"], s["network_id"]) if s["ip_version"] == 6 else None
        if merge is not None:
            before = await one_port(conn, merge)
            await routerstore.add_port_ip(conn, merge, subnet_id, gateway)
            await routerstore.bump_port(conn, merge)
            await emit(conn, "port", "updated", await one_port(conn, merge), before)  # type: ignore[arg-type]
            port_id = merge
        else:
            port_id = uuid.uuid4()
            await portsaga.insert(
                conn,
                portrules.NewPort(
                    id=port_id,
                    network_id=s["network_id"],
                    project_id=s["project_id"],
                    device_owner=t.DEVICE_OWNER_ROUTER_INTERFACE,
                    device_id=str(router["id"]),
                    status="ACTIVE",
                ),
            )
            await portsaga.activate(conn, port_id, [(subnet_id, gateway, False)])
            await routerstore.link_port(conn, port_id, router["id"])
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
        p = rules.check_port_visible(ctx, await routerstore.lock_port(conn, port_id), port_id)
        ips = await routerstore.port_ips_with_subnets(conn, port_id)
        rules.check_port_interface(
            ctx,
            port=p,
            service_owned=not p["device_id"] and await service_owner(conn, port_id) is not None,
            ips=ips,
            attached=await routerstore.router_subnets(conn, router["id"]),
            v6_taken=await routerstore.has_v6_port(conn, router["id"], p["network_id"]),
            network_subnets=await subnetstore.network_subnets(conn, [p["network_id"]]),
        )
        before = await one_port(conn, port_id)
        await routerstore.adopt_port(conn, port_id, router["id"])
        await emit(conn, "port", "updated", await one_port(conn, port_id), before)  # type: ignore[arg-type]
        subnet_ids = [i["subnet_id"] for i in ips]
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
        rules.check_one_of(cmd.subnet_id, cmd.port_id)
        ctx = cmd.context
        release: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            router = await self._router(conn, ctx, cmd.id)
            ports = await routerstore.interface_ports(conn, cmd.id)
            ips = await routerstore.port_ips(conn, [p["id"] for p in ports])
            if cmd.subnet_id is not None:
                if await subnetstore.subnet(conn, cmd.subnet_id, project=ctx.project_id, admin=ctx.is_admin) is None:
                    raise not_found("subnet", cmd.subnet_id, field="subnet_id")
            port_id, gone = rules.interface_to_remove(
                cmd.id, subnet_id=cmd.subnet_id, port_id=cmd.port_id, ports=ports, ips=ips
            )
            subnet_ids = [i["subnet_id"] for i in gone]
            rules.check_interface_unused(
                cmd.id,
                cidrs=await routerstore.subnet_cidrs(conn, subnet_ids),
                fips=await fipstore.router_fips(conn, cmd.id),
                routes=router["routes"],
            )
            port = next(p for p in ports if p["id"] == port_id)
            kind = rules.removal_kind(port_id, ips=ips, gone=gone)
            if kind == "shrink":
                before = await one_port(conn, port_id)
                await routerstore.remove_port_ips(conn, port_id, subnet_ids)
                release = [(port_id, i["subnet_id"], str(i["ip_address"])) for i in gone if i["ipam_held"]]
                await emit(conn, "port", "updated", await one_port(conn, port_id), before)  # type: ignore[arg-type]
            elif kind == "saga":
                await routerstore.unlink_port(conn, port_id)
                await portsaga.mark_deleting(conn, port_id)
            else:
                await portsaga.drop(self.d, conn, port_id)
            await routerstore.bump(conn, cmd.id)
            await self.d.specs.publish_for_routers(conn, [cmd.id])
        for pid, sid, ip in release:
            await self.d.ipam.release_ips(pid, subnet_id=sid, ip_address=ip)
        if kind == "saga":
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
