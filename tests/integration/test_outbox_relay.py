"""The outbox relay against real Postgres and JetStream: an event JetStream can never take (larger
than the server's max payload) is parked in ``outbox_dead`` with the reason, and the events behind
it are published, promptly (on NOTIFY: the poll here is 30 s), in order. Before, such an event
held every later one back forever."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import nats
import pytest
from nats.js.api import StreamConfig

from scopenet.contracts import cloudevents
from scopenet.infra.select import Endpoints
from scopenet.store.db import create_pool
from scopenet.store.outbox import OUTBOX_DDL, OUTBOX_DEAD_DDL, OUTBOX_HEADERS_DDL, OutboxRelay, headers_json


@dataclass
class Scratch:
    pool: asyncpg.Pool
    schema: str
    js: object
    subject: str
    stream: str


@pytest.fixture
async def scratch(infra: Endpoints) -> AsyncIterator[Scratch]:
    """An outbox in a schema of its own, relayed to a stream of its own."""
    tag = uuid.uuid4().hex[:10]
    schema, stream, subject = f"relay_{tag}", f"RELAY_{tag}", f"relaytest.{tag}"
    conn = await asyncpg.connect(infra.database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
        await conn.execute(OUTBOX_DDL + OUTBOX_DEAD_DDL + OUTBOX_HEADERS_DDL)
    finally:
        await conn.close()
    pool = await create_pool(infra.database_url, schema=schema, size=3)
    nc = await nats.connect(infra.nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"]))
    try:
        yield Scratch(pool, schema, js, subject, stream)
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def _enqueue(pool: asyncpg.Pool, subject: str, payload: dict[str, object]) -> str:
    event_id = str(uuid.uuid4())
    await pool.execute(
        "INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3::text::jsonb)",
        event_id,
        subject,
        json.dumps(payload),
    )
    return event_id


async def test_oversized_event_is_parked_and_the_rest_flows(scratch: Scratch) -> None:
    js = scratch.js
    relay = OutboxRelay(scratch.pool, js, schema=scratch.schema, batch=16, poll=30.0)  # type: ignore[arg-type]
    task = asyncio.create_task(relay.run())
    try:
        before = await _enqueue(scratch.pool, f"{scratch.subject}.a", {"n": 1})
        big = await _enqueue(scratch.pool, f"{scratch.subject}.big", {"blob": "x" * 1_200_000})
        after = await _enqueue(scratch.pool, f"{scratch.subject}.b", {"n": 2})
        t0 = time.monotonic()
        while await scratch.pool.fetchval("SELECT count(*) FROM outbox"):
            assert time.monotonic() - t0 < 10, "the outbox did not drain: the oversized event blocks it"
            assert not task.done(), task
            await asyncio.sleep(0.05)
        assert time.monotonic() - t0 < 5, "published on the poll, not on NOTIFY"
        info = await js.stream_info(scratch.stream)  # type: ignore[attr-defined]
        assert info.state.messages == 2
        ids = [
            (await js.get_msg(scratch.stream, seq)).headers["Nats-Msg-Id"]  # type: ignore[attr-defined]
            for seq in (1, 2)
        ]
        assert ids == [before, after]
        dead = await scratch.pool.fetch("SELECT event_id, subject, reason, length(payload::text) AS n FROM outbox_dead")
        assert [(r["event_id"], r["subject"]) for r in dead] == [(big, f"{scratch.subject}.big")]
        assert "MaxPayload" in dead[0]["reason"] and dead[0]["n"] > 1_200_000  # kept whole, with the reason
        # The relay goes on: the next event is published as usual.
        later = await _enqueue(scratch.pool, f"{scratch.subject}.c", {"n": 3})
        while (await js.stream_info(scratch.stream)).state.messages < 3:  # type: ignore[attr-defined]
            assert time.monotonic() - t0 < 10
            await asyncio.sleep(0.05)
        assert (await js.get_msg(scratch.stream, 3)).headers["Nats-Msg-Id"] == later  # type: ignore[attr-defined]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_headers_of_a_row_are_published_as_they_are(scratch: Scratch) -> None:
    """The CloudEvents (and trace) headers are written with the row and published unchanged, beside
    its Nats-Msg-Id; a re-publish after a crash (the row still there) is the same message, dropped."""
    js = scratch.js
    relay = OutboxRelay(scratch.pool, js, schema=scratch.schema, batch=16, poll=30.0)  # type: ignore[arg-type]
    event_id = str(uuid.uuid4())
    when = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    headers = cloudevents.headers(
        id=event_id, service="ipam", type="org.scopenet.ipam.subnet.created.v1", subject="s-1",
        schema="schemas/events/subnet.created.json", time=when,
    )  # fmt: skip
    row = (event_id, f"{scratch.subject}.a", json.dumps({"n": 1}), headers_json({**headers, "traceparent": "00-x"}))
    insert = (
        "INSERT INTO outbox (event_id, subject, payload, headers) VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb)"
    )
    await scratch.pool.execute(insert, *row)
    assert await relay.publish_batch() == 1
    await scratch.pool.execute(insert, *row)  # as if the relay had died before its DELETE committed
    assert await relay.publish_batch() == 1
    assert (await js.stream_info(scratch.stream)).state.messages == 1  # type: ignore[attr-defined]
    msg = await js.get_msg(scratch.stream, 1)  # type: ignore[attr-defined]
    assert msg.headers == {**headers, "traceparent": "00-x", "Nats-Msg-Id": event_id}
    ce = cloudevents.parse(msg.headers, msg.data)
    assert (ce.id, ce.time, ce.subject, ce.data) == (event_id, when, "s-1", {"n": 1})
    assert ce.schema_path == "schemas/events/subnet.created.json"
