"""Transactional outbox: events are rows written with the change, published afterwards.

A handler calls ``enqueue`` inside the transaction that changes state, so an event exists iff the
change committed. ``OutboxRelay`` publishes rows to JetStream in id order and deletes them in the
same transaction that claimed them. If the relay dies after publishing but before commit, the
rows are published again with the same ``Nats-Msg-Id`` (the event id) and JetStream drops the
duplicates: nothing lost, nothing doubled. Relays of several replicas take turns through an
advisory lock, which keeps events in commit order. A NOTIFY wakes the relay right after a commit;
a poll is only the safety net. The listening connection is watched: when Postgres restarts, the
relay listens again on a new connection (and publishes what committed meanwhile) at once.

Each row carries the NATS headers it is published with (``headers``, a JSON object of header →
value): the CloudEvents attributes (``scopenet.contracts.cloudevents``), computed once when the row
is written, so a re-publish carries exactly the same ones; the relay adds ``Nats-Msg-Id``.

An event that can never be published — larger than the server's max payload, or refused by
JetStream as a bad request — would hold every later event behind it forever. It is moved to
``outbox_dead`` instead (same transaction as the batch), logged and counted: kept for an operator
to look at, never silently dropped, never blocking the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import structlog
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError
from prometheus_client import Counter, Gauge
from pydantic import BaseModel

from scopenet.bus.jetstream import publish
from scopenet.contracts import cloudevents
from scopenet.contracts.subjects import EventSpec
from scopenet.runtime import tracing
from scopenet.runtime.supervise import retry

PUBLISHED = Counter("scopenet_outbox_published_total", "Events published by the outbox relay", ["service"])
PENDING = Gauge("scopenet_outbox_pending", "Events waiting in the outbox", ["service"])
DEAD = Counter("scopenet_outbox_dead_lettered_total", "Events moved to outbox_dead: never publishable", ["service"])

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

#: Where an event goes that JetStream can never take (see the module docstring). ``event_id`` is
#: text: topology's outbox ids are not all UUIDs.
OUTBOX_DEAD_DDL = """
CREATE TABLE outbox_dead (
    id bigint PRIMARY KEY,
    event_id text NOT NULL,
    subject text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    reason text NOT NULL,
    dead_at timestamptz NOT NULL DEFAULT now()
);
"""

#: The headers a row is published with (see the module docstring); rows written before it have none.
OUTBOX_HEADERS_DDL = """
ALTER TABLE outbox ADD COLUMN headers jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE outbox_dead ADD COLUMN headers jsonb NOT NULL DEFAULT '{}'::jsonb;
"""

#: Seconds between the relay's attempts while NATS or Postgres is away (it backs off up to this).
RETRY_MAX = 1.0

#: Publish failures that no retry can cure: the message itself is the problem.
PERMANENT = (MaxPayloadError, BadRequestError)


#: One outbox row: (event id, subject, JSON payload, JSON object of NATS headers).
Row = tuple[uuid.UUID, str, str, str]


def headers_json(headers: dict[str, str]) -> str:
    """The ``headers`` column's value (sorted: the same headers are the same text), with the W3C
    ``traceparent`` of the span writing the row when there is one: the event carries the trace of
    the change that caused it to its consumers, even when it is published much later."""
    return json.dumps(tracing.inject(headers), sort_keys=True, separators=(",", ":"))


def event_row(spec: EventSpec, resource: BaseModel, previous: BaseModel | None = None) -> Row:
    """The outbox row of one event, validated against the event contract, with its CloudEvents
    headers (``ce-id`` is the event id, the ``Nats-Msg-Id`` the relay sends)."""
    event_id = uuid.uuid4()
    occurred_at = datetime.now(UTC)
    event = spec.model(
        id=event_id,
        type=spec.type,
        occurred_at=occurred_at,
        resource=resource,
        previous=previous,
    )
    headers = cloudevents.event_headers(spec, id=str(event_id), occurred_at=occurred_at, resource=resource)
    return event_id, spec.subject, event.model_dump_json(), headers_json(headers)


async def enqueue(conn: asyncpg.Connection, rows: list[Row]) -> None:
    """Write events in the caller's transaction (``rows`` from ``event_row``)."""
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO outbox (event_id, subject, payload, headers) VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb)",
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
        self._listener: asyncpg.Connection | None = None

    def _notified(self, *_: object) -> None:
        self._wake.set()

    def _listener_lost(self, *_: object) -> None:
        self._wake.set()  # the loop notices the closed connection and listens again

    async def run(self) -> None:
        try:
            while True:
                # NATS or Postgres away: keep the rows and try again, at most a second apart (said
                # once per outage), so what waits is published within a second of the outage's end
                # and the log is not flooded meanwhile.
                sent = await retry(
                    self._pass,
                    log=self._log,
                    event="outbox_publish_failed",
                    delay=0.1,
                    max_delay=RETRY_MAX,
                    repeat_level="debug",
                    recovered="outbox_publish_recovered",
                )
                if sent == self.batch:
                    continue  # more waiting
                self.drained.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll)
                self.drained.clear()
        finally:
            await self._release(self._listener)
            self._listener = None

    async def _pass(self) -> int:
        """Listen (again) if need be, then publish one batch."""
        if not _alive(self._listener):
            # (Re)listen before reading, so no commit after this point goes unnoticed; what
            # committed while nobody listened is read by the batch below.
            await self._release(self._listener)
            self._listener = None
            self._listener = await self._listen()
        self._wake.clear()  # before reading, so a NOTIFY that lands during the batch is not lost
        return await self.publish_batch()

    async def _listen(self) -> asyncpg.Connection | None:
        """A pooled connection listening on the schema's channel; None while Postgres is away
        (the poll covers the gap, and the next pass tries again)."""
        conn: asyncpg.Connection | None = None
        try:
            conn = await self.pool.acquire()
            await conn.add_listener(self._channel, self._notified)
            conn.add_termination_listener(self._listener_lost)
            return conn
        except Exception as exc:
            self._log.debug("outbox_listen_failed", error=str(exc) or type(exc).__name__)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await self.pool.release(conn)
            return None

    async def _release(self, conn: asyncpg.Connection | None) -> None:
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.remove_termination_listener(self._listener_lost)
            if _alive(conn):
                await conn.remove_listener(self._channel, self._notified)
        with contextlib.suppress(Exception):
            await self.pool.release(conn)

    async def publish_batch(self) -> int:
        """Publish up to ``batch`` events in id order; returns how many were published."""
        async with self.pool.acquire() as conn, conn.transaction():
            got = await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", f"{self.schema}-outbox")
            if not got:
                return 0  # another replica's relay is publishing
            rows = await conn.fetch(
                "SELECT id, event_id, subject, payload::text AS payload, headers::text AS headers"
                " FROM outbox ORDER BY id LIMIT $1",
                self.batch,
            )
            if not rows:
                PENDING.labels(self.schema).set(0)
                return 0
            # Publish concurrently (JetStream keeps per-publisher order for one connection's
            # pipeline), but wait for every ack before deleting.
            results = await asyncio.gather(
                *(
                    publish(
                        self.js,
                        r["subject"],
                        r["payload"].encode(),
                        msg_id=str(r["event_id"]),
                        headers=json.loads(r["headers"]),
                    )
                    for r in rows
                ),
                return_exceptions=True,
            )
            dead = [(r, exc) for r, exc in zip(rows, results, strict=True) if isinstance(exc, PERMANENT)]
            failed = [exc for exc in results if isinstance(exc, BaseException) and not isinstance(exc, PERMANENT)]
            if failed:
                raise failed[0]  # NATS away or slow: the whole batch again later (duplicates are dropped)
            for r, exc in dead:
                await conn.execute(
                    """INSERT INTO outbox_dead (id, event_id, subject, payload, headers, created_at, reason)
                       SELECT id, event_id::text, subject, payload, headers, created_at, $2 FROM outbox WHERE id = $1
                       ON CONFLICT (id) DO NOTHING""",
                    r["id"],
                    f"{type(exc).__name__}: {exc}"[:2000],
                )
                self._log.error(
                    "outbox_event_dead_lettered",
                    event_id=str(r["event_id"]),
                    subject=r["subject"],
                    size=len(r["payload"]),
                    error=str(exc) or type(exc).__name__,
                )
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
            PUBLISHED.labels(self.schema).inc(len(rows) - len(dead))
            DEAD.labels(self.schema).inc(len(dead))
            return len(rows)


def _alive(conn: asyncpg.Connection | None) -> bool:
    """Is ``conn`` still an open connection of ours? A pooled connection Postgres dropped is closed,
    or already detached from its proxy by the pool (asking it anything then raises)."""
    if conn is None:
        return False
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False
