"""Router commands (SPEC §1.5, §2.K rules 59 and 61): CRUD, the external gateway and routes.

The gateway port is ``gateways``'s: a new gateway port goes through the port saga and the router
points at it once it has its addresses; new fixed IPs on the same network re-address the port it
has. A router created with a gateway stays ``allocating`` (invisible) until its gateway is
complete; an update that changes the gateway applies everything in that last step, as one change.
"""

from __future__ import annotations

import builtins
import uuid

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, ListCommand
from scopenet.contracts.errors import BadRequest, Conflict
from scopenet.policy.rules import (
    check_revision,
    not_found,
    owner_for_create,
    require_admin_for,
    require_owner,
)
from scopenet.services.topology import gateways, l3store, portsaga, validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.listing import apply_filters
from scopenet.store.db import db_errors

_GW = gateways.GW


def _gw_policy(ctx: CallContext, gw: t.ExternalGatewayInfoRequest | None, action: str) -> None:
    if gw is None:
        return
    if "enable_snat" in gw.model_fields_set:
        require_admin_for(ctx, f"{_GW}:enable_snat", action)
    if gw.external_fixed_ips is not None:
        require_admin_for(ctx, f"{_GW}:external_fixed_ips", action)


class Routers:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db
        self.gateways = gateways.Gateways(deps)

    async def get(self, cmd: ByIdCommand) -> t.RouterReply:
        async with db_errors(), self.db.acquire() as conn:
            router = await l3store.one_router(conn, cmd.id, project=cmd.context.project_id, admin=cmd.context.is_admin)
        if router is None:
            raise not_found("router", cmd.id)
        return t.RouterReply(router=router)

    async def list(self, cmd: ListCommand) -> t.RouterList:
        async with db_errors(), self.db.acquire() as conn:
            routers = await l3store.load_routers(conn, project=cmd.context.project_id, admin=cmd.context.is_admin)
        return t.RouterList(routers=apply_filters(routers, cmd.filters, t.Router))

    async def _locked(
        self, conn: asyncpg.Connection, ctx: CallContext, router_id: uuid.UUID, action: str
    ) -> asyncpg.Record:
        row = await conn.fetchrow("SELECT * FROM routers WHERE id = $1 AND state = 'active' FOR UPDATE", router_id)
        if row is None or not (ctx.is_admin or row["project_id"] == ctx.project_id):
            raise not_found("router", router_id)
        require_owner(ctx, row["project_id"], action, "router")
        return row

    # ------------------------------------------------------------ create / update / delete

    async def create(self, cmd: t.RouterCreate) -> t.RouterReply:
        body, ctx = cmd.router, cmd.context
        gw = body.external_gateway_info
        _gw_policy(ctx, gw, "create_router")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        router_id = uuid.uuid4()
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            agent = await self.d.agents.pick(conn)
            await conn.execute(
                """INSERT INTO routers (id, project_id, name, admin_state_up, description, tags, agent_id, state)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                router_id,
                owner,
                body.name,
                body.admin_state_up,
                body.description,
                list(body.tags),
                agent,
                "allocating" if gw else "active",
            )
            if gw is None:
                await emit(conn, "router", "created", await l3store.one_router(conn, router_id))  # type: ignore[arg-type]
                await self.d.specs.publish_for_routers(conn, [router_id])
            else:
                wants = await self.gateways.wants(conn, ctx, router_id, gw)
                new = gateways.NewPort(await self.gateways.insert(conn, router_id, gw.network_id), wants)
        if gw is not None:
            snat = gw.enable_snat if gw.enable_snat is not None else True
            await self.gateways.finish_new(ctx, router_id, new, snat)
        return await self.get(ByIdCommand(context=ctx, id=router_id))

    async def update(self, cmd: t.RouterUpdate) -> t.RouterReply:
        """One change, one revision: a gateway that needs IPAM first lands with the other attributes."""
        body, ctx = cmd.router, cmd.context
        given = body.model_fields_set
        gw = body.external_gateway_info
        _gw_policy(ctx, gw, "update_router")
        pending: gateways.NewPort | gateways.Readdress | None = None
        drop_old: uuid.UUID | None = None
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, ctx, cmd.id, "update")
            check_revision(cmd.if_revision, row["revision_number"])
            before = await l3store.one_router(conn, cmd.id)
            assert before is not None
            snat: bool | None = None
            if _GW in given:
                current = before.external_gateway_info
                moving = gw is None or current is None or gw.network_id != current.network_id
                if current is not None and moving:
                    await self._check_no_fips(conn, cmd.id)
                if gw is None:
                    drop_old = row["gw_port_id"]
                    if drop_old is not None:
                        await portsaga.mark_deleting(conn, drop_old)
                        await conn.execute("UPDATE routers SET gw_port_id = NULL WHERE id = $1", cmd.id)
                elif moving:
                    wants = await self.gateways.wants(conn, ctx, cmd.id, gw)
                    pending = gateways.NewPort(await self.gateways.insert(conn, cmd.id, gw.network_id), wants)
                    snat = gw.enable_snat if gw.enable_snat is not None else True
                else:
                    if gw.external_fixed_ips is not None:
                        wants = await self.gateways.wants(conn, ctx, cmd.id, gw)
                        pending = await self.gateways.plan_readdress(conn, row["gw_port_id"], wants)
                    snat = gw.enable_snat
            routes = None
            if body.routes is not None:
                routes = validate.host_routes(
                    body.routes, 0, field="routes", limit=validate.MAX_ROUTES, exhausted="RoutesExhausted"
                )
                await self._check_nexthops(conn, cmd.id, routes)
            changes = gateways.Changes(
                name=body.name,
                admin_state_up=body.admin_state_up,
                description=body.description,
                tags=list(body.tags) if body.tags is not None else None,
                routes=routes,
                enable_snat=snat,
                if_revision=cmd.if_revision,
            )
            if pending is None:
                await gateways.apply(self.d, conn, cmd.id, changes, before)
        if drop_old is not None:
            await portsaga.finish_delete(self.d, drop_old)
        if isinstance(pending, gateways.NewPort):
            assert snat is not None
            await self.gateways.finish_new(ctx, cmd.id, pending, snat, update=(changes, before))
        elif isinstance(pending, gateways.Readdress):
            await self.gateways.finish_readdress(ctx, cmd.id, pending, changes, before)
        return await self.get(ByIdCommand(context=ctx, id=cmd.id))

    @staticmethod
    async def _check_no_fips(conn: asyncpg.Connection, router_id: uuid.UUID) -> None:
        fip = await conn.fetchval("SELECT id FROM floatingips WHERE router_id = $1 LIMIT 1", router_id)
        if fip is not None:
            raise Conflict(
                f"Gateway cannot be updated for router {router_id}, since a gateway to external network is "
                f"required by one or more floating IPs (e.g. {fip}).",
                type="RouterExternalGatewayInUseByFloatingIp",
            )

    @staticmethod
    async def _check_nexthops(
        conn: asyncpg.Connection, router_id: uuid.UUID, routes: builtins.list[dict[str, str]]
    ) -> None:
        nets = [_net(s) for s in await l3store.router_subnets(conn, router_id)]
        for r in routes:
            hop = validate.ip(r["nexthop"], "routes")
            if not any(hop in n for n in nets):
                raise BadRequest(
                    f"Invalid format for routes: {r}, the nexthop is not connected with router",
                    type="InvalidRoutes",
                    field="routes",
                )

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, ctx, cmd.id, "delete")
            check_revision(cmd.if_revision, row["revision_number"])
            used = await conn.fetchval(
                "SELECT (SELECT count(*) FROM router_ports WHERE router_id = $1) + "
                "(SELECT count(*) FROM floatingips WHERE router_id = $1)",
                cmd.id,
            )
            if used:
                raise Conflict(f"Router {cmd.id} still has ports", type="RouterInUse")
            view = await l3store.one_router(conn, cmd.id)
            await conn.execute("UPDATE routers SET state = 'deleting', state_at = now() WHERE id = $1", cmd.id)
            if row["gw_port_id"] is not None:
                await portsaga.mark_deleting(conn, row["gw_port_id"])
            if row["agent_id"] is not None:
                await self.d.specs.publish_removal(conn, cmd.id, row["agent_id"], row["spec_revision"] + 1)
            await emit(conn, "router", "deleted", view)  # type: ignore[arg-type]
        await self.finish_delete(cmd.id)
        return Deleted(id=cmd.id)

    async def finish_delete(self, router_id: uuid.UUID) -> None:
        """Release the gateway port, then drop the row (the reconciler repeats it after a crash)."""
        async with db_errors(), self.db.acquire() as conn:
            ports = [
                r["id"]
                for r in await conn.fetch(
                    "SELECT id FROM ports WHERE device_id = $1 AND device_owner = $2",
                    str(router_id),
                    t.DEVICE_OWNER_ROUTER_GATEWAY,
                )
            ]
        for port_id in ports:
            async with db_errors(), self.db.acquire() as conn:
                await portsaga.mark_deleting(conn, port_id)
            await portsaga.finish_delete(self.d, port_id)
        async with db_errors(), self.db.acquire() as conn:
            await conn.execute("DELETE FROM routers WHERE id = $1 AND state IN ('deleting', 'allocating')", router_id)


def _net(s: asyncpg.Record):  # type: ignore[no-untyped-def]
    from netaddr import IPNetwork

    return IPNetwork(str(s["cidr"]))
