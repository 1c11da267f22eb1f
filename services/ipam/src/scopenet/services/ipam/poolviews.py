"""``subnetpool.space`` and ``subnetpool.history``: a pool's usage and its allocation history, for
anyone who can see the pool (docs/operations.md#pool-usage).

What a caller learns about *other* projects: a shared pool's users see how much of it is taken and
where (they could find out by asking for prefixes anyway), but whose subnets they are, and who
asked for them, only when they are admin or the pool's owner.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from netaddr import IPNetwork

from scopenet.contracts import ipam as m
from scopenet.contracts.base import ByIdCommand, CallContext
from scopenet.policy.rules import not_found
from scopenet.services.ipam import history, store
from scopenet.services.ipam.rules import space as rules
from scopenet.store.db import db_errors


def _sees_all(ctx: CallContext, pool: asyncpg.Record) -> bool:
    return ctx.is_admin or pool["project_id"] == ctx.project_id


class PoolViews:
    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db

    async def _pool(self, conn: asyncpg.Connection, ctx: CallContext, id_: Any) -> asyncpg.Record:
        row = await store.pool(conn, id_, project=ctx.project_id, admin=ctx.is_admin)
        if row is None:
            raise not_found("subnetpool", id_)
        return row

    async def space(self, cmd: ByIdCommand) -> m.PoolSpaceReply:
        ctx = cmd.context
        # One snapshot: the prefixes and the subnets read in the same REPEATABLE READ transaction.
        async with db_errors(), self.db.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            pool = await self._pool(conn, ctx, cmd.id)
            subnets = await conn.fetch(
                "SELECT id, network_id, project_id, cidr FROM subnets WHERE subnetpool_id = $1", cmd.id
            )
        all_ = _sees_all(ctx, pool)
        owners = {IPNetwork(str(r["cidr"])): r for r in subnets}
        layout = rules.layout([IPNetwork(str(p)) for p in pool["prefixes"]], owners)
        bounds = {k: pool[k] for k in ("min_prefixlen", "max_prefixlen", "default_prefixlen")}
        prefixes = [self._prefix(p, ctx, all_, bounds) for p in layout]
        total = sum(p.total for p in layout)
        used = sum(p.used for p in layout)
        quota = pool["default_quota"]
        uses = rules.project_use([(r["project_id"], IPNetwork(str(r["cidr"]))) for r in subnets])
        projects = [
            m.PoolProjectUse(
                project_id=project,
                subnet_count=u.subnets,
                used_ips=u.addresses,
                quota_used=float(u.units),
                quota_limit=quota,
                quota_percent=rules.percent(u.units, quota) if quota else None,
            )
            for project, u in uses.items()
            if all_ or project == ctx.project_id
        ]
        usage = m.PoolSpace(
            subnetpool_id=pool["id"],
            name=pool["name"],
            project_id=pool["project_id"],
            ip_version=pool["ip_version"],
            address_scope_id=pool["address_scope_id"],
            default_quota=quota,
            quota_unit="address" if pool["ip_version"] == 4 else "/64",
            total_ips=total,
            used_ips=used,
            free_ips=total - used,
            used_percent=rules.percent(used, total),
            subnet_count=len(subnets),
            prefixes=prefixes,
            projects=projects,
            **bounds,
        )
        return m.PoolSpaceReply(subnetpool_usage=usage)

    @staticmethod
    def _prefix(p: rules.PrefixSpace, ctx: CallContext, all_: bool, bounds: dict[str, int]) -> m.PoolPrefixSpace:
        blocks = []
        for b in p.blocks:
            size = int(b.cidr.size)
            if b.owner is None:
                hint = rules.suggested(b.cidr, **bounds)
                blocks.append(
                    m.PoolBlock(cidr=str(b.cidr), status="free", size=size, suggested=str(hint) if hint else None)
                )
                continue
            row: Any = b.owner
            shown = all_ or row["project_id"] == ctx.project_id
            blocks.append(
                m.PoolBlock(
                    cidr=str(b.cidr),
                    status="allocated",
                    size=size,
                    subnet_id=row["id"] if shown else None,
                    network_id=row["network_id"] if shown else None,
                    project_id=row["project_id"] if shown else None,
                )
            )
        return m.PoolPrefixSpace(
            cidr=str(p.prefix),
            total_ips=p.total,
            used_ips=p.used,
            free_ips=p.total - p.used,
            used_percent=rules.percent(p.used, p.total),
            blocks=blocks,
        )

    async def history(self, cmd: m.PoolHistoryQuery) -> m.PoolHistoryPage:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn:
            pool = await self._pool(conn, ctx, cmd.id)
            all_ = _sees_all(ctx, pool)
            if not all_ and cmd.project_id not in (None, ctx.project_id):
                return m.PoolHistoryPage(entries=[], next_marker=None)  # no looking up other projects
            rows = await history.page(conn, cmd)
        more = len(rows) > cmd.limit
        rows = rows[: cmd.limit]
        entries = [
            history.entry(r, reveal=all_ or ctx.project_id in (r["project_id"], r["caller_project_id"])) for r in rows
        ]
        return m.PoolHistoryPage(entries=entries, next_marker=rows[-1]["id"] if more and rows else None)
