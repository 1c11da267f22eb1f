"""``subnetpool.onboard_network_subnets`` (docs/neutron.md#onboarding-subnets): a network's subnets join
a pool, and through it the pool's address scope, in one transaction.

Locks, in the order allocations take them: the pool's row, then the network (the advisory lock subnet
allocation takes), then the subnets' rows. So no subnet can be allocated on the network, nor from the
pool, while the decision is made; the exclusion constraints re-check every prefix and subnet moved
into the scope, so an overlap that slipped past the rules still cannot commit. Everything (prefixes,
subnets, their events) commits together or not at all.

IPAM does not know who owns networks: the caller (topology) checks the network; IPAM checks the pool.
(``SubnetPools``' scope checks are reused as they are: the same rules as a pool update.)
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog
from netaddr import IPNetwork

from scopenet.contracts import ipam as m
from scopenet.contracts.base import CallContext
from scopenet.policy.rules import not_found, require_owner
from scopenet.runtime import tracing
from scopenet.services.ipam import history, store
from scopenet.services.ipam.events import NOBODY, emit
from scopenet.services.ipam.rules.onboard import plan_onboard
from scopenet.services.ipam.subnetpools import SubnetPools
from scopenet.services.ipam.subnets import lock_networks
from scopenet.store.db import db_errors

log = structlog.get_logger("ipam.onboard")

_OVERLAP = "An onboarded subnet overlaps another allocation of the address scope"


class Onboarding:
    def __init__(self, db: asyncpg.Pool, pools: SubnetPools) -> None:
        self.db = db
        self.pools = pools

    async def onboard_network_subnets(self, cmd: m.SubnetPoolOnboard) -> m.OnboardReply:
        ctx = cmd.context
        async with (
            db_errors(_OVERLAP, conflict_type="AddressScopePrefixConflict"),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            row = await store.pool(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("subnetpool", cmd.id)
            require_owner(ctx, row["project_id"], "onboard_network_subnets", "subnetpool")
            await self.pools._check_scope_owner(conn, ctx, row)
            version = row["ip_version"]
            nets = await lock_networks(conn, {cmd.network_id})
            family = [s for s in nets[cmd.network_id] if s.cidr.version == version]
            await conn.execute("SELECT 1 FROM subnets WHERE id = ANY($1::uuid[]) FOR UPDATE", [s.id for s in family])
            plan = plan_onboard(
                pool_id=cmd.id,
                network_id=cmd.network_id,
                prefixes=[IPNetwork(str(p)) for p in row["prefixes"]],
                allocated=[IPNetwork(c) for c in await store.pool_allocations(conn, cmd.id)],
                subnets=family,
            )
            if plan.moving:
                await self._apply(conn, ctx, row, [str(p) for p in plan.prefixes], [s.id for s in plan.moving])
                log.info(
                    "subnets_onboarded",
                    subnetpool_id=str(cmd.id),
                    network_id=str(cmd.network_id),
                    subnets=[str(s.id) for s in plan.moving],
                )
            pool = store.pool_view(store.must(await store.pool(conn, cmd.id, project=NOBODY, admin=True)))
            rows = await store.subnets(conn, "s.id = ANY($1::uuid[])", [s.id for s in family])
        subnets = [store.subnet_view(r) for r in rows]
        return m.OnboardReply(subnetpool=pool, subnets=subnets)

    async def _apply(
        self, conn: asyncpg.Connection, ctx: CallContext, row: asyncpg.Record, prefixes: list[str], ids: list[UUID]
    ) -> None:
        pool_id = row["id"]
        before = store.pool_view(store.must(await store.pool(conn, pool_id, project=NOBODY, admin=True)))
        moved_before = [store.subnet_view(r) for r in await store.subnets(conn, "s.id = ANY($1::uuid[])", ids)]
        mark_id = None
        if row["address_scope_id"] is not None:
            # The grown prefixes may not overlap another pool of the scope (409, naming the pool).
            mark_id = await self.pools._check_scope(
                conn, ctx, row["address_scope_id"], row["ip_version"], prefixes, pool_id, rescoping=False
            )
        await self.pools._write_prefixes(conn, pool_id, prefixes, mark_id)
        await conn.execute(
            "UPDATE subnets SET subnetpool_id = $2, overlap_key = $3, alloc_version = alloc_version + 1 "
            "WHERE id = ANY($1::uuid[])",
            ids,
            pool_id,
            mark_id if mark_id is not None else -row["seq"],
        )
        await conn.execute(
            "UPDATE subnetpools SET revision_number = revision_number + 1, updated_at = now(), "
            "alloc_version = alloc_version + 1 WHERE id = $1",
            pool_id,
        )
        after = store.pool_view(store.must(await store.pool(conn, pool_id, project=NOBODY, admin=True)))
        trace = tracing.trace_id_of()
        event_id = await emit(conn, "subnetpool", "updated", after, before)
        changes = history.for_prefixes(pool_id, before.prefixes, after.prefixes, ctx, event_id, trace_id=trace)
        moved = {r["id"]: store.subnet_view(r) for r in await store.subnets(conn, "s.id = ANY($1::uuid[])", ids)}
        for b in moved_before:
            event_id = await emit(conn, "subnet", "updated", moved[b.id], b)
            changes.append(history.for_subnet(moved[b.id], "onboarded", ctx, trace, event_id))
        await history.record(conn, changes)
