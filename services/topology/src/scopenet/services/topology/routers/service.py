"""Router commands (rules 59 and 61): CRUD, the external gateway and routes.

The gateway port is ``gateways``'s: a new gateway port goes through the port saga and the router
points at it once it has its addresses; new fixed IPs on the same network re-address the port it
has. A router created with a gateway stays ``allocating`` (invisible) until its gateway is
complete; an update that changes the gateway applies everything in that last step, as one change.
"""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, QueryCommand
from scopenet.contracts.endpoint import Rendered
from scopenet.policy.rules import check_revision, not_found, owner_for_create
from scopenet.services.topology import sqllist
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.floatingips import store as fipstore
from scopenet.services.topology.ports import saga as portsaga
from scopenet.services.topology.routers import extraroutes, gateways, rules, store
from scopenet.store.db import db_errors


class Routers:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db
        self.gateways = gateways.Gateways(deps)

    async def get(self, cmd: ByIdCommand) -> t.RouterReply:
        async with db_errors(), self.db.acquire() as conn:
            router = await store.one_router(conn, cmd.id, project=cmd.context.project_id, admin=cmd.context.is_admin)
        if router is None:
            raise not_found("router", cmd.id)
        return t.RouterReply(router=router)

    async def list(self, cmd: QueryCommand) -> Rendered[t.RouterList]:
        """One page in one query, its JSON built by Postgres (``sqllist``)."""
        async with db_errors(), self.db.acquire() as conn:
            found = await sqllist.page(conn, store.TABLE, cmd)
        return Rendered(found.reply("routers"))

    async def _locked(
        self, conn: asyncpg.Connection, ctx: CallContext, router_id: uuid.UUID, action: str
    ) -> asyncpg.Record:
        return rules.check_router(ctx, await store.lock(conn, router_id), router_id, action)

    # ------------------------------------------------------------ create / update / delete

    async def create(self, cmd: t.RouterCreate) -> t.RouterReply:
        body, ctx = cmd.router, cmd.context
        gw = body.external_gateway_info
        rules.gateway_policy(ctx, gw, "create_router")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        router_id = uuid.uuid4()
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self.d.quotas.check(conn, "router", owner)  # docs/neutron.md#quotas
            agent = await self.d.agents.pick(conn)
            await store.insert(
                conn, id_=router_id, owner=owner, body=body, agent=agent, state="allocating" if gw else "active"
            )
            if gw is None:
                await emit(conn, "router", "created", await store.one_router(conn, router_id))  # type: ignore[arg-type]
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
        rules.gateway_policy(ctx, gw, "update_router")
        pending: gateways.NewPort | gateways.Readdress | None = None
        drop_old: uuid.UUID | None = None
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, ctx, cmd.id, "update")
            check_revision(cmd.if_revision, row["revision_number"])
            before = await store.one_router(conn, cmd.id)
            assert before is not None
            snat: bool | None = None
            if rules.GW in given:
                current = before.external_gateway_info
                moving = rules.gateway_moves(gw, current)
                if current is not None and moving:
                    rules.check_no_fips(cmd.id, await fipstore.fip_on_router(conn, cmd.id))
                if gw is None:
                    drop_old = row["gw_port_id"]
                    if drop_old is not None:
                        await portsaga.mark_deleting(conn, drop_old)
                        await store.clear_gateway(conn, cmd.id)
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
                routes = await extraroutes.checked(
                    conn, cmd.id, extraroutes.normalised(body.routes), limit=self.d.settings.max_routes
                )
            changes = rules.Changes(
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

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, ctx, cmd.id, "delete")
            check_revision(cmd.if_revision, row["revision_number"])
            rules.check_unused(cmd.id, await store.ports_and_fips(conn, cmd.id))
            view = await store.one_router(conn, cmd.id)
            await store.mark_deleting(conn, cmd.id)
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
            ports = await store.gateway_ports(conn, router_id)
        for port_id in ports:
            async with db_errors(), self.db.acquire() as conn:
                await portsaga.mark_deleting(conn, port_id)
            await portsaga.finish_delete(self.d, port_id)
        async with db_errors(), self.db.acquire() as conn:
            await store.drop(conn, router_id, states=("deleting", "allocating"))
