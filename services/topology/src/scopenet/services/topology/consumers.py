"""Durable JetStream pull consumers that never crash on input and never drop it silently.

Concurrency model: one task per consumer fetches one message at a time (``fetch(1)`` returns as
soon as a message is there; larger batches would wait for the batch to fill) and runs the handler.
Outcomes: success → ack; ``TransientError`` or an unexpected exception → nak with a delay (retried
up to ``max_deliver`` times); a malformed or unknown event, a ``DomainError``, or the last delivery
→ the message goes to ``scopenet.v1.dlq.<consumer>`` (stream ``SCOPENET_DLQ``) with the reason, then
``term``. Handlers are idempotent on the event id (see ``consumed``), since JetStream delivers at
least once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from pydantic import BaseModel, ValidationError

from scopenet.bus.deadletter import dead_letter, first_error
from scopenet.bus.jetstream import ensure_stream
from scopenet.contracts import topology as t
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.contracts.subjects import ALL_EVENTS, EVENTS_STREAM

log = structlog.get_logger("topology.consumers")

Handler = Callable[[Any], Awaitable[None]]
MAX_DELIVER = 8


def dlq_stream_config() -> StreamConfig:
    return StreamConfig(
        name=t.DLQ_STREAM,
        subjects=[t.DLQ_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=14 * 24 * 3600,
    )


async def ensure_dlq(js: JetStreamContext) -> None:
    await ensure_stream(js, dlq_stream_config())


async def consumed(conn: asyncpg.Connection, event_id: object) -> bool:
    """Record the event in the handler's transaction; True when it was handled before (skip it)."""
    fresh = await conn.fetchval(
        "INSERT INTO consumed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", event_id
    )
    return not fresh


def _model_for(subject: str) -> type[BaseModel] | None:
    return next((e.model for e in ALL_EVENTS if e.subject == subject), None)


class EventConsumer:
    def __init__(self, js: JetStreamContext, *, durable: str, subject: str, handler: Handler) -> None:
        self.js = js
        self.durable = durable
        self.subject = subject
        self.handler = handler
        self.bound = asyncio.Event()
        self._log = log.bind(consumer=durable)

    async def bind(self) -> Any:
        config = ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW,
            max_deliver=MAX_DELIVER,
            ack_wait=30,
        )
        sub = await self.js.pull_subscribe(self.subject, durable=self.durable, stream=EVENTS_STREAM, config=config)
        self.bound.set()
        return sub

    async def run(self, sub: Any) -> None:
        while True:
            try:
                msgs = await sub.fetch(1, timeout=5)
            except (TimeoutError, NatsTimeout):
                continue
            except Exception as exc:  # NATS away: the durable consumer keeps our place
                self._log.warning("fetch_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1)
                continue
            for msg in msgs:
                await self.handle(msg)

    async def handle(self, msg: Any) -> None:
        delivered = msg.metadata.num_delivered if msg.metadata else 1
        model = _model_for(msg.subject)
        if model is None:
            await self.dead_letter(msg, f"unknown event subject {msg.subject}")
            return
        try:
            event = model.model_validate_json(msg.data)
        except (ValidationError, ValueError) as exc:
            await self.dead_letter(msg, f"malformed event: {first_error(exc)}")
            return
        try:
            await self.handler(event)
        except DomainError as exc:
            await self.dead_letter(msg, f"refused: {exc.type}: {exc.message}")
            return
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            if delivered >= MAX_DELIVER:
                await self.dead_letter(msg, f"gave up after {delivered} deliveries: {reason}")
                return
            if not isinstance(exc, TransientError):
                self._log.exception("event_handler_failed", subject=msg.subject)
            await msg.nak(delay=getattr(exc, "delay", 1.0))
            return
        await msg.ack()

    async def dead_letter(self, msg: Any, reason: str) -> None:
        await dead_letter(self.js, msg, consumer=self.durable, dlq=self.durable, reason=reason)
