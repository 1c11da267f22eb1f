"""RBAC policies for address scopes and subnet pools (rules 63-66, docs/neutron.md#sharing-and-rbac)."""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.contracts import ipam as m
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, ListCommand
from scopenet.contracts.errors import Conflict, InvalidInput, NotAuthorized
from scopenet.contracts.filters import apply_filters
from scopenet.policy.rules import not_found, rbac_target
from scopenet.services.ipam import store
from scopenet.services.ipam.events import emit
from scopenet.store.db import db_errors
from scopenet.store.quotas import QuotaBook

_DEPENDANTS = {
    "address_scope": "SELECT DISTINCT project_id FROM subnetpools WHERE address_scope_id = $1",
    "subnetpool": "SELECT DISTINCT project_id FROM subnets WHERE subnetpool_id = $1",
}


class Rbac:
    def __init__(self, db: asyncpg.Pool, quotas: QuotaBook) -> None:
        self.db = db
        self.quotas = quotas

    async def create(self, cmd: m.RbacCreate) -> m.RbacReply:
        body, ctx = cmd.rbac_policy, cmd.context
        target = rbac_target(body.target_tenant, body.target_project)
        if target == "*" and not ctx.is_admin:
            raise NotAuthorized("rule:create_rbac_policy:target_tenant is disallowed by policy", field="target_tenant")
        async with (
            db_errors("An RBAC policy with these attributes already exists", conflict_type="DuplicateEntry"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            owner = await self._object_owner(conn, ctx, body.object_type, body.object_id)
            if owner != ctx.project_id and not ctx.is_admin:
                raise InvalidInput("Only admins can manipulate policies on objects they do not own", field="object_id")
            if body.object_type == "subnetpool":
                await self._check_scope_access(conn, body.object_id, target)
            await self.quotas.check(conn, "rbac_policy", owner)  # docs/neutron.md#quotas
            row = await store.insert_rbac(
                conn,
                id_=uuid.uuid4(),
                object_type=body.object_type,
                object_id=body.object_id,
                project_id=owner,
                target=target,
            )
            view = store.rbac_view(row)
            await emit(conn, "rbac_policy", "created", view)
        return m.RbacReply(rbac_policy=view)

    async def get(self, cmd: ByIdCommand) -> m.RbacReply:
        async with db_errors(), self.db.acquire() as conn:
            row = await self._visible(conn, cmd.context, cmd.id)
        return m.RbacReply(rbac_policy=store.rbac_view(row))

    async def list_(self, cmd: ListCommand) -> m.RbacList:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn:
            rows = await store.rbac_rows(conn, "$1 OR project_id = $2", ctx.is_admin, ctx.project_id)
        return m.RbacList(rbac_policies=apply_filters([store.rbac_view(r) for r in rows], cmd.filters))

    async def update(self, cmd: m.RbacUpdate) -> m.RbacReply:
        ctx = cmd.context
        target = rbac_target(cmd.target_tenant, None)
        async with (
            db_errors("An RBAC policy with these attributes already exists", conflict_type="DuplicateEntry"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            row = await self._visible(conn, ctx, cmd.id)  # first: 404, not 403, for someone else's entry
            if target == "*" and not ctx.is_admin:
                raise NotAuthorized("rule:update_rbac_policy:target_tenant is disallowed by policy")
            await self._check_in_use(conn, row)
            if row["object_type"] == "subnetpool":
                await self._check_scope_access(conn, row["object_id"], target)
            await conn.execute("UPDATE rbac_policies SET target_project = $2 WHERE id = $1", cmd.id, target)
            after = store.rbac_view((await store.rbac_rows(conn, "id = $1", cmd.id))[0])
            await emit(conn, "rbac_policy", "updated", after, store.rbac_view(row))
        return m.RbacReply(rbac_policy=after)

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._visible(conn, cmd.context, cmd.id)
            await self._check_in_use(conn, row)
            await conn.execute("DELETE FROM rbac_policies WHERE id = $1", cmd.id)
            await emit(conn, "rbac_policy", "deleted", store.rbac_view(row))
        return Deleted(id=cmd.id)

    # ------------------------------------------------------------ rules

    async def _visible(self, conn: asyncpg.Connection, ctx: CallContext, id_: uuid.UUID) -> asyncpg.Record:
        rows = await store.rbac_rows(
            conn, "id = $1 AND ($2 OR project_id = $3)", id_, ctx.is_admin, ctx.project_id, lock=True
        )
        if not rows:
            raise not_found("rbac_policy", id_)
        return rows[0]

    async def _object_owner(self, conn: asyncpg.Connection, ctx: CallContext, kind: str, id_: uuid.UUID) -> str:
        if kind == "address_scope":
            row = await store.scope(conn, id_, project=ctx.project_id, admin=ctx.is_admin, lock=True)
        else:
            row = await store.pool(conn, id_, project=ctx.project_id, admin=ctx.is_admin, lock=True)
        if row is None:
            raise not_found(kind, id_)
        return str(row["project_id"])

    async def _check_scope_access(self, conn: asyncpg.Connection, pool_id: uuid.UUID, target: str) -> None:
        """Rule 64: sharing a scoped pool with T needs T to have access to the scope."""
        scope = await conn.fetchrow(
            "SELECT a.id, a.project_id FROM subnetpools p JOIN address_scopes a "
            "ON a.id = p.address_scope_id WHERE p.id = $1",
            pool_id,
        )
        if scope is None or scope["project_id"] == target:
            return
        ok = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM rbac_policies WHERE object_id = $1 AND target_project IN ('*', $2))",
            scope["id"],
            target,
        )
        if not ok:
            raise InvalidInput(
                f"Failed to create RBAC policy on object {pool_id}: project {target} has no access to "
                f"its address scope {scope['id']}",
                field="target_tenant",
            )

    async def _check_in_use(self, conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        """Rule 65: the entry may go only if no dependent project loses access through it."""
        target, owner = row["target_project"], row["project_id"]
        if target == owner:
            return
        others = await store.rbac_rows(conn, "object_id = $1 AND id <> $2", row["object_id"], row["id"])
        other_targets = {r["target_project"] for r in others}
        if target != "*" and "*" in other_targets:
            return
        dependants = {r["project_id"] for r in await conn.fetch(_DEPENDANTS[row["object_type"]], row["object_id"])}
        dependants.discard(owner)
        losing = dependants - other_targets if target == "*" else dependants & {target}
        if losing:
            raise Conflict(
                f"RBAC policy on object {row['object_id']} cannot be removed because other objects "
                f"depend on it: project(s) {', '.join(sorted(losing))}",
                type="RbacPolicyInUse",
            )
