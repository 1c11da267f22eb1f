"""Topology's event consumers: IPAM's events, read through the bus's durable consumer.

``scopenet.bus.consumer.DurableConsumer`` does the fetching, acking, retrying and dead-lettering
(to ``scopenet.v1.dlq.<consumer>``). What is topology's own: an event is decoded by its subject's
contract, one message at a time, and handlers are idempotent on the event id (``consumed``), since
JetStream delivers at least once. An event that fails (Postgres or IPAM away) comes back on the
schedule of ``SCOPENET_TOPOLOGY_EVENT_BACKOFF`` (JetStream ``BackOff``), long enough to ride out a
ten-minute outage by default; one no delivery acknowledged is dead-lettered from the server's
advisory (``scopenet.bus.advisories``, the ``topology-max-deliveries`` watcher started by the app).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import structlog
from nats.js import JetStreamContext
from pydantic import BaseModel

from scopenet.bus.consumer import DurableConsumer, Rejected
from scopenet.contracts.subjects import ALL_EVENTS, EVENTS_STREAM

log = structlog.get_logger("topology.consumers")

Handler = Callable[[Any], Awaitable[None]]


async def consumed(conn: asyncpg.Connection, event_id: object) -> bool:
    """Record the event in the handler's transaction; True when it was handled before (skip it)."""
    fresh = await conn.fetchval(
        "INSERT INTO consumed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", event_id
    )
    return not fresh


def decode_event(msg: Any) -> BaseModel:
    """The event a message carries, by its subject's contract."""
    model = next((e.model for e in ALL_EVENTS if e.subject == msg.subject), None)
    if model is None:
        raise Rejected(f"unknown event subject {msg.subject}")
    return model.model_validate_json(msg.data)


def event_consumer(
    js: JetStreamContext, *, durable: str, subject: str, handler: Handler, backoff: Sequence[float]
) -> DurableConsumer[Any]:
    """A durable consumer of new events on ``subject``, retried on ``backoff``; dead letters go to
    ``scopenet.v1.dlq.<durable>``."""
    return DurableConsumer(
        js,
        stream=EVENTS_STREAM,
        durable=durable,
        subject=subject,
        dlq=durable,
        decode=decode_event,
        handler=handler,
        backoff=backoff,
        log=log.bind(consumer=durable),
    )
