"""A router's external gateway port (SPEC §1.5, §2.K rules 59-60), on behalf of ``routers``.

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
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from netaddr import IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, InvalidInput
from scopenet.policy.rules import check_revision, not_found
from scopenet.services.topology import l3store, portsaga, store, validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.ports import diff_fixed_ips, one_port
from scopenet.store.db import db_errors

GW = "external_gateway_info"

log = structlog.get_logger("topology.gateways")


@dataclass(frozen=True)
class Changes:
    """A router update's own attributes, applied with whatever the gateway needs."""

    name: str | None = None
    admin_state_up: bool | None = None
    description: str | None = None
    tags: list[str] | None = None
    routes: list[dict[str, str]] | None = None
    enable_snat: bool | None = None
    if_revision: int | None = None
    """The update's If-Match, checked again where the change is applied."""


@dataclass(frozen=True)
class NewPort:
    port_id: uuid.UUID
    wants: list[portsaga.Want]


@dataclass(frozen=True)
class Readdress:
    port_id: uuid.UUID
    current: list[asyncpg.Record]
    keep: list[asyncpg.Record]
    add: list[portsaga.Want]


async def apply(deps: Deps, conn: asyncpg.Connection, router_id: uuid.UUID, ch: Changes, before: t.Router) -> None:
    """The one revision bump, ``router.updated`` event and RouterSpec of a router update."""
    await conn.execute(
        """UPDATE routers SET name = coalesce($2, name), admin_state_up = coalesce($3, admin_state_up),
               description = coalesce($4, description), tags = coalesce($5, tags),
               routes = coalesce($6::text::jsonb, routes), enable_snat = coalesce($7, enable_snat),
               revision_number = revision_number + 1, updated_at = now()
           WHERE id = $1""",
        router_id,
        ch.name,
        ch.admin_state_up,
        ch.description,
        ch.tags,
        json.dumps(ch.routes) if ch.routes is not None else None,
        ch.enable_snat,
    )
    after = await l3store.one_router(conn, router_id)
    await emit(conn, "router", "updated", after, before)  # type: ignore[arg-type]
    await deps.specs.publish_for_routers(conn, [router_id])


class Gateways:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def wants(
        self, conn: asyncpg.Connection, ctx: CallContext, router_id: uuid.UUID, gw: t.ExternalGatewayInfoRequest
    ) -> builtins.list[portsaga.Want]:
        """Rule 59 and 60: an external network, valid external IPs, no overlap with the interfaces."""
        net = await store.network(conn, gw.network_id, project=ctx.project_id, admin=ctx.is_admin)
        if net is None:
            raise not_found("network", gw.network_id, field=f"{GW}.network_id")
        if not net["router_external"]:
            raise BadRequest(
                f"Bad router request: Network {gw.network_id} is not an external network", field=f"{GW}.network_id"
            )
        subnets = await store.network_subnets(conn, [gw.network_id])
        attached = [s for s in await l3store.router_subnets(conn, router_id) if s["kind"] == "interface"]
        l3store.check_overlap(subnets, attached)
        by_id = {s["id"]: s for s in subnets}
        wants: builtins.list[portsaga.Want] = []
        for req in gw.external_fixed_ips or []:
            addr = validate.ip(req.ip_address, f"{GW}.external_fixed_ips") if req.ip_address else None
            if req.subnet_id is not None:
                s = by_id.get(req.subnet_id)
                if s is None:
                    raise InvalidInput(
                        f"Invalid input for operation: subnet {req.subnet_id} is not on external "
                        f"network {gw.network_id}.",
                        field=f"{GW}.external_fixed_ips",
                    )
            elif addr is not None:
                s = next((x for x in subnets if addr in IPNetwork(str(x["cidr"]))), None)
                if s is None:
                    raise BadRequest(
                        f"IP address {addr} is not a valid IP for any of the subnets on the network {gw.network_id}.",
                        type="InvalidIpForNetwork",
                        field=f"{GW}.external_fixed_ips",
                    )
            else:
                raise InvalidInput(
                    "Invalid input for external_fixed_ips: a subnet_id or an ip_address is required.",
                    field=f"{GW}.external_fixed_ips",
                )
            if addr is not None and s["gateway_ip"] is not None and str(addr) == str(s["gateway_ip"]):
                raise BadRequest(
                    f"Bad router request: IP address {addr} is the gateway of subnet {s['id']}.",
                    field=f"{GW}.external_fixed_ips",
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
                field=f"{GW}.network_id",
            )
        return wants

    async def insert(self, conn: asyncpg.Connection, router_id: uuid.UUID, network_id: uuid.UUID) -> uuid.UUID:
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

    async def plan_readdress(
        self, conn: asyncpg.Connection, port_id: uuid.UUID, wants: builtins.list[portsaga.Want]
    ) -> Readdress:
        current = list(await conn.fetch("SELECT * FROM port_ips WHERE port_id = $1", port_id))
        keep, add = diff_fixed_ips(current, wants)
        return Readdress(port_id, current, keep, add)

    async def finish_new(
        self,
        ctx: CallContext,
        router_id: uuid.UUID,
        new: NewPort,
        enable_snat: bool,
        *,
        update: tuple[Changes, t.Router] | None = None,
    ) -> None:
        """Steps 2-3 of a new gateway port: addresses from IPAM, then point the router at the port
        (a create: the router becomes active; an update: its other changes land with it)."""
        port_id = new.port_id
        self.d.inflight.update({port_id, router_id})
        try:
            try:
                ips = await portsaga.allocate(self.d, ctx, port_id, new.wants)
                async with db_errors(), self.db.acquire() as conn, conn.transaction():
                    row = await conn.fetchrow("SELECT * FROM routers WHERE id = $1 FOR UPDATE", router_id)
                    if row is None or row["state"] == "deleting":
                        raise Conflict(f"Router {router_id} was deleted meanwhile", type="RouterNotFound")
                    if update is not None:
                        check_revision(update[0].if_revision, row["revision_number"])
                    await portsaga.activate(conn, port_id, ips)
                    old = row["gw_port_id"]
                    await conn.execute(
                        "UPDATE routers SET gw_port_id = $2, enable_snat = $3, state = 'active', state_at = now() "
                        "WHERE id = $1",
                        router_id,
                        port_id,
                        enable_snat,
                    )
                    if old is not None:
                        await portsaga.mark_deleting(conn, old)
                    port = await one_port(conn, port_id)
                    assert port is not None
                    await emit(conn, "port", "created", port)
                    if update is None:
                        await emit(conn, "router", "created", await l3store.one_router(conn, router_id))  # type: ignore[arg-type]
                        await self.d.specs.publish_for_routers(conn, [router_id])
                    else:
                        await apply(self.d, conn, router_id, update[0], update[1])
            except BaseException:
                await portsaga.abandon(self.d, port_id)
                if update is None:
                    async with self.db.acquire() as conn:
                        await conn.execute("DELETE FROM routers WHERE id = $1 AND state = 'allocating'", router_id)
                raise
            if old is not None:
                await portsaga.finish_delete(self.d, old)
        finally:
            self.d.inflight.difference_update({port_id, router_id})

    async def finish_readdress(
        self, ctx: CallContext, router_id: uuid.UUID, plan: Readdress, changes: Changes, before: t.Router
    ) -> None:
        """New fixed IPs for the gateway port it has: allocate the new ones, switch, release the dropped."""
        got = await portsaga.allocate_more(self.d, ctx, plan.port_id, plan.add) if plan.add else []
        try:
            async with db_errors(), self.db.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "SELECT * FROM routers WHERE id = $1 AND state = 'active' FOR UPDATE", router_id
                )
                if row is None:
                    raise not_found("router", router_id)
                if row["gw_port_id"] != plan.port_id:
                    raise Conflict(f"The gateway of router {router_id} changed meanwhile; try again", type="Conflict")
                check_revision(changes.if_revision, row["revision_number"])
                port_before = await one_port(conn, plan.port_id)
                await conn.execute("DELETE FROM port_ips WHERE port_id = $1", plan.port_id)
                await conn.executemany(
                    "INSERT INTO port_ips (port_id, subnet_id, ip_address, ipam_held) VALUES ($1, $2, $3::inet, $4)",
                    [(plan.port_id, k["subnet_id"], str(k["ip_address"]), k["ipam_held"]) for k in plan.keep]
                    + [(plan.port_id, s, ip, True) for s, ip, _ in got],
                )
                await conn.execute(
                    "UPDATE ports SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1",
                    plan.port_id,
                )
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
