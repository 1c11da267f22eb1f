"""Dead letters: a JetStream message no handler can take is parked on ``scopenet.v1.dlq.<name>``
with the reason, then terminated — never dropped silently, never redelivered forever. If the
dead letter itself cannot be published, the message is nak'ed and comes back later instead."""

from __future__ import annotations

from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from pydantic import ValidationError

from scopenet.bus.jetstream import ensure_stream, publish
from scopenet.contracts.topology import DLQ_STREAM, DLQ_SUBJECTS, DeadLetter, dlq_subject

_log = structlog.get_logger("bus.deadletter")


def dlq_stream_config() -> StreamConfig:
    """Every consumer's dead letters, kept two weeks for an operator to look at."""
    return StreamConfig(
        name=DLQ_STREAM,
        subjects=[DLQ_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=14 * 24 * 3600,
    )


async def ensure_dlq(js: JetStreamContext, *, replicas: int) -> None:
    await ensure_stream(js, dlq_stream_config(), replicas=replicas)


async def dead_letter(js: Any, msg: Any, *, consumer: str, dlq: str, reason: str) -> None:
    seq = msg.metadata.sequence.stream if msg.metadata else None
    letter = DeadLetter(
        consumer=consumer,
        subject=msg.subject,
        stream_sequence=seq,
        reason=reason[:2000],
        payload=bytes(msg.data).decode("utf-8", errors="replace"),
        headers={k: str(v) for k, v in (msg.headers or {}).items()},
    )
    _log.warning("dead_lettered", consumer=consumer, subject=msg.subject, reason=reason[:200])
    try:
        await publish(js, dlq_subject(dlq), letter.model_dump_json().encode(), msg_id=f"{consumer}-{seq}")
    except Exception as exc:  # keep the message rather than lose it: redelivered later
        _log.warning("dead_letter_failed", consumer=consumer, error=str(exc) or type(exc).__name__)
        await msg.nak(delay=5)
        return
    await msg.term()


def first_error(exc: Exception) -> str:
    """One line saying what was wrong with a message (the first field pydantic refused)."""
    if isinstance(exc, ValidationError):
        e = exc.errors(include_url=False)[0]
        return f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
    return str(exc)[:500]
