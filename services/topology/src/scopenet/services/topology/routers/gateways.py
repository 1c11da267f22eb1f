"""A router's external gateway port, on behalf of ``routers.service`` (rules 59-60).

A gateway on a new network (or a first gateway) is a new port through the port saga: inserted
``allocating``, addresses from IPAM, then activated in the transaction that points the router at
it, where the old gateway port is marked ``deleting`` (released afterwards). New fixed IPs on the
same network re-address the existing port instead, as Neutron does: addresses it keeps stay held
(so asking for the address the gateway already has is not a conflict with itself), new ones are
allocated for the same port id, dropped ones go back to IPAM once the change committed.

Either way a router update that changes the gateway is one change: the router's other attributes
are applied in the same final transaction, with one revision bump and one ``router.updated``
event whose ``previous`` is the router before the command.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import Conflict
from scopenet.policy.rules import check_revision, not_found
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.networks import store as netstore
from scopenet.services.topology.ports import rules as portrules
from scopenet.services.topology.ports import saga as portsaga
from scopenet.services.topology.ports.rules import diff_fixed_ips
from scopenet.services.topology.ports.store import one_port
from scopenet.services.topology.routers import rules
from scopenet.services.topology.routers import store as routerstore
from scopenet.services.topology.subnets import store as subnetstore
from scopenet.store.db import db_errors

log = structlog.get_logger("topology.gateways")


@dataclass(frozen=True)
class NewPort:
    port_id: uuid.UUID
    wants: list[portrules.Want]


@dataclass(frozen=True)
class Readdress:
    port_id: uuid.UUID
    current: list[asyncpg.Record]
    keep: list[asyncpg.Record]
    add: list[portrules.Want]


async def apply(
    deps: Deps, conn: asyncpg.Connection, router_id: uuid.UUID, ch: rules.Changes, before: t.Router
) -> None:
    """The one revision bump, ``router.updated`` event and RouterSpec of a router update."""
    await routerstore.update(
        conn,
        router_id,
        name=ch.name,
        admin_state_up=ch.admin_state_up,
        description=ch.description,
        tags=ch.tags,
        routes=ch.routes,
        enable_snat=ch.enable_snat,
    )
    after = await routerstore.one_router(conn, router_id)
    await emit(conn, "router", "updated", after, before)  # type: ignore[arg-type]
    await deps.specs.publish_for_routers(conn, [router_id])


class Gateways:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def wants(
        self, conn: asyncpg.Connection, ctx: CallContext, router_id: uuid.UUID, gw: t.ExternalGatewayInfoRequest
    ) -> builtins.list[portrules.Want]:
        network = await netstore.network(conn, gw.network_id, project=ctx.project_id, admin=ctx.is_admin)
        subnets = await subnetstore.network_subnets(conn, [gw.network_id]) if network is not None else []
        attached = await routerstore.router_subnets(conn, router_id)
        return rules.gateway_wants(gw, network=network, subnets=subnets, attached=attached)

    async def insert(self, conn: asyncpg.Connection, router_id: uuid.UUID, network_id: uuid.UUID) -> uuid.UUID:
        port_id = uuid.uuid4()
        await portsaga.insert(
            conn,
            portrules.NewPort(
                id=port_id,
                network_id=network_id,
                project_id="",
                device_owner=t.DEVICE_OWNER_ROUTER_GATEWAY,
                device_id=str(router_id),
                status="ACTIVE",
            ),
        )
        return port_id

    async def plan_readdress(
        self, conn: asyncpg.Connection, port_id: uuid.UUID, wants: builtins.list[portrules.Want]
    ) -> Readdress:
        current = await routerstore.port_ips(conn, [port_id])
        keep, add = diff_fixed_ips(current, wants)
        return Readdress(port_id, current, keep, add)

    async def finish_new(
        self,
        ctx: CallContext,
        router_id: uuid.UUID,
        new: NewPort,
        enable_snat: bool,
        *,
        update: tuple[rules.Changes, t.Router] | None = None,
    ) -> None:
        """Steps 2-3 of a new gateway port: addresses from IPAM, then point the router at the port
        (a create: the router becomes active; an update: its other changes land with it)."""
        port_id = new.port_id
        self.d.inflight.update({port_id, router_id})
        try:
            try:
                ips = await portsaga.allocate(self.d, ctx, port_id, new.wants)
                async with db_errors(), self.db.acquire() as conn, conn.transaction():
                    row = await routerstore.lock(conn, router_id, active=False)
                    if row is None or row["state"] == "deleting":
                        raise Conflict(f"Router {router_id} was deleted meanwhile", type="RouterNotFound")
                    if update is not None:
                        check_revision(update[0].if_revision, row["revision_number"])
                    await portsaga.activate(conn, port_id, ips)
                    old = row["gw_port_id"]
                    await routerstore.set_gateway(conn, router_id, port_id=port_id, enable_snat=enable_snat)
                    if old is not None:
                        await portsaga.mark_deleting(conn, old)
                    port = await one_port(conn, port_id)
                    assert port is not None
                    await emit(conn, "port", "created", port)
                    if update is None:
                        await emit(conn, "router", "created", await routerstore.one_router(conn, router_id))  # type: ignore[arg-type]
                        await self.d.specs.publish_for_routers(conn, [router_id])
                    else:
                        await apply(self.d, conn, router_id, update[0], update[1])
            except BaseException:
                await portsaga.abandon(self.d, port_id)
                if update is None:
                    async with self.db.acquire() as conn:
                        await routerstore.drop(conn, router_id, states=("allocating",))
                raise
            if old is not None:
                await portsaga.finish_delete(self.d, old)
        finally:
            self.d.inflight.difference_update({port_id, router_id})

    async def finish_readdress(
        self, ctx: CallContext, router_id: uuid.UUID, plan: Readdress, changes: rules.Changes, before: t.Router
    ) -> None:
        """New fixed IPs for the gateway port it has: allocate the new ones, switch, release the dropped."""
        got = await portsaga.allocate_more(self.d, ctx, plan.port_id, plan.add) if plan.add else []
        try:
            async with db_errors(), self.db.acquire() as conn, conn.transaction():
                row = await routerstore.lock(conn, router_id)
                if row is None:
                    raise not_found("router", router_id)
                if row["gw_port_id"] != plan.port_id:
                    raise Conflict(f"The gateway of router {router_id} changed meanwhile; try again", type="Conflict")
                check_revision(changes.if_revision, row["revision_number"])
                port_before = await one_port(conn, plan.port_id)
                await routerstore.replace_port_ips(
                    conn,
                    plan.port_id,
                    [(k["subnet_id"], str(k["ip_address"]), k["ipam_held"]) for k in plan.keep]
                    + [(s, ip, True) for s, ip, _ in got],
                )
                await routerstore.bump_port(conn, plan.port_id)
                await emit(conn, "port", "updated", await one_port(conn, plan.port_id), port_before)  # type: ignore[arg-type]
                await apply(self.d, conn, router_id, changes, before)
        except BaseException:
            try:
                await _release(self.d, plan.port_id, [(s, ip) for s, ip, held in got if held])
            except Exception as exc:  # the orphan sweep gets them back later
                log.warning("gateway_release_deferred", port_id=str(plan.port_id), error=str(exc) or type(exc).__name__)
            raise
        await _release(
            self.d,
            plan.port_id,
            [(c["subnet_id"], str(c["ip_address"])) for c in plan.current if c not in plan.keep and c["ipam_held"]],
        )


async def _release(deps: Deps, port_id: uuid.UUID, addresses: builtins.list[tuple[Any, str]]) -> None:
    """Give addresses of a port that stays back to IPAM (a crash here: the orphan sweep does it)."""
    for subnet_id, ip in addresses:
        await deps.ipam.release_ips(port_id, subnet_id=subnet_id, ip_address=ip)
