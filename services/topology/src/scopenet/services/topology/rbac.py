"""RBAC policies for networks: ``access_as_shared`` and ``access_as_external`` (SPEC §1.8, §2.L).

Scope and pool RBAC stay in IPAM. Rule 65 for networks: an entry cannot go while a project it lets
in still depends on it (ports or subnets on a shared network; router gateways or floating IPs on an
external one), unless another entry keeps that project in.
"""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, ListCommand
from scopenet.contracts.errors import Conflict, InvalidInput, NotAuthorized
from scopenet.policy.rules import not_found, rbac_target
from scopenet.services.topology import store
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.listing import apply_filters
from scopenet.store.db import db_errors

_DEPENDANTS = {
    "access_as_shared": """SELECT project_id FROM ports WHERE network_id = $1 AND project_id <> ''
                           UNION SELECT project_id FROM subnets WHERE network_id = $1""",
    "access_as_external": """SELECT r.project_id FROM routers r JOIN ports p ON p.id = r.gw_port_id
                             WHERE p.network_id = $1
                             UNION SELECT project_id FROM floatingips WHERE floating_network_id = $1""",
}


async def check_rbac_removal(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    """Rule 65: refuse (409) when a dependent project would lose access through this entry."""
    target, owner = row["target_project"], row["project_id"]
    if target == owner:
        return
    others = {
        r["target_project"]
        for r in await conn.fetch(
            "SELECT target_project FROM network_rbac WHERE network_id = $1 AND action = $2 AND id <> $3",
            row["network_id"],
            row["action"],
            row["id"],
        )
    }
    if target != "*" and "*" in others:
        return
    net_owner = await conn.fetchval("SELECT project_id FROM networks WHERE id = $1", row["network_id"])
    dependants = {r["project_id"] for r in await conn.fetch(_DEPENDANTS[row["action"]], row["network_id"])}
    dependants -= {owner, net_owner}
    losing = dependants - others if target == "*" else dependants & {target}
    if losing:
        raise Conflict(
            f"RBAC policy on object {row['network_id']} cannot be removed because other objects depend on it: "
            f"project(s) {', '.join(sorted(losing))}",
            type="RbacPolicyInUse",
        )


class NetworkRbac:
    def __init__(self, deps: Deps) -> None:
        self.db = deps.db

    async def create(self, cmd: t.NetworkRbacCreate) -> t.NetworkRbacReply:
        body, ctx = cmd.rbac_policy, cmd.context
        target = rbac_target(body.target_tenant, body.target_project)
        if target == "*" and not ctx.is_admin:
            raise NotAuthorized("rule:create_rbac_policy:target_tenant is disallowed by policy", field="target_tenant")
        async with (
            db_errors("An RBAC policy with these attributes already exists", conflict_type="DuplicateEntry"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            net = await store.network(conn, body.object_id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if net is None:
                raise not_found("network", body.object_id, field="object_id")
            if net["project_id"] != ctx.project_id and not ctx.is_admin:
                raise InvalidInput("Only admins can manipulate policies on objects they do not own", field="object_id")
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

    async def _visible(self, conn: asyncpg.Connection, ctx: CallContext, id_: uuid.UUID) -> asyncpg.Record:
        row = await conn.fetchrow(
            "SELECT * FROM network_rbac WHERE id = $1 AND ($2 OR project_id = $3) FOR UPDATE",
            id_,
            ctx.is_admin,
            ctx.project_id,
        )
        if row is None:
            raise not_found("rbac_policy", id_)
        return row

    async def get(self, cmd: ByIdCommand) -> t.NetworkRbacReply:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            return t.NetworkRbacReply(rbac_policy=store.rbac_view(await self._visible(conn, cmd.context, cmd.id)))

    async def list(self, cmd: ListCommand) -> t.NetworkRbacList:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM network_rbac WHERE $1 OR project_id = $2 ORDER BY id", ctx.is_admin, ctx.project_id
            )
        views = [store.rbac_view(r) for r in rows]
        return t.NetworkRbacList(rbac_policies=apply_filters(views, cmd.filters, t.NetworkRbacPolicy))

    async def update(self, cmd: t.NetworkRbacUpdate) -> t.NetworkRbacReply:
        ctx = cmd.context
        target = rbac_target(cmd.target_tenant, None)
        async with (
            db_errors("An RBAC policy with these attributes already exists", conflict_type="DuplicateEntry"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            row = await self._visible(conn, ctx, cmd.id)  # first: 404, not 403, for someone else's entry
            if target == "*" and not ctx.is_admin:
                raise NotAuthorized(
                    "rule:update_rbac_policy:target_tenant is disallowed by policy", field="target_tenant"
                )
            await check_rbac_removal(conn, row)
            await conn.execute("UPDATE network_rbac SET target_project = $2 WHERE id = $1", cmd.id, target)
            after = store.rbac_view(await conn.fetchrow("SELECT * FROM network_rbac WHERE id = $1", cmd.id))
            await emit(conn, "network_rbac", "updated", after, store.rbac_view(row))
        return t.NetworkRbacReply(rbac_policy=after)

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._visible(conn, cmd.context, cmd.id)
            await check_rbac_removal(conn, row)
            await conn.execute("DELETE FROM network_rbac WHERE id = $1", cmd.id)
            await emit(conn, "network_rbac", "deleted", store.rbac_view(row))
        return Deleted(id=cmd.id)
