"""Outbox rows of the topology service: events (Nats-Msg-Id = event uuid) and RouterSpecs
(Nats-Msg-Id = ``<router_id>-<revision>``), written in the transaction of the change, each with
its CloudEvents headers (``ce-id`` = its Nats-Msg-Id)."""

from __future__ import annotations

import asyncpg
from pydantic import BaseModel

from scopenet.contracts import cloudevents
from scopenet.contracts.routerspec import RouterSpec, router_subject
from scopenet.contracts.subjects import event
from scopenet.store.outbox import event_row, headers_json

#: Views rendered for events are relative to no project: ``shared`` means "shared with everyone".
NOBODY = ""


async def _insert(conn: asyncpg.Connection, rows: list[tuple[str, str, str, str]]) -> None:
    if rows:
        await conn.executemany(
            "INSERT INTO outbox (event_id, subject, payload, headers)"
            " VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb) ON CONFLICT (event_id) DO NOTHING",
            rows,
        )


async def emit(
    conn: asyncpg.Connection, resource: str, action: str, view: BaseModel, previous: BaseModel | None = None
) -> None:
    event_id, subject, payload, headers = event_row(event(resource, action), view, previous)
    await _insert(conn, [(str(event_id), subject, payload, headers)])


async def emit_many(
    conn: asyncpg.Connection, resource: str, action: str, changes: list[tuple[BaseModel, BaseModel | None]]
) -> None:
    """``emit`` for many ``(view, previous)`` pairs in one round trip."""
    spec = event(resource, action)
    rows = [event_row(spec, view, previous) for view, previous in changes]
    await _insert(conn, [(str(event_id), subject, payload, headers) for event_id, subject, payload, headers in rows])


async def emit_spec(conn: asyncpg.Connection, spec: RouterSpec) -> None:
    """Queue a RouterSpec for its agent's subject; the stream keeps the last one per subject."""
    await emit_specs(conn, [spec])


async def emit_specs(conn: asyncpg.Connection, specs: list[RouterSpec]) -> None:
    """Queue many RouterSpecs in one round trip (a scheduling pass moves hundreds at once)."""
    await _insert(conn, [_spec_row(spec) for spec in specs])


def _spec_row(spec: RouterSpec) -> tuple[str, str, str, str]:
    msg_id = f"{spec.router_id}-{spec.revision}" + ("" if spec.present else f"-gone-{spec.agent_id}")
    headers = cloudevents.router_spec_headers(spec, id=msg_id)
    return msg_id, router_subject(spec.agent_id, spec.router_id), spec.model_dump_json(), headers_json(headers)
