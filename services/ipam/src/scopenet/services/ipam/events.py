"""Event helpers: build the outbox rows for one change (shared views carry global sharing)."""

from __future__ import annotations

import uuid

import asyncpg
from pydantic import BaseModel

from scopenet.contracts.subjects import event
from scopenet.store.outbox import enqueue, event_row

#: The project id used when rendering views for events: no project, so ``shared`` means
#: "shared with everyone" there, not "shared with the caller".
NOBODY = ""


async def emit(
    conn: asyncpg.Connection, resource: str, action: str, view: BaseModel, previous: BaseModel | None = None
) -> uuid.UUID:
    row = event_row(event(resource, action), view, previous)
    await enqueue(conn, [row])
    return row[0]


async def emit_many(conn: asyncpg.Connection, resource: str, action: str, views: list[BaseModel]) -> list[uuid.UUID]:
    """One round trip for a whole batch of events (group commit writes many at once); their ids, in order."""
    spec = event(resource, action)
    rows = [event_row(spec, v) for v in views]
    await enqueue(conn, rows)
    return [r[0] for r in rows]
