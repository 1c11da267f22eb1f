"""Transactional outbox: events are rows written with the change, published afterwards.

A handler calls ``enqueue`` inside the transaction that changes state, so an event exists iff the
change committed. ``OutboxRelay`` publishes rows to JetStream in id order and deletes them in the
same transaction that claimed them. If the relay dies after publishing but before commit, the
rows are published again with the same ``Nats-Msg-Id`` (the event id) and JetStream drops the
duplicates: nothing lost, nothing doubled. Relays of several replicas take turns through an
advisory lock, which keeps events in commit order. A NOTIFY wakes the relay right after a commit;
a poll is only the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

import asyncpg
import structlog
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge
from pydantic import BaseModel

from scopenet.bus.jetstream import publish
from scopenet.contracts.subjects import EventSpec

PUBLISHED = Counter("scopenet_outbox_published_total", "Events published by the outbox relay", ["service"])
PENDING = Gauge("scopenet_outbox_pending", "Events waiting in the outbox", ["service"])

OUTBOX_DDL = """
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    subject text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
"""


def event_row(spec: EventSpec, resource: BaseModel, previous: BaseModel | None = None) -> tuple[uuid.UUID, str, str]:
    """(event id, subject, JSON payload) for one event; validated against the event contract."""
    event_id = uuid.uuid4()
    event = spec.model(
        id=event_id,
        type=spec.type,
        occurred_at=datetime.now(UTC),
        resource=resource,
        previous=previous,
    )
    return event_id, spec.subject, event.model_dump_json()


async def enqueue(conn: asyncpg.Connection, rows: list[tuple[uuid.UUID, str, str]]) -> None:
    """Write events in the caller's transaction (``rows`` from ``event_row``)."""
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3::text::jsonb)",
        rows,
    )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        *,
        schema: str,
        batch: int,
        poll: float,
    ) -> None:
        self.pool = pool
        self.js = js
        self.schema = schema
        self.batch = batch
        self.poll = poll
        self._wake = asyncio.Event()
        self._log = structlog.get_logger("bus.outbox").bind(service=schema)
        self.drained = asyncio.Event()
        self._channel = f"{schema}_outbox"

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        listener = await self._listen()
        delay = 0.05
        try:
            while True:
                self._wake.clear()  # before reading, so a NOTIFY that lands during the batch is not lost
                try:
                    sent = await self.publish_batch()
                    delay = 0.05
                except Exception as exc:  # NATS or Postgres away: keep the rows, retry later
                    self._log.warning("outbox_publish_failed", error=str(exc) or type(exc).__name__)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    if listener is None:
                        listener = await self._listen()
                    continue
                if sent == self.batch:
                    continue  # more waiting
                self.drained.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll)
                self.drained.clear()
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.remove_listener(self._channel, self._notified)
                    await self.pool.release(listener)

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            conn: asyncpg.Connection = await self.pool.acquire()
            await conn.add_listener(self._channel, self._notified)
            return conn
        except Exception:
            return None

    async def publish_batch(self) -> int:
        """Publish up to ``batch`` events in id order; returns how many were published."""
        async with self.pool.acquire() as conn, conn.transaction():
            got = await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", f"{self.schema}-outbox")
            if not got:
                return 0  # another replica's relay is publishing
            rows = await conn.fetch(
                "SELECT id, event_id, subject, payload::text AS payload FROM outbox ORDER BY id LIMIT $1",
                self.batch,
            )
            if not rows:
                PENDING.labels(self.schema).set(0)
                return 0
            # Publish concurrently (JetStream keeps per-publisher order for one connection's
            # pipeline), but wait for every ack before deleting.
            await asyncio.gather(
                *(publish(self.js, r["subject"], r["payload"].encode(), msg_id=str(r["event_id"])) for r in rows)
            )
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
            PUBLISHED.labels(self.schema).inc(len(rows))
            return len(rows)
