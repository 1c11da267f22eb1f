"""Network commands: CRUD, sharing and ``router:external`` via RBAC entries.

``shared=true`` is a wildcard ``access_as_shared`` entry and ``router:external=true`` a wildcard
``access_as_external`` entry, as in Neutron, so visibility has one rule: owner, admin, or an entry
for ``*`` or the caller's project.

A delete runs the deletes of the network's DHCP ports and subnets, each through its own saga
(reached through ``Deps``), between a checking transaction and the one that drops the row.
"""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, DeleteCommand, Deleted, QueryCommand
from scopenet.contracts.endpoint import Rendered
from scopenet.contracts.errors import Conflict
from scopenet.policy.rules import check_revision, not_found, owner_for_create, require_owner
from scopenet.services.topology import sqllist
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import NOBODY, emit
from scopenet.services.topology.networks import rules, store
from scopenet.services.topology.rbac import store as rbac
from scopenet.services.topology.rbac.service import check_removal
from scopenet.services.topology.subnets.store import network_subnets
from scopenet.store.db import db_errors

_SEGMENT_ATTEMPTS = 10


class Networks:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    @staticmethod
    async def view(conn: asyncpg.Connection, id_: uuid.UUID, project: str, admin: bool) -> t.Network:
        row = await store.network(conn, id_, project=project, admin=admin)
        if row is None:
            raise not_found("network", id_)
        return store.network_view(row)

    async def create(self, cmd: t.NetworkCreate) -> t.NetworkReply:
        body, ctx = cmd.network, cmd.context
        rules.check_create(ctx, body)
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        mtu = rules.create_mtu(body)
        id_ = uuid.uuid4()
        for attempt in range(_SEGMENT_ATTEMPTS):  # an admin-chosen id may sit where the sequence wants to go
            try:
                async with (
                    db_errors("Segmentation id is in use", conflict_type="SegmentationIdInUse"),
                    self.db.acquire() as conn,
                    conn.transaction(),
                ):
                    await self.d.quotas.check(conn, "network", owner)  # docs/neutron.md#quotas
                    seg = body.provider_segmentation_id or await store.next_segmentation_id(conn)
                    await store.insert_network(conn, id_=id_, body=body, owner=owner, mtu=mtu, segmentation_id=seg)
                    for flag, action in (
                        (body.shared, "access_as_shared"),
                        (body.router_external, "access_as_external"),
                    ):
                        if flag:
                            await rbac.insert_rbac(
                                conn, id_=uuid.uuid4(), network_id=id_, project_id=owner, target="*", action=action
                            )
                    await emit(conn, "network", "created", await self.view(conn, id_, NOBODY, True))
                break
            except Conflict as exc:
                if body.provider_segmentation_id is not None or attempt == _SEGMENT_ATTEMPTS - 1:
                    raise
                if exc.type == "OverQuota":
                    raise
        async with db_errors(), self.db.acquire() as conn:
            return t.NetworkReply(network=await self.view(conn, id_, ctx.project_id, ctx.is_admin))

    async def get(self, cmd: ByIdCommand) -> t.NetworkReply:
        async with db_errors(), self.db.acquire() as conn:
            return t.NetworkReply(network=await self.view(conn, cmd.id, cmd.context.project_id, cmd.context.is_admin))

    async def list(self, cmd: QueryCommand) -> Rendered[t.NetworkList]:
        """One page in one query, its JSON built by Postgres (``sqllist``)."""
        async with db_errors(), self.db.acquire() as conn:
            found = await sqllist.page(conn, store.TABLE, cmd)
        return Rendered(found.reply("networks"))

    async def update(self, cmd: t.NetworkUpdate) -> t.NetworkReply:
        body, ctx = cmd.network, cmd.context
        given = {k for k in body.model_fields_set if getattr(body, k) is not None}
        rules.check_update(ctx, body, given)
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.network(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("network", cmd.id)
            require_owner(ctx, row["project_id"], "update", "network")
            check_revision(cmd.if_revision, row["revision_number"])
            before = await self.view(conn, cmd.id, NOBODY, True)
            if body.mtu is not None and body.mtu != row["mtu"]:
                versions = {r["ip_version"] for r in await network_subnets(conn, [cmd.id])}
                if (err := rules.mtu_conflict(body.mtu, versions)) is not None:
                    raise err
            if "shared" in given:
                await self._set_wildcard(conn, row, "access_as_shared", bool(body.shared))
            if "router_external" in given:
                await self._set_wildcard(conn, row, "access_as_external", bool(body.router_external))
            await store.update_network(conn, cmd.id, body)
            after = await self.view(conn, cmd.id, NOBODY, True)
            await emit(conn, "network", "updated", after, before)
            if after.mtu != before.mtu or after.admin_state_up != before.admin_state_up:
                await self.d.specs.publish_for_networks(conn, [cmd.id])
            return t.NetworkReply(network=await self.view(conn, cmd.id, ctx.project_id, ctx.is_admin))

    @staticmethod
    async def _set_wildcard(conn: asyncpg.Connection, row: asyncpg.Record, action: str, on: bool) -> None:
        wildcard = await rbac.wildcard(conn, row["id"], action)
        if on and wildcard is None:
            await rbac.insert_rbac(
                conn, id_=uuid.uuid4(), network_id=row["id"], project_id=row["project_id"], target="*", action=action
            )
        elif not on and wildcard is not None:
            await check_removal(conn, wildcard)
            await rbac.delete_rbac(conn, wildcard["id"])

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.network(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("network", cmd.id)
            require_owner(ctx, row["project_id"], "delete", "network")
            check_revision(cmd.if_revision, row["revision_number"])
            if busy := await store.user_ports(conn, cmd.id):
                raise rules.in_use(cmd.id, busy)
            dhcp = await store.port_ids(conn, cmd.id)
            subnets = await store.subnet_ids(conn, cmd.id)
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
            if await store.leftovers(conn, cmd.id):
                raise rules.in_use(cmd.id)
            await store.delete_network(conn, cmd.id)
            await emit(conn, "network", "deleted", view)
        return Deleted(id=cmd.id)
