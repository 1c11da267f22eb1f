"""Floating IP commands (rule 62).

A floating IP is a port on the external network (``network:floatingip``, no project) created by the
port saga, plus an association: the fixed port, its IPv4 address, and the router that links that
address's subnet to the floating network (found, never given). Association, moves and release are
topology-only changes; each republishes the RouterSpecs of the routers involved.
"""

from __future__ import annotations

import contextlib
import uuid

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, QueryCommand
from scopenet.contracts.endpoint import Rendered
from scopenet.policy.rules import check_revision, not_found, owner_for_create, require_owner
from scopenet.services.topology import sqllist
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.floatingips import rules
from scopenet.services.topology.floatingips import store as fipstore
from scopenet.services.topology.networks import store as netstore
from scopenet.services.topology.portforwardings import rules as pfrules
from scopenet.services.topology.portforwardings import store as pfstore
from scopenet.services.topology.ports import rules as portrules
from scopenet.services.topology.ports import saga as portsaga
from scopenet.services.topology.subnets import store as subnetstore
from scopenet.store.db import db_errors


async def association(
    conn: asyncpg.Connection,
    ctx: CallContext,
    *,
    fip_id: uuid.UUID,
    owner: str,
    network_id: uuid.UUID,
    port_id: uuid.UUID,
    fixed_ip: str | None,
) -> tuple[str, uuid.UUID]:
    """(fixed IPv4 address, router) for associating ``port_id``, or the error rule 62 names."""
    rules.check_port(ctx, await fipstore.port(conn, port_id), port_id=port_id, owner=owner)
    address, subnet_id = rules.fixed_address(port_id, await fipstore.port_addresses(conn, port_id), fixed_ip)
    router = rules.check_router(
        await fipstore.serving_router(conn, subnet_id, network_id),
        network_id=network_id,
        subnet_id=subnet_id,
        port_id=port_id,
    )
    other = await fipstore.other_fip_state(conn, port_id=port_id, address=address, fip_id=fip_id, network_id=network_id)
    rules.check_address_free(other, port_id=port_id, address=address, network_id=network_id)
    return address, router


class FloatingIps:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def get(self, cmd: ByIdCommand) -> t.FloatingIpReply:
        async with db_errors(), self.db.acquire() as conn:
            row = await fipstore.fip(conn, cmd.id, project=cmd.context.project_id, admin=cmd.context.is_admin)
        if row is None:
            raise not_found("floatingip", cmd.id)
        return t.FloatingIpReply(floatingip=fipstore.fip_view(row))

    async def list(self, cmd: QueryCommand) -> Rendered[t.FloatingIpList]:
        """One page in one query, its JSON built by Postgres (``sqllist``)."""
        async with db_errors(), self.db.acquire() as conn:
            found = await sqllist.page(conn, fipstore.TABLE, cmd)
        return Rendered(found.reply("floatingips"))

    async def create(self, cmd: t.FloatingIpCreate) -> t.FloatingIpReply:
        body, ctx = cmd.floatingip, cmd.context
        rules.check_floating_address(ctx, body.floating_ip_address)
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        fip_id, port_id = uuid.uuid4(), uuid.uuid4()
        self.d.inflight.update({fip_id, port_id})
        try:
            async with db_errors(), self.db.acquire() as conn, conn.transaction():
                await self.d.quotas.check(conn, "floatingip", owner)  # docs/neutron.md#quotas
                net = await netstore.network(conn, body.floating_network_id, project=ctx.project_id, admin=ctx.is_admin)
                subnets = await subnetstore.network_subnets(conn, [net["id"]]) if net is not None else []
                wants = rules.floating_wants(body, network=net, subnets=subnets)
                fixed, router = None, None
                if body.port_id is not None:
                    fixed, router = await association(
                        conn,
                        ctx,
                        fip_id=fip_id,
                        owner=owner,
                        network_id=body.floating_network_id,
                        port_id=body.port_id,
                        fixed_ip=body.fixed_ip_address,
                    )
                await portsaga.insert(
                    conn,
                    portrules.NewPort(
                        id=port_id,
                        network_id=body.floating_network_id,
                        project_id="",
                        device_owner=t.DEVICE_OWNER_FLOATINGIP,
                        device_id=str(fip_id),
                        status="N/A",
                    ),
                )
                await fipstore.insert(
                    conn, fip_id=fip_id, owner=owner, body=body, port_id=port_id, fixed=fixed, router=router
                )
            try:
                ips = await portsaga.allocate(self.d, ctx, port_id, wants)
                async with (
                    db_errors(
                        "The fixed IP already has a floating IP", conflict_type="FloatingIPPortAlreadyAssociated"
                    ),
                    self.db.acquire() as conn,
                    conn.transaction(),
                ):
                    await portsaga.activate(conn, port_id, ips)
                    await fipstore.set_address(conn, fip_id, next(ip for _, ip, _ in ips if ":" not in ip))
                    view = await fipstore.fip_view_row(conn, fip_id)
                    await emit(conn, "floatingip", "created", view)  # type: ignore[arg-type]
                    if router is not None:
                        await self.d.specs.publish_for_routers(conn, [router])
            except BaseException:
                # The client hears of a failure: the association goes now, the port's rollback
                # (which needs IPAM) may wait for the reconciler.
                with contextlib.suppress(Exception):
                    async with self.db.acquire() as conn:
                        await fipstore.drop_pending_association(conn, fip_id)
                await portsaga.abandon(self.d, port_id)
                raise
        finally:
            self.d.inflight.difference_update({fip_id, port_id})
        return t.FloatingIpReply(floatingip=view)

    async def update(self, cmd: t.FloatingIpUpdate) -> t.FloatingIpReply:
        body, ctx = cmd.floatingip, cmd.context
        given = body.model_fields_set
        async with (
            db_errors("The fixed IP already has a floating IP", conflict_type="FloatingIPPortAlreadyAssociated"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            row = await fipstore.fip(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("floatingip", cmd.id)
            require_owner(ctx, row["project_id"], "update", "floatingip")
            check_revision(cmd.if_revision, row["revision_number"])
            before = fipstore.fip_view(row)
            port_id, fixed, router = row["port_id"], row["fixed_ip_address"], row["router_id"]
            # A floating IP forwards all its ports (associated) or some (port forwardings), never both.
            forwarding = "port_id" in given and await pfstore.fip_has_any(conn, cmd.id)
            if forwarding and body.port_id is not None:
                raise pfrules.fip_in_use(cmd.id)
            if "port_id" in given and not forwarding:
                if body.port_id is None:
                    port_id, fixed, router = None, None, None
                else:
                    port_id = body.port_id
                    fixed, router = await association(
                        conn,
                        ctx,
                        fip_id=cmd.id,
                        owner=row["project_id"],
                        network_id=row["floating_network_id"],
                        port_id=body.port_id,
                        fixed_ip=body.fixed_ip_address,
                    )
            await fipstore.update(
                conn,
                cmd.id,
                port_id=port_id,
                fixed=str(fixed) if fixed is not None else None,
                router=router,
                description=body.description,
                tags=list(body.tags) if body.tags is not None else None,
            )
            after = await fipstore.fip_view_row(conn, cmd.id)
            await emit(conn, "floatingip", "updated", after, before)  # type: ignore[arg-type]
            await self.d.specs.publish_for_routers(conn, [r for r in (row["router_id"], router) if r is not None])
        return t.FloatingIpReply(floatingip=after)

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await fipstore.fip(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("floatingip", cmd.id)
            require_owner(ctx, row["project_id"], "delete", "floatingip")
            check_revision(cmd.if_revision, row["revision_number"])
            if await pfstore.fip_has_any(conn, cmd.id):  # Neutron refuses too (FipInUseByPortForwarding)
                raise pfrules.fip_in_use(cmd.id)
            await portsaga.mark_deleting(conn, row["floating_port_id"])
            # Deleted from here on, even if IPAM is away and the row waits for the reconciler: it
            # no longer holds its port or router (no "in use by floating IP" refusal for a floating
            # IP that answers 404, and the port may take a new one at once).
            await fipstore.dissociate(conn, cmd.id)
            await emit(conn, "floatingip", "deleted", fipstore.fip_view(row))
            if row["router_id"] is not None:
                await self.d.specs.publish_for_routers(conn, [row["router_id"]])
        self.d.inflight.add(row["floating_port_id"])
        try:
            async with db_errors():
                await portsaga.finish_delete(self.d, row["floating_port_id"])
        finally:
            self.d.inflight.discard(row["floating_port_id"])
        return Deleted(id=cmd.id)
