"""Each pool's allocation history (docs/operations.md#pool-allocation-history).

Why IPAM writes it, in the transaction of the change, rather than a consumer of the event stream:
the entry and the change's event (an outbox row) commit together or not at all, so there is one
entry per ``subnet.created``/``subnet.deleted`` event, each naming the other (``event_id``): the
history is the event stream of the pool, complete by construction, with nothing a consumer could
miss, lag behind or apply twice. It also records what events do not carry: who asked (project,
user), the API's request id and the trace id.

Ordering: every writer holds the pool's row lock (``FOR UPDATE``) when it takes the next ``id``,
so ids increase in commit order on a pool, and paging by id never skips an entry committed later.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from netaddr import IPNetwork

from scopenet.contracts import ipam as m
from scopenet.contracts.base import CallContext
from scopenet.services.ipam.rules import space


@dataclass(frozen=True)
class Change:
    """One history entry to write (``caller``/``trace_id``: who asked, in which trace)."""

    subnetpool_id: uuid.UUID
    action: m.HistoryAction
    cidr: str
    caller: CallContext
    trace_id: str | None
    subnet_id: uuid.UUID | None = None
    network_id: uuid.UUID | None = None
    project_id: str | None = None
    event_id: uuid.UUID | None = None


def for_subnet(
    view: m.Subnet, action: m.HistoryAction, caller: CallContext, trace_id: str | None, event_id: uuid.UUID | None
) -> Change:
    assert view.subnetpool_id is not None
    return Change(
        subnetpool_id=view.subnetpool_id,
        action=action,
        cidr=view.cidr,
        caller=caller,
        trace_id=trace_id,
        subnet_id=view.id,
        network_id=view.network_id,
        project_id=view.project_id,
        event_id=event_id,
    )


def for_prefixes(
    pool_id: uuid.UUID,
    before: Sequence[str],
    after: Sequence[str],
    caller: CallContext,
    event_id: uuid.UUID,
    *,
    trace_id: str | None,
) -> list[Change]:
    """The pool's own space growing or shrinking (create, update, add/remove prefixes, onboarding, delete)."""
    added, removed = space.prefix_delta([IPNetwork(p) for p in before], [IPNetwork(p) for p in after])
    return [Change(pool_id, "prefixes_added", str(c), caller, trace_id, event_id=event_id) for c in added] + [
        Change(pool_id, "prefixes_removed", str(c), caller, trace_id, event_id=event_id) for c in removed
    ]


async def record(conn: asyncpg.Connection, changes: Sequence[Change]) -> None:
    """Append ``changes`` in the caller's transaction, which holds the pools' row locks."""
    if not changes:
        return
    await conn.executemany(
        """INSERT INTO subnetpool_history (subnetpool_id, action, cidr, subnet_id, network_id, project_id,
               caller_project_id, caller_user_id, request_id, trace_id, event_id)
           VALUES ($1, $2, $3::cidr, $4, $5, $6, $7, $8, $9, $10, $11)""",
        [
            (
                c.subnetpool_id,
                c.action,
                c.cidr,
                c.subnet_id,
                c.network_id,
                c.project_id,
                c.caller.project_id,
                c.caller.user_id,
                c.caller.request_id,
                c.trace_id,
                c.event_id,
            )
            for c in changes
        ],
    )


async def page(conn: asyncpg.Connection, q: m.PoolHistoryQuery) -> list[asyncpg.Record]:
    """One page (``limit`` + 1 rows read, to know whether another follows)."""
    cmp, order = ("<", "DESC") if q.descending else (">", "ASC")
    since, until = (_utc(t) for t in (q.since, q.until))
    rows = await conn.fetch(
        f"""SELECT * FROM subnetpool_history
            WHERE subnetpool_id = $1 AND ($2::bigint IS NULL OR id {cmp} $2)
              AND ($3::text IS NULL OR project_id = $3 OR caller_project_id = $3)
              AND ($4::text IS NULL OR action = $4)
              AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
            ORDER BY id {order} LIMIT $7""",
        q.id,
        q.marker,
        q.project_id,
        q.action,
        since,
        until,
        q.limit + 1,
    )
    return list(rows)


def _utc(when: datetime | None) -> datetime | None:
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def entry(row: asyncpg.Record, *, reveal: bool) -> m.PoolHistoryEntry:
    """``reveal``: whether the caller may see who was involved (admin, the pool's owner, or the project
    the entry is about); otherwise only what changed in the pool's space is shown."""
    hidden: dict[str, Any] = {}
    if not reveal:
        hidden = dict.fromkeys(
            ("subnet_id", "network_id", "project_id", "caller_project_id", "caller_user_id", "request_id", "trace_id")
        )
    fields: dict[str, Any] = {
        "id": row["id"],
        "subnetpool_id": row["subnetpool_id"],
        "action": row["action"],
        "cidr": str(row["cidr"]),
        "subnet_id": row["subnet_id"],
        "network_id": row["network_id"],
        "project_id": row["project_id"],
        "caller_project_id": row["caller_project_id"],
        "caller_user_id": row["caller_user_id"],
        "request_id": row["request_id"],
        "trace_id": row["trace_id"],
        "event_id": row["event_id"],
        "at": row["at"],
    }
    return m.PoolHistoryEntry(**{**fields, **hidden})
