"""Port forwarding commands (Neutron's ``floating-ip-port-forwarding``, docs/neutron.md#port-forwarding).

A port forwarding is a sub-resource of a floating IP: whoever sees the floating IP sees its
forwardings. The internal port obeys the rules of associating a floating IP (the caller's port,
an IPv4 address of it, a router linking its subnet to the floating network); the first forwarding
gives the floating IP that router, the last one takes it away. A floating IP forwards either all of
its ports (associated with a port) or some (forwardings), never both. Every change republishes
the router's spec in its transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from scopenet.contracts import portforwarding as pf
from scopenet.contracts.base import CallContext, Deleted
from scopenet.contracts.errors import NotFound
from scopenet.policy.rules import not_found, owner_for_create, require_owner
from scopenet.services.topology import validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.floatingips import rules as fiprules
from scopenet.services.topology.floatingips import store as fipstore
from scopenet.services.topology.listing import apply_filters
from scopenet.services.topology.portforwardings import rules, store
from scopenet.store.db import db_errors


async def set_fip_router(conn: asyncpg.Connection, fip_id: uuid.UUID, router_id: uuid.UUID | None) -> None:
    """The floating IP's router (Neutron sets it with the first forwarding, clears it with the
    last), with its ``floatingip.updated`` event."""
    before = await fipstore.fip_view_row(conn, fip_id)
    await store.set_fip_router(conn, fip_id, router_id)
    after = await fipstore.fip_view_row(conn, fip_id)
    if before is not None and after is not None:
        await emit(conn, "floatingip", "updated", after, before)


async def remove(conn: asyncpg.Connection, row: asyncpg.Record) -> set[uuid.UUID]:
    """Delete one forwarding with its event; the floating IP left without any loses its router.
    Returns the router whose spec changes."""
    await store.delete(conn, row["id"])
    await emit(conn, "port_forwarding", "deleted", rules.view(row))
    fip = await store.fip_router_and_port(conn, row["floatingip_id"])
    router = fip["router_id"] if fip is not None else None
    if (
        fip is not None
        and router is not None
        and not rules.fip_keeps_router(
            has_forwardings=await store.fip_has_any(conn, row["floatingip_id"]), port_id=fip["port_id"]
        )
    ):
        await set_fip_router(conn, row["floatingip_id"], None)
    return {router} if router is not None else set()


async def remove_for_port(
    conn: asyncpg.Connection, port_id: uuid.UUID, *, addresses: Sequence[str] | None = None
) -> set[uuid.UUID]:
    """A port that goes takes its forwardings with it (Neutron's semantics), as does an address the
    port lets go (``addresses``: those; None: all). Returns the routers whose specs change."""
    wanted = None if addresses is None else {str(a).split("/")[0] for a in addresses}
    routers: set[uuid.UUID] = set()
    for row in await store.of_port(conn, port_id):
        if wanted is None or str(row["internal_ip_address"]).split("/")[0] in wanted:
            routers |= await remove(conn, row)
    return routers


def _not_found(pf_id: uuid.UUID) -> NotFound:
    return NotFound(f"Port Forwarding {pf_id} could not be found.", type="PortForwardingNotFound")


class PortForwardings:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def _fip(
        self, conn: asyncpg.Connection, ctx: CallContext, fip_id: uuid.UUID, *, lock: bool = False
    ) -> asyncpg.Record:
        row = await fipstore.fip(conn, fip_id, project=ctx.project_id, admin=ctx.is_admin, lock=lock)
        if row is None:
            raise not_found("floatingip", fip_id)
        return row

    async def get(self, cmd: pf.PortForwardingGet) -> pf.PortForwardingReply:
        async with db_errors(), self.db.acquire() as conn:
            await self._fip(conn, cmd.context, cmd.floatingip_id)
            row = await store.one(conn, cmd.floatingip_id, cmd.id)
        if row is None:
            raise _not_found(cmd.id)
        return pf.PortForwardingReply(port_forwarding=rules.view(row))

    async def list(self, cmd: pf.PortForwardingListCommand) -> pf.PortForwardingList:
        async with db_errors(), self.db.acquire() as conn:
            await self._fip(conn, cmd.context, cmd.floatingip_id)
            rows = await store.of_fip(conn, cmd.floatingip_id)
        views = [rules.view(r) for r in rows]
        return pf.PortForwardingList(port_forwardings=apply_filters(views, cmd.filters, pf.PortForwarding))

    async def _target(
        self,
        conn: asyncpg.Connection,
        ctx: CallContext,
        fip: asyncpg.Record,
        *,
        port_id: uuid.UUID,
        address: str,
    ) -> uuid.UUID:
        """The router serving ``address`` of ``port_id`` for this floating IP, after every check
        Neutron makes on the internal side."""
        fiprules.check_port(ctx, await fipstore.port(conn, port_id), port_id=port_id, owner=fip["project_id"])
        subnet_id = rules.internal_subnet(port_id, await fipstore.port_addresses(conn, port_id), address)
        rules.check_port_unbound(await store.bound_fip(conn, port_id), port_id=port_id, address=address)
        router = await fipstore.serving_router(conn, subnet_id, fip["floating_network_id"])
        if router is None:
            raise rules.no_router(
                network_id=fip["floating_network_id"], subnet_id=subnet_id, port_id=port_id, fip_id=fip["id"]
            )
        rules.check_router_match(fip, router, port_id=port_id)
        return router

    async def create(self, cmd: pf.PortForwardingCreate) -> pf.PortForwardingReply:
        body, ctx = cmd.port_forwarding, cmd.context
        proto = rules.protocol(body.protocol)
        ports = rules.ports(
            external_port=body.external_port,
            external_range=body.external_port_range,
            internal_port=body.internal_port,
            internal_range=body.internal_port_range,
        )
        address = str(validate.ip(body.internal_ip_address, "internal_ip_address"))
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await store.lock_port(conn, body.internal_port_id)
            fip = await self._fip(conn, ctx, cmd.floatingip_id, lock=True)
            require_owner(ctx, fip["project_id"], "create", "port_forwarding")
            owner_for_create(ctx, body.project_id, body.tenant_id)
            rules.check_fip_free(fip, port_id=body.internal_port_id, address=address)
            router = await self._target(conn, ctx, fip, port_id=body.internal_port_id, address=address)
            others = await store.neighbours(conn, fip_id=fip["id"], port_id=body.internal_port_id, exclude=None)
            rules.check_collisions(
                others, fip_id=fip["id"], port_id=body.internal_port_id, address=address, proto=proto, want=ports
            )
            if fip["router_id"] is None:
                await set_fip_router(conn, fip["id"], router)
            row = await store.insert(
                conn,
                pf_id=uuid.uuid4(),
                project_id=fip["project_id"],
                fip_id=fip["id"],
                port_id=body.internal_port_id,
                proto=proto,
                address=address,
                ports=ports,
                description=body.description,
            )
            view = rules.view(row)
            await emit(conn, "port_forwarding", "created", view)
            await self.d.specs.publish_for_routers(conn, [router])
        return pf.PortForwardingReply(port_forwarding=view)

    async def update(self, cmd: pf.PortForwardingUpdate) -> pf.PortForwardingReply:
        body, ctx = cmd.port_forwarding, cmd.context
        given = body.model_fields_set
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            if body.internal_port_id is not None:
                await store.lock_port(conn, body.internal_port_id)
            fip = await self._fip(conn, ctx, cmd.floatingip_id, lock=True)
            require_owner(ctx, fip["project_id"], "update", "port_forwarding")
            row = await store.one(conn, cmd.floatingip_id, cmd.id, lock=True)
            if row is None:
                raise _not_found(cmd.id)
            before = rules.view(row)
            proto = rules.protocol(body.protocol) if body.protocol is not None else row["protocol"]
            ports = rules.ports(
                external_port=body.external_port if "external_port" in given else None,
                external_range=body.external_port_range
                if "external_port_range" in given
                else (None if "external_port" in given else before.external_port_range),
                internal_port=body.internal_port if "internal_port" in given else None,
                internal_range=body.internal_port_range
                if "internal_port_range" in given
                else (None if "internal_port" in given else before.internal_port_range),
            )
            port_id = body.internal_port_id or row["internal_port_id"]
            address = before.internal_ip_address
            if body.internal_ip_address is not None:
                address = str(validate.ip(body.internal_ip_address, "internal_ip_address"))
            if port_id != row["internal_port_id"] or address != before.internal_ip_address:
                await self._target(conn, ctx, fip, port_id=port_id, address=address)
            others = await store.neighbours(conn, fip_id=fip["id"], port_id=port_id, exclude=cmd.id)
            rules.check_collisions(others, fip_id=fip["id"], port_id=port_id, address=address, proto=proto, want=ports)
            row = await store.update(
                conn,
                cmd.id,
                port_id=port_id,
                proto=proto,
                address=address,
                ports=ports,
                description=body.description if body.description is not None else row["description"],
            )
            view = rules.view(row)
            await emit(conn, "port_forwarding", "updated", view, before)
            if fip["router_id"] is not None:
                await self.d.specs.publish_for_routers(conn, [fip["router_id"]])
        return pf.PortForwardingReply(port_forwarding=view)

    async def delete(self, cmd: pf.PortForwardingDelete) -> Deleted:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            fip = await self._fip(conn, ctx, cmd.floatingip_id, lock=True)
            require_owner(ctx, fip["project_id"], "delete", "port_forwarding")
            row = await store.one(conn, cmd.floatingip_id, cmd.id, lock=True)
            if row is None:
                raise _not_found(cmd.id)
            await self.d.specs.publish_for_routers(conn, await remove(conn, row))
        return Deleted(id=cmd.id)
