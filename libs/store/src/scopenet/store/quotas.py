"""Per-project quotas of a Postgres-backed service: its limits table, its counts, its lock.

Concurrency model: a create that a quota limits takes a transaction-scoped advisory lock on
(resource, project) in the transaction that inserts its row, then reads the limit and counts the
project's rows, then inserts. Creates of one project serialise on that lock until commit, so the
count each sees includes every earlier winner's row: N concurrent creates against a limit of L
grant exactly min(N, L - used), on any number of replicas. Rows of unfinished sagas (``allocating``)
count too: they are the ``reserved`` of ``quota_details``. A group-committed step takes the locks
of every project of its batch in sorted order (no deadlock between batches) and admits as many of
each project's requests as fit.

Each service has its own ``quotas`` table (project, resource, limit) for the resources it creates,
and the same six commands (``QuotaCommands``), served here by ``QuotaService``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import asyncpg
import structlog

from scopenet.contracts import quotas as q
from scopenet.contracts.errors import DomainError
from scopenet.contracts.subjects import event
from scopenet.policy import quotas as rules
from scopenet.store.db import db_errors
from scopenet.store.outbox import enqueue, event_row

log = structlog.get_logger("store.quotas")

DDL = """
CREATE TABLE quotas (
    project_id text NOT NULL,
    resource text NOT NULL,
    quota_limit integer NOT NULL CHECK (quota_limit >= -1),
    PRIMARY KEY (project_id, resource)
);
"""
"""The limits table, created by each service's quota migration."""


@dataclass(frozen=True)
class QuotaBook:
    """One service's quota resources: the default limit of each and the SQL that counts a project's
    rows of it (``$1`` = project; two columns, ``used`` and ``reserved``)."""

    defaults: Mapping[str, int]
    counts: Mapping[str, str]

    def __post_init__(self) -> None:
        if set(self.defaults) != set(self.counts):
            raise ValueError(f"quota resources without a count or a default: {set(self.defaults) ^ set(self.counts)}")

    # ------------------------------------------------------------ enforcement (in the caller's transaction)

    async def admit(self, conn: asyncpg.Connection, resource: str, asked: Mapping[str, int]) -> dict[str, int]:
        """Lock (resource, project) for each project of ``asked`` and return how many of its
        requests fit. Call it in the transaction that then inserts the admitted rows."""
        out: dict[str, int] = {}
        for project in sorted(asked):
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"quota:{resource}:{project}")
            limit = await self.limit(conn, project, resource)
            if limit <= q.UNLIMITED:
                out[project] = asked[project]
                continue
            used, reserved = await self._count(conn, resource, project)
            out[project] = rules.granted(limit, used + reserved, asked[project])
        return out

    async def check(self, conn: asyncpg.Connection, resource: str, project: str) -> None:
        """``admit`` for one create: raise Neutron's ``OverQuota`` unless it fits."""
        if not (await self.admit(conn, resource, {project: 1}))[project]:
            raise rules.over_quota([resource])

    # ------------------------------------------------------------ reads

    async def limit(self, conn: asyncpg.Connection, project: str, resource: str) -> int:
        own = await conn.fetchval(
            "SELECT quota_limit FROM quotas WHERE project_id = $1 AND resource = $2", project, resource
        )
        return int(own) if own is not None else self.defaults[resource]

    async def overrides(self, conn: asyncpg.Connection, project: str) -> dict[str, int]:
        rows = await conn.fetch("SELECT resource, quota_limit FROM quotas WHERE project_id = $1", project)
        return {r["resource"]: r["quota_limit"] for r in rows if r["resource"] in self.defaults}

    async def limits(self, conn: asyncpg.Connection, project: str) -> dict[str, int]:
        return rules.effective(self.defaults, await self.overrides(conn, project))

    async def _count(self, conn: asyncpg.Connection, resource: str, project: str) -> tuple[int, int]:
        row = await conn.fetchrow(self.counts[resource], project)
        assert row is not None
        return int(row["used"]), int(row["reserved"])

    async def usage(self, conn: asyncpg.Connection, project: str) -> dict[str, tuple[int, int]]:
        return {name: await self._count(conn, name, project) for name in self.defaults}


class QuotaService:
    """The quota commands of one service (``scopenet.contracts.quotas.QuotaCommands``)."""

    def __init__(self, db: asyncpg.Pool, book: QuotaBook, *, event_resource: str, service: str) -> None:
        self.db = db
        self.book = book
        self.event_resource = event_resource
        self._log = log.bind(service=service)

    async def get(self, cmd: q.QuotaOf) -> q.QuotaReply:
        rules.require_reader(cmd.context, cmd.project_id)
        async with db_errors(), self.db.acquire() as conn:
            limits = await self.book.limits(conn, cmd.project_id)
        return q.QuotaReply(quota=q.Quota(project_id=cmd.project_id, limits=limits))

    async def defaults(self, cmd: q.QuotaOf) -> q.QuotaReply:
        rules.require_reader(cmd.context, cmd.project_id)
        return q.QuotaReply(quota=q.Quota(project_id=cmd.project_id, limits=dict(self.book.defaults)))

    async def details(self, cmd: q.QuotaOf) -> q.QuotaDetailsReply:
        rules.require_reader(cmd.context, cmd.project_id)
        async with db_errors(), self.db.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            limits = await self.book.limits(conn, cmd.project_id)
            usage = await self.book.usage(conn, cmd.project_id)
        return q.QuotaDetailsReply(
            project_id=cmd.project_id,
            details={
                name: q.QuotaDetail(limit=limits[name], used=usage[name][0], reserved=usage[name][1])
                for name in self.book.defaults
            },
        )

    async def list(self, cmd: q.QuotaList) -> q.QuotaListReply:
        rules.require_admin(cmd.context, "get")
        async with db_errors(), self.db.acquire() as conn:
            rows = await conn.fetch("SELECT DISTINCT project_id FROM quotas ORDER BY project_id")
            out = [
                q.Quota(project_id=r["project_id"], limits=await self.book.limits(conn, r["project_id"])) for r in rows
            ]
        return q.QuotaListReply(quotas=out)

    async def update(self, cmd: q.QuotaUpdate) -> q.QuotaReply:
        rules.require_admin(cmd.context, "update")
        rules.check_limits(self.book.defaults, cmd.limits)
        project = cmd.project_id
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            before = await self.book.limits(conn, project)
            if not cmd.force:
                # The creates' locks: no create slips in between the usage read and the new limit.
                for name in sorted(cmd.limits):
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"quota:{name}:{project}"
                    )
                usage = {name: sum(await self.book._count(conn, name, project)) for name in cmd.limits}
                rules.check_not_below_usage(cmd.limits, usage)
            await conn.executemany(
                """INSERT INTO quotas (project_id, resource, quota_limit) VALUES ($1, $2, $3)
                   ON CONFLICT (project_id, resource) DO UPDATE SET quota_limit = EXCLUDED.quota_limit""",
                [(project, name, limit) for name, limit in sorted(cmd.limits.items())],
            )
            after = await self.book.limits(conn, project)
            if after != before:
                await self._emit(conn, "updated", q.Quota(project_id=project, limits=after), before)
        self._log.info("quota_updated", project_id=project, limits=cmd.limits)
        return q.QuotaReply(quota=q.Quota(project_id=project, limits=after))

    async def delete(self, cmd: q.QuotaOf) -> q.QuotaDeleted:
        rules.require_admin(cmd.context, "delete")
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            before = await self.book.limits(conn, cmd.project_id)
            gone = await conn.fetch("DELETE FROM quotas WHERE project_id = $1 RETURNING resource", cmd.project_id)
            if gone:
                after = q.Quota(project_id=cmd.project_id, limits=dict(self.book.defaults))
                await self._emit(conn, "deleted", after, before)
        return q.QuotaDeleted(project_id=cmd.project_id, existed=bool(gone))

    async def _emit(self, conn: asyncpg.Connection, action: str, quota: q.Quota, before: Mapping[str, int]) -> None:
        previous = q.Quota(project_id=quota.project_id, limits=dict(before))
        event_id, *rest = event_row(event(self.event_resource, action), quota, previous)
        # The id as text: one outbox keys events by uuid (IPAM), the other by text (topology).
        await enqueue(conn, [(str(event_id), *rest)])  # type: ignore[list-item]


def over_quota_errors(resource: str, asked: Iterable[str], granted: Mapping[str, int]) -> list[DomainError | None]:
    """Per request of a batch (by its project, in order): ``None`` while its project has room
    left, Neutron's ``OverQuota`` after."""
    left = dict(granted)
    out: list[DomainError | None] = []
    for project in asked:
        if left.get(project, 0) > 0:
            left[project] -= 1
            out.append(None)
        else:
            out.append(rules.over_quota([resource]))
    return out
