"""Dead letters: a JetStream message no handler can take is parked on ``scopenet.v1.dlq.<name>``
with the reason, then terminated — never dropped silently, never redelivered forever. If the
dead letter itself cannot be published, the message is nak'ed and comes back later instead.

Two ways lead here, with one format (``DeadLetter``) and one ``Nats-Msg-Id``
(``<consumer>-<stream sequence>``, so the same message is parked once whoever parks it): the
consumer gives a message up itself (``dead_letter``: refused, malformed, failed on its last
delivery), or the server gives it up because no delivery was acknowledged and topology parks it
from the advisory (``scopenet.bus.advisories``, through ``park``)."""

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


def letter(
    *,
    consumer: str,
    subject: str,
    data: bytes | None,
    headers: dict[str, Any] | None,
    reason: str,
    stream: str | None = None,
    seq: int | None = None,
    deliveries: int | None = None,
) -> DeadLetter:
    return DeadLetter(
        consumer=consumer,
        subject=subject,
        stream=stream,
        stream_sequence=seq,
        deliveries=deliveries,
        reason=reason[:2000],
        payload=bytes(data or b"").decode("utf-8", errors="replace"),
        headers={k: str(v) for k, v in (headers or {}).items()},
    )


async def park(js: Any, dead: DeadLetter, *, dlq: str, log: Any = None) -> bool:
    """Publish ``dead`` on ``scopenet.v1.dlq.<dlq>``; False if it was parked before (deduplicated).
    ``log``: the caller's logger (its service bound), else this module's."""
    (log or _log).warning("dead_lettered", consumer=dead.consumer, subject=dead.subject, reason=dead.reason[:200])
    msg_id = f"{dead.consumer}-{dead.stream_sequence}"
    return await publish(js, dlq_subject(dlq), dead.model_dump_json().encode(), msg_id=msg_id)


async def dead_letter(js: Any, msg: Any, *, consumer: str, dlq: str, reason: str, log: Any = None) -> None:
    meta = msg.metadata
    dead = letter(
        consumer=consumer,
        subject=msg.subject,
        data=msg.data,
        headers=msg.headers,
        reason=reason,
        stream=meta.stream if meta else None,
        seq=meta.sequence.stream if meta else None,
        deliveries=meta.num_delivered if meta else None,
    )
    try:
        await park(js, dead, dlq=dlq, log=log)
    except Exception as exc:  # keep the message rather than lose it: redelivered later
        (log or _log).warning("dead_letter_failed", consumer=consumer, error=str(exc) or type(exc).__name__)
        await msg.nak(delay=5)
        return
    await msg.term()


def first_error(exc: Exception) -> str:
    """One line saying what was wrong with a message (the first field pydantic refused)."""
    if isinstance(exc, ValidationError):
        e = exc.errors(include_url=False)[0]
        return f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
    return str(exc)[:500]
