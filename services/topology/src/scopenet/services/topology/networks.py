"""Network commands (SPEC §1.3, §2.H rule 50): CRUD, sharing and ``router:external`` via RBAC rows.

``shared=true`` is a wildcard ``access_as_shared`` entry and ``router:external=true`` a wildcard
``access_as_external`` entry, as in Neutron, so visibility has one rule: owner, admin, or an entry
for ``*`` or the caller's project.
"""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, DeleteCommand, Deleted, ListCommand
from scopenet.contracts.errors import Conflict, InvalidInput
from scopenet.policy.rules import (
    check_revision,
    not_found,
    owner_for_create,
    require_admin_for,
    require_owner,
)
from scopenet.services.topology import store
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import NOBODY, emit
from scopenet.services.topology.listing import apply_filters
from scopenet.store.db import db_errors

IPV4_MIN_MTU = 68
IPV6_MIN_MTU = 1280


def check_mtu_max(mtu: int) -> None:
    if mtu > t.MAX_MTU:
        raise InvalidInput(
            f"Invalid input for operation: Requested MTU is too big, maximum is {t.MAX_MTU}.", field="mtu"
        )


def mtu_conflict(mtu: int, versions: set[int]) -> Conflict | None:
    """Rule 50: IPv4 needs an MTU of at least 68, IPv6 at least 1280."""
    if (4 in versions and mtu < IPV4_MIN_MTU) or (6 in versions and mtu < IPV6_MIN_MTU):
        need = IPV6_MIN_MTU if 6 in versions and mtu < IPV6_MIN_MTU else IPV4_MIN_MTU
        return Conflict(
            f"MTU of the network ({mtu}) is too small for its subnets' IP version (at least {need}).",
            type="NetworkMTUSubnetConflict",
        )
    return None


class Networks:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def view(self, conn: asyncpg.Connection, id_: uuid.UUID, project: str, admin: bool) -> t.Network:
        row = await store.network(conn, id_, project=project, admin=admin)
        if row is None:
            raise not_found("network", id_)
        return store.network_view(row)

    async def create(self, cmd: t.NetworkCreate) -> t.NetworkReply:
        body, ctx = cmd.network, cmd.context
        given = body.model_fields_set
        if body.shared:
            require_admin_for(ctx, "shared", "create_network")
        if body.router_external:
            require_admin_for(ctx, "router:external", "create_network")
        if given & {"provider_network_type", "provider_segmentation_id"}:
            require_admin_for(ctx, "provider:segmentation_id", "create_network")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        mtu = body.mtu if body.mtu is not None else t.DEFAULT_MTU
        check_mtu_max(mtu)
        id_ = uuid.uuid4()
        for attempt in range(10):  # an admin-chosen id may sit where the sequence wants to go
            try:
                async with (
                    db_errors("Segmentation id is in use", conflict_type="SegmentationIdInUse"),
                    self.db.acquire() as conn,
                    conn.transaction(),
                ):
                    seg = body.provider_segmentation_id or await conn.fetchval("SELECT nextval('segmentation_ids')")
                    await conn.execute(
                        """INSERT INTO networks (id, name, project_id, admin_state_up, router_external, mtu,
                               segmentation_id, port_security_enabled, description, tags)
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
                        id_,
                        body.name,
                        owner,
                        body.admin_state_up,
                        body.router_external,
                        mtu,
                        seg,
                        body.port_security_enabled,
                        body.description,
                        list(body.tags),
                    )
                    for flag, action in (
                        (body.shared, "access_as_shared"),
                        (body.router_external, "access_as_external"),
                    ):
                        if flag:
                            await store.insert_rbac(
                                conn, id_=uuid.uuid4(), network_id=id_, project_id=owner, target="*", action=action
                            )
                    await emit(conn, "network", "created", await self.view(conn, id_, NOBODY, True))
                break
            except Conflict:
                if body.provider_segmentation_id is not None or attempt == 9:
                    raise
        async with db_errors(), self.db.acquire() as conn:
            return t.NetworkReply(network=await self.view(conn, id_, ctx.project_id, ctx.is_admin))

    async def get(self, cmd: ByIdCommand) -> t.NetworkReply:
        async with db_errors(), self.db.acquire() as conn:
            return t.NetworkReply(network=await self.view(conn, cmd.id, cmd.context.project_id, cmd.context.is_admin))

    async def list(self, cmd: ListCommand) -> t.NetworkList:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn:
            rows = await store.networks(conn, project=ctx.project_id, admin=ctx.is_admin)
        views = [store.network_view(r) for r in rows]
        return t.NetworkList(networks=apply_filters(views, cmd.filters, t.Network))

    async def update(self, cmd: t.NetworkUpdate) -> t.NetworkReply:
        body, ctx = cmd.network, cmd.context
        given = {k for k in body.model_fields_set if getattr(body, k) is not None}
        if "shared" in given:
            require_admin_for(ctx, "shared", "update_network")
        if "router_external" in given:
            require_admin_for(ctx, "router:external", "update_network")
        if "mtu" in given:
            check_mtu_max(body.mtu)  # type: ignore[arg-type]
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.network(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("network", cmd.id)
            require_owner(ctx, row["project_id"], "update", "network")
            check_revision(cmd.if_revision, row["revision_number"])
            before = await self.view(conn, cmd.id, NOBODY, True)
            if "mtu" in given and body.mtu != row["mtu"]:
                versions = {r["ip_version"] for r in await store.network_subnets(conn, [cmd.id])}
                if (err := mtu_conflict(body.mtu, versions)) is not None:  # type: ignore[arg-type]
                    raise err
            if "shared" in given:
                await self._set_wildcard(conn, row, "access_as_shared", bool(body.shared))
            if "router_external" in given:
                await self._set_wildcard(conn, row, "access_as_external", bool(body.router_external))
            await conn.execute(
                """UPDATE networks SET name = coalesce($2, name), admin_state_up = coalesce($3, admin_state_up),
                       router_external = coalesce($4, router_external), mtu = coalesce($5, mtu),
                       port_security_enabled = coalesce($6, port_security_enabled),
                       description = coalesce($7, description), tags = coalesce($8, tags),
                       revision_number = revision_number + 1, updated_at = now()
                   WHERE id = $1""",
                cmd.id,
                body.name,
                body.admin_state_up,
                body.router_external,
                body.mtu,
                body.port_security_enabled,
                body.description,
                list(body.tags) if body.tags is not None else None,
            )
            after = await self.view(conn, cmd.id, NOBODY, True)
            await emit(conn, "network", "updated", after, before)
            if after.mtu != before.mtu or after.admin_state_up != before.admin_state_up:
                await self.d.specs.publish_for_networks(conn, [cmd.id])
            return t.NetworkReply(network=await self.view(conn, cmd.id, ctx.project_id, ctx.is_admin))

    async def _set_wildcard(self, conn: asyncpg.Connection, row: asyncpg.Record, action: str, on: bool) -> None:
        has = "*" in await store.rbac_targets(conn, row["id"], action)
        if on and not has:
            await store.insert_rbac(
                conn, id_=uuid.uuid4(), network_id=row["id"], project_id=row["project_id"], target="*", action=action
            )
        elif not on and has:
            from scopenet.services.topology.rbac import check_rbac_removal

            wildcard = await conn.fetchrow(
                "SELECT * FROM network_rbac WHERE network_id = $1 AND action = $2 AND target_project = '*'",
                row["id"],
                action,
            )
            await check_rbac_removal(conn, wildcard)
            await conn.execute("DELETE FROM network_rbac WHERE id = $1", wildcard["id"])

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.network(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("network", cmd.id)
            require_owner(ctx, row["project_id"], "delete", "network")
            check_revision(cmd.if_revision, row["revision_number"])
            # A port whose delete was acknowledged (``deleting``: IPAM was away) is gone for everyone:
            # it is finished below with the DHCP ports, it does not keep the network.
            busy = await conn.fetchval(
                "SELECT count(*) FROM ports WHERE network_id = $1 AND device_owner <> $2 AND state <> 'deleting'",
                cmd.id,
                t.DEVICE_OWNER_DHCP,
            )
            if busy:
                raise Conflict(
                    f"Unable to complete operation on network {cmd.id}. There are one or more ports still in use "
                    f"on the network ({busy} port(s)).",
                    type="NetworkInUse",
                )
            dhcp = [r["id"] for r in await conn.fetch("SELECT id FROM ports WHERE network_id = $1", cmd.id)]
            subnets = [r["id"] for r in await conn.fetch("SELECT id FROM subnets WHERE network_id = $1", cmd.id)]
        # Neutron deletes the network's DHCP ports and subnets with it: each through its own saga.
        for port_id in dhcp:
            await self.d.ports.remove(port_id)
        for subnet_id in subnets:
            await self.d.subnets.remove(subnet_id, ctx)
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.network(conn, cmd.id, project=NOBODY, admin=True, lock=True)
            if row is None:
                return Deleted(id=cmd.id)
            view = store.network_view(row)
            left = await conn.fetchval(
                "SELECT (SELECT count(*) FROM ports WHERE network_id = $1) + "
                "(SELECT count(*) FROM subnets WHERE network_id = $1)",
                cmd.id,
            )
            if left:
                raise Conflict(
                    f"Unable to complete operation on network {cmd.id}. There are one or more ports or subnets "
                    "still in use on the network.",
                    type="NetworkInUse",
                )
            await conn.execute("DELETE FROM networks WHERE id = $1", cmd.id)
            await emit(conn, "network", "deleted", view)
        return Deleted(id=cmd.id)
