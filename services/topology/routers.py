"""Router commands (SPEC §1.5, §2.K rules 59 and 61): CRUD, the external gateway and routes.

The gateway port goes through the port saga: a new gateway port is inserted ``allocating`` and
gets its addresses from IPAM before the router points at it (in the same transaction that
activates it); an old gateway port is marked ``deleting`` then and released afterwards. A router
created with a gateway stays ``allocating`` (invisible) until its gateway is complete.
"""

from __future__ import annotations

import builtins
import uuid

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, ListCommand
from scopenet.errors import BadRequest, Conflict, InvalidInput
from scopenet.services.topology import l3store, portsaga, store, validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.listing import apply_filters
from scopenet.services.topology.policy import (
    check_revision,
    not_found,
    owner_for_create,
    require_admin_for,
    require_owner,
)
from scopenet.services.topology.ports import one_port
from scopenet.store.db import db_errors

_GW = "external_gateway_info"


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

    # ------------------------------------------------------------ gateway

    async def _gateway_wants(
        self, conn: asyncpg.Connection, ctx: CallContext, router_id: uuid.UUID, gw: t.ExternalGatewayInfoRequest
    ) -> builtins.list[portsaga.Want]:
        """Rule 59 and 60: an external network, valid external IPs, no overlap with the interfaces."""
        net = await store.network(conn, gw.network_id, project=ctx.project_id, admin=ctx.is_admin)
        if net is None:
            raise not_found("network", gw.network_id, field=f"{_GW}.network_id")
        if not net["router_external"]:
            raise BadRequest(
                f"Bad router request: Network {gw.network_id} is not an external network", field=f"{_GW}.network_id"
            )
        subnets = await store.network_subnets(conn, [gw.network_id])
        attached = [s for s in await l3store.router_subnets(conn, router_id) if s["kind"] == "interface"]
        l3store.check_overlap(subnets, attached)
        by_id = {s["id"]: s for s in subnets}
        wants: builtins.list[portsaga.Want] = []
        for req in gw.external_fixed_ips or []:
            addr = validate.ip(req.ip_address, f"{_GW}.external_fixed_ips") if req.ip_address else None
            if req.subnet_id is not None:
                s = by_id.get(req.subnet_id)
                if s is None:
                    raise InvalidInput(
                        f"Invalid input for operation: subnet {req.subnet_id} is not on external "
                        f"network {gw.network_id}.",
                        field=f"{_GW}.external_fixed_ips",
                    )
            elif addr is not None:
                s = next((x for x in subnets if addr in _net(x)), None)
                if s is None:
                    raise BadRequest(
                        f"IP address {addr} is not a valid IP for any of the subnets on the network {gw.network_id}.",
                        type="InvalidIpForNetwork",
                        field=f"{_GW}.external_fixed_ips",
                    )
            else:
                raise InvalidInput(
                    "Invalid input for external_fixed_ips: a subnet_id or an ip_address is required.",
                    field=f"{_GW}.external_fixed_ips",
                )
            if addr is not None and s["gateway_ip"] is not None and str(addr) == str(s["gateway_ip"]):
                raise BadRequest(
                    f"Bad router request: IP address {addr} is the gateway of subnet {s['id']}.",
                    field=f"{_GW}.external_fixed_ips",
                )
            wants.append(portsaga.Want(s["id"], str(addr) if addr is not None else None))
        if gw.external_fixed_ips is None:
            for version in (4, 6):
                family = [s["id"] for s in subnets if s["ip_version"] == version]
                if family:
                    wants.append(portsaga.Want(family[0], candidates=tuple(family[1:])))
        if not wants:
            raise BadRequest(
                f"Bad router request: external network {gw.network_id} has no subnet to take an address from.",
                field=f"{_GW}.network_id",
            )
        return wants

    async def _insert_gateway(self, conn: asyncpg.Connection, router_id: uuid.UUID, network_id: uuid.UUID) -> uuid.UUID:
        port_id = uuid.uuid4()
        await portsaga.insert(
            conn,
            portsaga.NewPort(
                id=port_id,
                network_id=network_id,
                project_id="",
                device_owner=t.DEVICE_OWNER_ROUTER_GATEWAY,
                device_id=str(router_id),
                status="ACTIVE",
            ),
        )
        return port_id

    async def _finish_gateway(
        self,
        ctx: CallContext,
        router_id: uuid.UUID,
        port_id: uuid.UUID,
        wants: builtins.list[portsaga.Want],
        enable_snat: bool,
        *,
        creating: bool,
    ) -> None:
        """Steps 2-3 of setting a gateway: addresses from IPAM, then point the router at the port."""
        self.d.inflight.update({port_id, router_id})
        try:
            try:
                ips = await portsaga.allocate(self.d, ctx, port_id, wants)
                async with db_errors(), self.db.acquire() as conn, conn.transaction():
                    row = await conn.fetchrow("SELECT * FROM routers WHERE id = $1 FOR UPDATE", router_id)
                    if row is None or row["state"] == "deleting":
                        raise Conflict(f"Router {router_id} was deleted meanwhile", type="RouterNotFound")
                    await portsaga.activate(conn, port_id, ips)
                    before = None if creating else await l3store.one_router(conn, router_id)
                    old = row["gw_port_id"]
                    await conn.execute(
                        """UPDATE routers SET gw_port_id = $2, enable_snat = $3, state = 'active', state_at = now(),
                               revision_number = revision_number + $4, updated_at = now() WHERE id = $1""",
                        router_id,
                        port_id,
                        enable_snat,
                        0 if creating else 1,
                    )
                    if old is not None:
                        await portsaga.mark_deleting(conn, old)
                    port = await one_port(conn, port_id)
                    assert port is not None
                    await emit(conn, "port", "created", port)
                    after = await l3store.one_router(conn, router_id)
                    await emit(conn, "router", "created" if creating else "updated", after, before)  # type: ignore[arg-type]
                    await self.d.specs.publish_for_routers(conn, [router_id])
            except BaseException:
                await portsaga.abandon(self.d, port_id)
                if creating:
                    async with self.db.acquire() as conn:
                        await conn.execute("DELETE FROM routers WHERE id = $1 AND state = 'allocating'", router_id)
                raise
            if old is not None:
                await portsaga.finish_delete(self.d, old)
        finally:
            self.d.inflight.difference_update({port_id, router_id})

    # ------------------------------------------------------------ create / update / delete

    async def create(self, cmd: t.RouterCreate) -> t.RouterReply:
        body, ctx = cmd.router, cmd.context
        gw = body.external_gateway_info
        _gw_policy(ctx, gw, "create_router")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        router_id = uuid.uuid4()
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            agent = await self.d.extra["agents"].pick(conn)
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
                wants = await self._gateway_wants(conn, ctx, router_id, gw)
                port_id = await self._insert_gateway(conn, router_id, gw.network_id)
        if gw is not None:
            snat = gw.enable_snat if gw.enable_snat is not None else True
            await self._finish_gateway(ctx, router_id, port_id, wants, snat, creating=True)
        return await self.get(ByIdCommand(context=ctx, id=router_id))

    async def update(self, cmd: t.RouterUpdate) -> t.RouterReply:
        body, ctx = cmd.router, cmd.context
        given = body.model_fields_set
        gw = body.external_gateway_info
        _gw_policy(ctx, gw, "update_router")
        new_port: tuple[uuid.UUID, builtins.list[portsaga.Want], bool] | None = None
        drop_old: uuid.UUID | None = None
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, ctx, cmd.id, "update")
            check_revision(cmd.if_revision, row["revision_number"])
            before = await l3store.one_router(conn, cmd.id)
            assert before is not None
            snat = row["enable_snat"]
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
                elif moving or gw.external_fixed_ips is not None:
                    wants = await self._gateway_wants(conn, ctx, cmd.id, gw)
                    port_id = await self._insert_gateway(conn, cmd.id, gw.network_id)
                    keep = current is not None and not moving
                    new_port = (
                        port_id,
                        wants,
                        gw.enable_snat if gw.enable_snat is not None else (snat if keep else True),
                    )
                elif gw.enable_snat is not None:
                    snat = gw.enable_snat
            routes = None
            if body.routes is not None:
                routes = validate.host_routes(
                    body.routes, 0, field="routes", limit=validate.MAX_ROUTES, exhausted="RoutesExhausted"
                )
                await self._check_nexthops(conn, cmd.id, routes)
            await conn.execute(
                """UPDATE routers SET name = coalesce($2, name), admin_state_up = coalesce($3, admin_state_up),
                       description = coalesce($4, description), tags = coalesce($5, tags),
                       routes = coalesce($6::text::jsonb, routes), enable_snat = $7,
                       revision_number = revision_number + 1, updated_at = now()
                   WHERE id = $1""",
                cmd.id,
                body.name,
                body.admin_state_up,
                body.description,
                list(body.tags) if body.tags is not None else None,
                _json(routes) if routes is not None else None,
                snat,
            )
            after = await l3store.one_router(conn, cmd.id)
            await emit(conn, "router", "updated", after, before)  # type: ignore[arg-type]
            await self.d.specs.publish_for_routers(conn, [cmd.id])
        if drop_old is not None:
            await portsaga.finish_delete(self.d, drop_old)
        if new_port is not None:
            await self._finish_gateway(ctx, cmd.id, new_port[0], new_port[1], new_port[2], creating=False)
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


def _json(value: object) -> str:
    import json

    return json.dumps(value)
