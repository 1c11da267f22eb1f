"""Subnet pool commands (docs/neutron.md#subnet-pools), with Neutron's bugs fixed (#where-scopenet-differs)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from netaddr import IPNetwork

from scopenet.contracts import ipam as m
from scopenet.contracts.base import ByIdCommand, CallContext, Deleted, ListCommand
from scopenet.contracts.errors import BadRequest, Conflict, InvalidInput
from scopenet.contracts.filters import apply_filters
from scopenet.policy.rules import check_revision, not_found, owner_for_create, require_admin_for, require_owner
from scopenet.runtime import tracing
from scopenet.services.ipam import history, store
from scopenet.services.ipam.events import NOBODY, emit
from scopenet.services.ipam.rules import prefixes as pfx
from scopenet.store.db import db_errors
from scopenet.store.quotas import QuotaBook

_DEFAULT_TAKEN = (
    "A default subnetpool for this IP family has already been set. Only one default may exist per IP family"
)


"""``default_quota`` is stored in an ``integer`` column."""


class SubnetPools:
    def __init__(self, db: asyncpg.Pool, quotas: QuotaBook) -> None:
        self.db = db
        self.quotas = quotas

    # ------------------------------------------------------------ reads

    async def get(self, cmd: ByIdCommand) -> m.SubnetPoolReply:
        async with db_errors(), self.db.acquire() as conn:
            row = await store.pool(conn, cmd.id, project=cmd.context.project_id, admin=cmd.context.is_admin)
        if row is None:
            raise not_found("subnetpool", cmd.id)
        return m.SubnetPoolReply(subnetpool=store.pool_view(row))

    async def list_(self, cmd: ListCommand) -> m.SubnetPoolList:
        async with db_errors(), self.db.acquire() as conn:
            rows = await store.pools(conn, project=cmd.context.project_id, admin=cmd.context.is_admin)
        return m.SubnetPoolList(subnetpools=apply_filters([store.pool_view(r) for r in rows], cmd.filters))

    async def usage(self, cmd: ListCommand) -> m.PoolUsageList:
        async with db_errors(), self.db.acquire() as conn:
            rows = await store.pools(conn, project=cmd.context.project_id, admin=cmd.context.is_admin)
            stats = {
                r["subnetpool_id"]: r
                for r in await conn.fetch(
                    "SELECT subnetpool_id, count(*) AS n, array_agg(cidr) AS cidrs FROM subnets "
                    "WHERE subnetpool_id = ANY($1::uuid[]) GROUP BY subnetpool_id",
                    [r["id"] for r in rows],
                )
            }
        out = []
        for r in rows:
            s = stats.get(r["id"])
            out.append(
                m.PoolUsage(
                    subnetpool_id=r["id"],
                    ip_version=r["ip_version"],
                    total_ips=sum(IPNetwork(str(p)).size for p in r["prefixes"]),
                    used_ips=sum(IPNetwork(str(c)).size for c in s["cidrs"]) if s else 0,
                    subnet_count=s["n"] if s else 0,
                )
            )
        return m.PoolUsageList(usages=out)

    # ------------------------------------------------------------ create

    async def create(self, cmd: m.SubnetPoolCreate) -> m.SubnetPoolReply:
        body, ctx = cmd.subnetpool, cmd.context
        prefixes = pfx.normalize_prefixes(list(body.prefixes))
        version = prefixes[0].version
        if body.shared:
            require_admin_for(ctx, "shared", "create_subnetpool")
        if body.is_default:
            require_admin_for(ctx, "is_default", "create_subnetpool")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        lo, hi, default = pfx.prefix_bounds(
            version,
            min_prefixlen=body.min_prefixlen,
            max_prefixlen=body.max_prefixlen,
            default_prefixlen=body.default_prefixlen,
        )
        id_ = uuid.uuid4()
        texts = [str(p) for p in prefixes]
        async with (
            db_errors(_DEFAULT_TAKEN, conflict_type="InvalidInput"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            await self.quotas.check(conn, "subnetpool", owner)  # docs/neutron.md#quotas
            if body.is_default:
                await self._check_default_free(conn, version, None)
            mark_id = None
            if body.address_scope_id is not None:
                mark_id = await self._check_scope(conn, ctx, body.address_scope_id, version, texts, None)
            await conn.execute(
                """INSERT INTO subnetpools (id, name, project_id, ip_version, min_prefixlen, max_prefixlen,
                       default_prefixlen, default_quota, address_scope_id, is_default, description, tags)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)""",
                id_,
                body.name,
                owner,
                version,
                lo,
                hi,
                default,
                body.default_quota or None,
                body.address_scope_id,
                body.is_default,
                body.description,
                list(body.tags),
            )
            await self._write_prefixes(conn, id_, texts, mark_id)
            if body.shared:
                await store.insert_rbac(
                    conn, id_=uuid.uuid4(), object_type="subnetpool", object_id=id_, project_id=owner, target="*"
                )
            await self._emit(conn, id_, "created", caller=ctx)
        return await self.get(ByIdCommand(context=ctx, id=id_))

    # ------------------------------------------------------------ update, add/remove prefixes

    async def update(self, cmd: m.SubnetPoolUpdate) -> m.SubnetPoolReply:
        await self._update(cmd.context, cmd.id, cmd.subnetpool.model_dump(exclude_unset=True), cmd.if_revision)
        return await self.get(ByIdCommand(context=cmd.context, id=cmd.id))

    async def add_prefixes(self, cmd: m.SubnetPoolPrefixes) -> m.PrefixesReply:
        added = pfx.normalize_prefixes(list(cmd.prefixes))
        view = await self._update(cmd.context, cmd.id, {"add_prefixes": added}, None)
        return m.PrefixesReply(prefixes=view.prefixes)

    async def remove_prefixes(self, cmd: m.SubnetPoolPrefixes) -> m.PrefixesReply:
        removed = pfx.normalize_prefixes(list(cmd.prefixes))
        view = await self._update(cmd.context, cmd.id, {"remove_prefixes": removed}, None)
        return m.PrefixesReply(prefixes=view.prefixes)

    async def _update(
        self, ctx: CallContext, id_: uuid.UUID, changes: dict[str, Any], if_revision: int | None
    ) -> m.SubnetPool:
        if "is_default" in changes:
            require_admin_for(ctx, "is_default", "update_subnetpool")
        async with (
            db_errors(_DEFAULT_TAKEN, conflict_type="InvalidInput"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            row = await store.pool(conn, id_, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("subnetpool", id_)
            require_owner(ctx, row["project_id"], "update", "subnetpool")
            check_revision(if_revision, row["revision_number"])
            await self._check_scope_owner(conn, ctx, row)
            before = store.pool_view(store.must(await store.pool(conn, id_, project=NOBODY, admin=True)))
            old = [IPNetwork(p) for p in before.prefixes]
            new = old
            if "prefixes" in changes and changes["prefixes"] is not None:
                new = pfx.normalize_prefixes(list(changes["prefixes"]))
                pfx.check_prefix_update(old, new)
            elif "add_prefixes" in changes:
                new = pfx.merge_prefixes(old, changes["add_prefixes"])
            elif "remove_prefixes" in changes:
                allocated = [IPNetwork(c) for c in await store.pool_allocations(conn, id_)]
                new = pfx.remove_prefixes(old, changes["remove_prefixes"], allocated)
            if new and new[0].version != row["ip_version"]:
                raise BadRequest(
                    "Illegal prefix: the IP version of the prefixes does not match the pool's",
                    type="PrefixVersionMismatch",
                    field="prefixes",
                )

            def pick(key: str) -> Any:
                return changes[key] if key in changes and changes[key] is not None else row[key]

            lo, hi, default = pfx.prefix_bounds(
                row["ip_version"],
                min_prefixlen=pick("min_prefixlen"),
                max_prefixlen=pick("max_prefixlen"),
                default_prefixlen=pick("default_prefixlen"),
            )
            is_default = changes.get("is_default", row["is_default"])
            if is_default is None:
                is_default = row["is_default"]
            if is_default and not row["is_default"]:
                await self._check_default_free(conn, row["ip_version"], id_)
            scope_id = changes["address_scope_id"] if "address_scope_id" in changes else row["address_scope_id"]
            texts = [str(p) for p in new]
            mark_id = None
            if scope_id is not None:
                mark_id = await self._check_scope(
                    conn, ctx, scope_id, row["ip_version"], texts, id_, rescoping=scope_id != row["address_scope_id"]
                )
            elif row["address_scope_id"] is not None:
                await self._check_affinity(conn, id_, row["ip_version"])
            quota = changes["default_quota"] if "default_quota" in changes else row["default_quota"]
            await conn.execute(
                """UPDATE subnetpools SET name = $2, min_prefixlen = $3, max_prefixlen = $4,
                       default_prefixlen = $5, default_quota = $6, address_scope_id = $7, is_default = $8,
                       description = $9, tags = $10, revision_number = revision_number + 1,
                       updated_at = now(), alloc_version = alloc_version + 1
                   WHERE id = $1""",
                id_,
                pick("name"),
                lo,
                hi,
                default,
                quota or None,
                scope_id,
                is_default,
                pick("description"),
                list(pick("tags")),
            )
            if texts != before.prefixes or scope_id != row["address_scope_id"]:
                await self._write_prefixes(conn, id_, texts, mark_id)
            if scope_id != row["address_scope_id"]:
                await store.rekey_pool(conn, id_, row["seq"], mark_id)
            after = await self._emit(conn, id_, "updated", before, caller=ctx)
        return after

    async def delete(self, cmd: m.SubnetPoolDelete) -> Deleted:
        ctx = cmd.context
        async with (
            db_errors("Subnet pool has existing allocations", conflict_type="SubnetPoolDeleteError"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            row = await store.pool(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("subnetpool", cmd.id)
            require_owner(ctx, row["project_id"], "delete", "subnetpool")
            check_revision(cmd.if_revision, row["revision_number"])
            # All subnets count, visible to the caller or not (docs/neutron.md#in-use-checks-see-every-project).
            used = await conn.fetchval("SELECT count(*) FROM subnets WHERE subnetpool_id = $1", cmd.id)
            if used:
                raise BadRequest(
                    f"Unable to delete subnet pool: Subnet pool has existing allocations ({used} subnet(s))",
                    type="SubnetPoolDeleteError",
                )
            view = store.pool_view(store.must(await store.pool(conn, cmd.id, project=NOBODY, admin=True)))
            await conn.execute("DELETE FROM rbac_policies WHERE object_id = $1", cmd.id)
            await conn.execute("DELETE FROM subnetpools WHERE id = $1", cmd.id)
            event_id = await emit(conn, "subnetpool", "deleted", view)
            trace = tracing.trace_id_of()
            await history.record(conn, history.for_prefixes(cmd.id, view.prefixes, [], ctx, event_id, trace_id=trace))
        return Deleted(id=cmd.id)

    # ------------------------------------------------------------ rules

    async def _check_default_free(self, conn: asyncpg.Connection, version: int, me: uuid.UUID | None) -> None:
        # Every pool counts, not only those visible to the caller: one default per family. The lock
        # (held to commit) makes concurrent claimants wait and see the winner: 400 here, not the
        # unique index's 409.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"subnetpool-default-{version}")
        other = await conn.fetchval(
            "SELECT id FROM subnetpools WHERE ip_version = $1 AND is_default AND id IS DISTINCT FROM $2", version, me
        )
        if other is not None:
            raise InvalidInput(f"Invalid input for operation: {_DEFAULT_TAKEN}.", field="is_default")

    async def _check_scope_owner(self, conn: asyncpg.Connection, ctx: CallContext, row: asyncpg.Record) -> None:
        """Rule 28: a pool in a scope may be changed only by admin or the scope's owner."""
        if row["address_scope_id"] is None or ctx.is_admin:
            return
        scope = await store.scope(conn, row["address_scope_id"], project=ctx.project_id, admin=False)
        if scope is None:
            raise not_found("address_scope", row["address_scope_id"])
        if scope["project_id"] != ctx.project_id:
            raise BadRequest(
                f"Illegal subnetpool update : subnetpool {row['id']} cannot be updated when "
                f"associated with shared address scope {row['address_scope_id']}",
                type="IllegalSubnetPoolUpdate",
            )

    async def _check_scope(
        self,
        conn: asyncpg.Connection,
        ctx: CallContext,
        scope_id: uuid.UUID,
        version: int,
        prefixes: list[str],
        pool_id: uuid.UUID | None,
        *,
        rescoping: bool = True,
    ) -> int:
        """Rule 22: the scope is visible, of the pool's family, and no other pool in it overlaps."""
        scope = await store.scope(conn, scope_id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
        if scope is None:
            raise not_found("address_scope", scope_id)
        if scope["ip_version"] != version:
            raise BadRequest(
                f"Illegal subnetpool association: subnetpool of IPv{version} cannot be associated "
                f"with address scope {scope_id} of IPv{scope['ip_version']}",
                type="IllegalSubnetPoolIpVersionAssociationToAddressScope",
                field="address_scope_id",
            )
        if pool_id is not None and rescoping:
            await self._check_affinity(conn, pool_id, version)
        clashes = await store.scope_overlaps(conn, scope_id, prefixes, pool_id)
        if clashes:
            c = clashes[0]
            raise Conflict(
                f"Illegal subnetpool association: prefix {c['wanted']} overlaps prefix {c['cidr']} of "
                f"subnet pool {c['subnetpool_id']} in address scope {scope_id}",
                type="AddressScopePrefixConflict",
                field="prefixes",
            )
        return int(scope["mark_id"])

    async def _check_affinity(self, conn: asyncpg.Connection, pool_id: uuid.UUID, version: int) -> None:
        mixed = await store.mixed_networks(conn, pool_id, version)
        if mixed:
            raise BadRequest(
                f"Network {mixed[0]} holds subnets of subnet pool {pool_id} and other subnets of "
                f"IPv{version}; they would end up in different address scopes",
                type="NetworkAddressScopeAffinityError",
                field="address_scope_id",
            )

    async def _write_prefixes(
        self, conn: asyncpg.Connection, id_: uuid.UUID, texts: list[str], mark_id: int | None
    ) -> None:
        async with db_errors(
            "Prefixes overlap another subnet pool of the address scope", conflict_type="AddressScopePrefixConflict"
        ):
            await store.set_pool_prefixes(conn, id_, texts, mark_id)

    async def _emit(
        self,
        conn: asyncpg.Connection,
        id_: uuid.UUID,
        action: str,
        before: m.SubnetPool | None = None,
        *,
        caller: CallContext,
    ) -> m.SubnetPool:
        """The pool's event, and history entries for the space it gained or lost (same transaction)."""
        row = await store.pool(conn, id_, project=NOBODY, admin=True)
        assert row is not None
        view = store.pool_view(row)
        event_id = await emit(conn, "subnetpool", action, view, before)
        old = before.prefixes if before is not None else []
        changes = history.for_prefixes(id_, old, view.prefixes, caller, event_id, trace_id=tracing.trace_id_of())
        await history.record(conn, changes)
        return view
