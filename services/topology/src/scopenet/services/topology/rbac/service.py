"""Network RBAC commands: ``access_as_shared`` and ``access_as_external`` entries.

Each command is one transaction: the entry is read (and locked) as the caller may see it, the
rules decide, the change and its event are written together.
"""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, ListCommand
from scopenet.policy.rules import not_found, rbac_target
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.listing import apply_filters
from scopenet.services.topology.networks import store as networks
from scopenet.services.topology.rbac import rules, store
from scopenet.store.db import db_errors

_DUPLICATE = "An RBAC policy with these attributes already exists"


async def check_removal(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    """Rule 65: refuse (409) when a dependent project would lose access through this entry."""
    losing = rules.losing_projects(
        target=row["target_project"],
        owner=row["project_id"],
        network_owner=await networks.network_owner(conn, row["network_id"]) or "",
        others=await store.other_targets(conn, row),
        dependants=await store.dependants(conn, row["network_id"], row["action"]),
    )
    if (err := rules.removal_conflict(row["network_id"], losing)) is not None:
        raise err


class NetworkRbac:
    def __init__(self, deps: Deps) -> None:
        self.db = deps.db
        self.d = deps

    async def create(self, cmd: t.NetworkRbacCreate) -> t.NetworkRbacReply:
        body, ctx = cmd.rbac_policy, cmd.context
        target = rbac_target(body.target_tenant, body.target_project)
        rules.check_target(ctx, target, "create")
        async with (
            db_errors(_DUPLICATE, conflict_type="DuplicateEntry"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            net = await networks.network(conn, body.object_id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if net is None:
                raise not_found("network", body.object_id, field="object_id")
            rules.check_network_owner(ctx, net["project_id"])
            await self.d.quotas.check(conn, "rbac_policy", net["project_id"])  # docs/neutron.md#quotas
            row = await store.insert_rbac(
                conn,
                id_=uuid.uuid4(),
                network_id=body.object_id,
                project_id=net["project_id"],
                target=target,
                action=body.action,
            )
            view = store.rbac_view(row)
            await emit(conn, "network_rbac", "created", view)
        return t.NetworkRbacReply(rbac_policy=view)

    @staticmethod
    async def _visible(conn: asyncpg.Connection, ctx: CallContext, id_: uuid.UUID) -> asyncpg.Record:
        row = await store.visible_rbac(conn, id_, project=ctx.project_id, admin=ctx.is_admin)
        if row is None:
            raise not_found("rbac_policy", id_)
        return row

    async def get(self, cmd: ByIdCommand) -> t.NetworkRbacReply:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            return t.NetworkRbacReply(rbac_policy=store.rbac_view(await self._visible(conn, cmd.context, cmd.id)))

    async def list(self, cmd: ListCommand) -> t.NetworkRbacList:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn:
            rows = await store.list_rbac(conn, project=ctx.project_id, admin=ctx.is_admin)
        views = [store.rbac_view(r) for r in rows]
        return t.NetworkRbacList(rbac_policies=apply_filters(views, cmd.filters, t.NetworkRbacPolicy))

    async def update(self, cmd: t.NetworkRbacUpdate) -> t.NetworkRbacReply:
        ctx = cmd.context
        target = rbac_target(cmd.target_tenant, None)
        async with (
            db_errors(_DUPLICATE, conflict_type="DuplicateEntry"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            row = await self._visible(conn, ctx, cmd.id)  # first: 404, not 403, for someone else's entry
            rules.check_target(ctx, target, "update")
            await check_removal(conn, row)
            after = store.rbac_view(await store.set_target(conn, cmd.id, target))
            await emit(conn, "network_rbac", "updated", after, store.rbac_view(row))
        return t.NetworkRbacReply(rbac_policy=after)

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._visible(conn, cmd.context, cmd.id)
            await check_removal(conn, row)
            await store.delete_rbac(conn, cmd.id)
            await emit(conn, "network_rbac", "deleted", store.rbac_view(row))
        return Deleted(id=cmd.id)
