"""Address scope commands (docs/neutron.md#address-scopes)."""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.contracts import ipam as m
from scopenet.contracts.base import ByIdCommand, DeleteCommand, Deleted, ListCommand
from scopenet.contracts.errors import BadRequest, Conflict
from scopenet.contracts.filters import apply_filters
from scopenet.policy.rules import not_found, owner_for_create, require_admin_for, require_owner
from scopenet.services.ipam import store
from scopenet.services.ipam.events import NOBODY, emit
from scopenet.store.db import db_errors
from scopenet.store.quotas import QuotaBook


class AddressScopes:
    def __init__(self, db: asyncpg.Pool, quotas: QuotaBook) -> None:
        self.db = db
        self.quotas = quotas

    async def create(self, cmd: m.AddressScopeCreate) -> m.AddressScopeReply:
        body, ctx = cmd.address_scope, cmd.context
        if body.shared:
            require_admin_for(ctx, "shared", "create_address_scope")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        id_ = uuid.uuid4()
        for attempt in range(5):  # two creators may pick the same free mark id; the loser retries
            try:
                async with db_errors(), self.db.acquire() as conn, conn.transaction():
                    await self.quotas.check(conn, "address_scope", owner)  # docs/neutron.md#quotas
                    await store.insert_scope(
                        conn, id_=id_, name=body.name, project_id=owner, ip_version=body.ip_version
                    )
                    if body.shared:
                        await store.insert_rbac(
                            conn,
                            id_=uuid.uuid4(),
                            object_type="address_scope",
                            object_id=id_,
                            project_id=owner,
                            target="*",
                        )
                    row = await store.scope(conn, id_, project=NOBODY, admin=True)
                    assert row is not None
                    await emit(conn, "address_scope", "created", store.scope_view(row))
                break
            except Conflict as exc:
                if attempt == 4 or exc.type == "OverQuota":
                    raise
        return await self.get(ByIdCommand(context=ctx, id=id_))

    async def get(self, cmd: ByIdCommand) -> m.AddressScopeReply:
        async with db_errors(), self.db.acquire() as conn:
            row = await store.scope(conn, cmd.id, project=cmd.context.project_id, admin=cmd.context.is_admin)
        if row is None:
            raise not_found("address_scope", cmd.id)
        return m.AddressScopeReply(address_scope=store.scope_view(row))

    async def list_(self, cmd: ListCommand) -> m.AddressScopeList:
        async with db_errors(), self.db.acquire() as conn:
            rows = await store.scopes(conn, project=cmd.context.project_id, admin=cmd.context.is_admin)
        views = [store.scope_view(r) for r in rows]
        return m.AddressScopeList(address_scopes=apply_filters(views, cmd.filters))

    async def update(self, cmd: m.AddressScopeUpdate) -> m.AddressScopeReply:
        body, ctx = cmd.address_scope, cmd.context
        given = body.model_fields_set
        if "shared" in given:
            require_admin_for(ctx, "shared", "update_address_scope")  # rule 10: any shared key
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.scope(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("address_scope", cmd.id)
            require_owner(ctx, row["project_id"], "update", "address_scope")
            before = store.scope_view(store.must(await store.scope(conn, cmd.id, project=NOBODY, admin=True)))
            globally_shared = before.shared
            if "shared" in given and body.shared is False and globally_shared:
                raise BadRequest(
                    f"Unable to update address scope {cmd.id} : Shared address scope can't be unshared",
                    type="AddressScopeUpdateError",
                    field="shared",
                )
            if "name" in given and body.name is not None:
                await conn.execute("UPDATE address_scopes SET name = $2 WHERE id = $1", cmd.id, body.name)
            if body.shared and not globally_shared:
                await store.insert_rbac(
                    conn,
                    id_=uuid.uuid4(),
                    object_type="address_scope",
                    object_id=cmd.id,
                    project_id=row["project_id"],
                    target="*",
                )
            after = await store.scope(conn, cmd.id, project=NOBODY, admin=True)
            assert after is not None
            await emit(conn, "address_scope", "updated", store.scope_view(after), before)
        return await self.get(ByIdCommand(context=ctx, id=cmd.id))

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        ctx = cmd.context
        if cmd.if_revision is not None:
            raise BadRequest("Revision matching not supported for this resource", field="If-Match")
        async with (
            db_errors("Address scope is in use", conflict_type="AddressScopeInUse"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            row = await store.scope(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("address_scope", cmd.id)
            require_owner(ctx, row["project_id"], "delete", "address_scope")
            # Every pool counts, visible to the caller or not (docs/neutron.md#in-use-checks-see-every-project).
            users = await conn.fetchval("SELECT count(*) FROM subnetpools WHERE address_scope_id = $1", cmd.id)
            if users:
                raise Conflict(
                    f"Unable to complete operation on address scope {cmd.id}. "
                    f"There are one or more subnet pools in use on the address scope "
                    f"({users} pool(s)).",
                    type="AddressScopeInUse",
                )
            view = store.scope_view(store.must(await store.scope(conn, cmd.id, project=NOBODY, admin=True)))
            await conn.execute("DELETE FROM rbac_policies WHERE object_id = $1", cmd.id)
            await conn.execute("DELETE FROM address_scopes WHERE id = $1", cmd.id)
            await emit(conn, "address_scope", "deleted", view)
        return Deleted(id=cmd.id)
