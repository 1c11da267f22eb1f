"""Floating IP commands (SPEC §1.7, §2.K rule 62).

A floating IP is a port on the external network (``network:floatingip``, no project) created by the
port saga, plus an association: the fixed port, its IPv4 address, and the router that links that
address's subnet to the floating network (found, never given). Association, moves and release are
topology-only changes; each republishes the RouterSpecs of the routers involved.
"""

from __future__ import annotations

import builtins
import contextlib
import uuid

import asyncpg
from netaddr import IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, ListCommand
from scopenet.contracts.errors import BadRequest, Conflict, NotFound, TransientError
from scopenet.policy.rules import (
    check_revision,
    not_found,
    owner_for_create,
    require_admin_for,
    require_owner,
)
from scopenet.services.topology import l3store, portsaga, store, validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.listing import apply_filters
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
    port = await conn.fetchrow(
        "SELECT p.*, n.project_id AS net_owner FROM ports p JOIN networks n ON n.id = p.network_id "
        "WHERE p.id = $1 AND p.state = 'active'",
        port_id,
    )
    if port is None or not (ctx.is_admin or ctx.project_id in (port["project_id"], port["net_owner"])):
        raise not_found("port", port_id, field="port_id")
    if not ctx.is_admin and port["project_id"] != owner:
        raise BadRequest(
            f"Cannot create floating IP and bind it to Port {port_id}, since that port is owned by a different tenant.",
            field="port_id",
        )
    ips = await conn.fetch("SELECT subnet_id, ip_address FROM port_ips WHERE port_id = $1", port_id)
    v4 = [i for i in ips if IPNetwork(str(i["ip_address"])).version == 4]
    if fixed_ip is not None:
        addr = validate.ip(fixed_ip, "fixed_ip_address")
        if addr.version != 4:
            raise BadRequest(
                f"Bad floatingip request: Cannot process floating IP association with "
                f"{fixed_ip}, since that is not an IPv4 address.",
                field="fixed_ip_address",
            )
        hit = [i for i in v4 if str(i["ip_address"]).split("/")[0] == str(addr)]
        if not hit:
            raise BadRequest(f"Port {port_id} does not have fixed ip {fixed_ip}", field="fixed_ip_address")
    else:
        if not v4:
            raise BadRequest(
                f"Bad floatingip request: Cannot add floating IP to port {port_id} that has no fixed IPv4 addresses.",
                field="port_id",
            )
        if len(v4) > 1:
            raise BadRequest(
                f"Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 "
                "address when assigning a floating IP.",
                field="fixed_ip_address",
            )
        hit = v4
    address = str(hit[0]["ip_address"]).split("/")[0]
    router = await conn.fetchval(
        """SELECT r.id FROM routers r JOIN router_ports rp ON rp.router_id = r.id
               JOIN port_ips i ON i.port_id = rp.port_id JOIN ports g ON g.id = r.gw_port_id
           WHERE i.subnet_id = $1 AND g.network_id = $2 AND r.state = 'active' AND g.state = 'active'
           ORDER BY r.created_at LIMIT 1""",
        hit[0]["subnet_id"],
        network_id,
    )
    if router is None:
        raise NotFound(
            f"External network {network_id} is not reachable from subnet {hit[0]['subnet_id']}. "
            f"Therefore, cannot associate Port {port_id} with a Floating IP.",
            type="ExternalGatewayForFloatingIPNotFound",
            field="port_id",
        )
    other = await conn.fetchrow(
        "SELECT f.id, p.state FROM floatingips f JOIN ports p ON p.id = f.floating_port_id "
        "WHERE f.port_id = $1 AND f.fixed_ip_address = $2::inet AND f.id <> $3 AND f.floating_network_id = $4",
        port_id,
        address,
        fip_id,
        network_id,
    )
    if other is not None and other["state"] != "active":
        # A create still running, or one that died half-way and waits for the reconciler's
        # rollback: no client can see it, so "already has a floating IP" would be a riddle.
        raise TransientError(
            f"A floating IP for fixed IP {address} of port {port_id} is being created or rolled back; try again"
        )
    if other is not None:
        raise Conflict(
            f"Cannot associate floating IP with port {port_id} using fixed IP {address}, as that fixed "
            f"IP already has a floating IP on external network {network_id}.",
            type="FloatingIPPortAlreadyAssociated",
            field="port_id",
        )
    return address, router


class FloatingIps:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def get(self, cmd: ByIdCommand) -> t.FloatingIpReply:
        async with db_errors(), self.db.acquire() as conn:
            rows = await l3store.fips(
                conn, project=cmd.context.project_id, admin=cmd.context.is_admin, where="f.id = $3", args=(cmd.id,)
            )
        if not rows:
            raise not_found("floatingip", cmd.id)
        return t.FloatingIpReply(floatingip=l3store.fip_view(rows[0]))

    async def list(self, cmd: ListCommand) -> t.FloatingIpList:
        async with db_errors(), self.db.acquire() as conn:
            rows = await l3store.fips(conn, project=cmd.context.project_id, admin=cmd.context.is_admin)
        return t.FloatingIpList(
            floatingips=apply_filters([l3store.fip_view(r) for r in rows], cmd.filters, t.FloatingIp)
        )

    async def create(self, cmd: t.FloatingIpCreate) -> t.FloatingIpReply:
        body, ctx = cmd.floatingip, cmd.context
        if body.floating_ip_address is not None:
            require_admin_for(ctx, "floating_ip_address", "create_floatingip")
            if validate.ip(body.floating_ip_address, "floating_ip_address").version != 4:
                raise BadRequest("Floating IPs are IPv4 only", field="floating_ip_address")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        fip_id, port_id = uuid.uuid4(), uuid.uuid4()
        self.d.inflight.update({fip_id, port_id})
        try:
            async with db_errors(), self.db.acquire() as conn, conn.transaction():
                wants = await self._wants(conn, ctx, body)
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
                    portsaga.NewPort(
                        id=port_id,
                        network_id=body.floating_network_id,
                        project_id="",
                        device_owner=t.DEVICE_OWNER_FLOATINGIP,
                        device_id=str(fip_id),
                        status="N/A",
                    ),
                )
                await conn.execute(
                    """INSERT INTO floatingips (id, project_id, floating_network_id, floating_port_id, port_id,
                           fixed_ip_address, router_id, description, tags)
                       VALUES ($1, $2, $3, $4, $5, $6::inet, $7, $8, $9)""",
                    fip_id,
                    owner,
                    body.floating_network_id,
                    port_id,
                    body.port_id,
                    fixed,
                    router,
                    body.description,
                    list(body.tags),
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
                    v4 = next(ip for _, ip, _ in ips if ":" not in ip)
                    await conn.execute(
                        "UPDATE floatingips SET floating_ip_address = $2::inet, created_at = now(), "
                        "updated_at = now() WHERE id = $1",
                        fip_id,
                        v4,
                    )
                    view = await l3store.fip_view_row(conn, fip_id)
                    await emit(conn, "floatingip", "created", view)  # type: ignore[arg-type]
                    if router is not None:
                        await self.d.specs.publish_for_routers(conn, [router])
            except BaseException:
                # The client hears of a failure: the association goes now, the port's rollback
                # (which needs IPAM) may wait for the reconciler.
                with contextlib.suppress(Exception):
                    async with self.db.acquire() as conn:
                        await conn.execute(
                            "UPDATE floatingips f SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL "
                            "FROM ports p WHERE f.id = $1 AND p.id = f.floating_port_id AND p.state <> 'active'",
                            fip_id,
                        )
                await portsaga.abandon(self.d, port_id)
                raise
        finally:
            self.d.inflight.difference_update({fip_id, port_id})
        return t.FloatingIpReply(floatingip=view)

    async def _wants(
        self, conn: asyncpg.Connection, ctx: CallContext, body: t.FloatingIpCreateBody
    ) -> builtins.list[portsaga.Want]:
        net = await store.network(conn, body.floating_network_id, project=ctx.project_id, admin=ctx.is_admin)
        if net is None:
            raise not_found("network", body.floating_network_id, field="floating_network_id")
        if not net["router_external"]:
            raise BadRequest(
                f"Bad floatingip request: Network {body.floating_network_id} is not a valid external network.",
                field="floating_network_id",
            )
        v4 = [s for s in await store.network_subnets(conn, [net["id"]]) if s["ip_version"] == 4]
        if not v4:
            raise BadRequest(
                f"Bad floatingip request: Network {body.floating_network_id} does not contain any IPv4 subnet.",
                field="floating_network_id",
            )
        if body.subnet_id is not None:
            chosen = [s for s in v4 if s["id"] == body.subnet_id]
            if not chosen:
                raise BadRequest(
                    f"Bad floatingip request: subnet {body.subnet_id} is not an IPv4 subnet of network "
                    f"{body.floating_network_id}.",
                    field="subnet_id",
                )
            v4 = chosen
        if body.floating_ip_address is not None:
            addr = validate.ip(body.floating_ip_address, "floating_ip_address")
            hit = [s for s in v4 if addr in IPNetwork(str(s["cidr"]))]
            if not hit:
                raise BadRequest(
                    f"IP address {addr} is not a valid IP for any of the subnets on the network "
                    f"{body.floating_network_id}.",
                    type="InvalidIpForNetwork",
                    field="floating_ip_address",
                )
            return [portsaga.Want(hit[0]["id"], str(addr))]
        return [portsaga.Want(v4[0]["id"], candidates=tuple(s["id"] for s in v4[1:]))]

    async def update(self, cmd: t.FloatingIpUpdate) -> t.FloatingIpReply:
        body, ctx = cmd.floatingip, cmd.context
        given = body.model_fields_set
        async with (
            db_errors("The fixed IP already has a floating IP", conflict_type="FloatingIPPortAlreadyAssociated"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            rows = await l3store.fips(
                conn, project=ctx.project_id, admin=ctx.is_admin, where="f.id = $3", args=(cmd.id,), lock=True
            )
            if not rows:
                raise not_found("floatingip", cmd.id)
            row = rows[0]
            require_owner(ctx, row["project_id"], "update", "floatingip")
            check_revision(cmd.if_revision, row["revision_number"])
            before = l3store.fip_view(row)
            port_id, fixed, router = row["port_id"], row["fixed_ip_address"], row["router_id"]
            if "port_id" in given:
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
            await conn.execute(
                """UPDATE floatingips SET port_id = $2, fixed_ip_address = $3::inet, router_id = $4,
                       description = coalesce($5, description), tags = coalesce($6, tags),
                       revision_number = revision_number + 1, updated_at = now() WHERE id = $1""",
                cmd.id,
                port_id,
                str(fixed) if fixed is not None else None,
                router,
                body.description,
                list(body.tags) if body.tags is not None else None,
            )
            after = await l3store.fip_view_row(conn, cmd.id)
            await emit(conn, "floatingip", "updated", after, before)  # type: ignore[arg-type]
            await self.d.specs.publish_for_routers(conn, [r for r in (row["router_id"], router) if r is not None])
        return t.FloatingIpReply(floatingip=after)

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            rows = await l3store.fips(
                conn, project=ctx.project_id, admin=ctx.is_admin, where="f.id = $3", args=(cmd.id,), lock=True
            )
            if not rows:
                raise not_found("floatingip", cmd.id)
            row = rows[0]
            require_owner(ctx, row["project_id"], "delete", "floatingip")
            check_revision(cmd.if_revision, row["revision_number"])
            await portsaga.mark_deleting(conn, row["floating_port_id"])
            # Deleted from here on, even if IPAM is away and the row waits for the reconciler: it
            # no longer holds its port or router (no "in use by floating IP" refusal for a floating
            # IP that answers 404, and the port may take a new one at once).
            await conn.execute(
                "UPDATE floatingips SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL WHERE id = $1",
                cmd.id,
            )
            await emit(conn, "floatingip", "deleted", l3store.fip_view(row))
            if row["router_id"] is not None:
                await self.d.specs.publish_for_routers(conn, [row["router_id"]])
        self.d.inflight.add(row["floating_port_id"])
        try:
            async with db_errors():
                await portsaga.finish_delete(self.d, row["floating_port_id"])
        finally:
            self.d.inflight.discard(row["floating_port_id"])
        return Deleted(id=cmd.id)
