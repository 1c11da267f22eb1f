"""The dead-letter stream from an operator's side: what is parked, and replaying it.

Each dead letter is one message of ``SCOPENET_DLQ`` (``DeadLetter``, on ``scopenet.v1.dlq.<consumer>``);
its sequence in that stream is its id. Replaying one publishes the original event again on its
original subject, with its original headers (CloudEvents attributes, trace context), then deletes
the letter. The event is the same event (same id, same ``ce-id``), so handlers idempotent on the
event id take a replay of something they did apply in their stride; only its ``Nats-Msg-Id`` gets a
``-replay-<letter id>`` suffix, or JetStream would drop it as a duplicate within its window.

Only events (``scopenet.v1.evt.>``) are replayed. A dead-lettered RouterSpec is not: the stream
keeps the last spec per router, so an old one published again would replace the current desired
state; topology republishes specs itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from scopenet.bus.jetstream import publish
from scopenet.contracts.subjects import EVENTS_SUBJECTS
from scopenet.contracts.topology import DLQ_STREAM, DLQ_SUBJECTS, DeadLetter, dlq_subject

_log = structlog.get_logger("bus.dlq")

REPLAYABLE = EVENTS_SUBJECTS.removesuffix(">")


class NotParked(LookupError):
    """No dead letter has this id."""


class NotReplayable(ValueError):
    """The dead letter is not an event that can be published again."""


@dataclass(frozen=True)
class Parked:
    """A dead letter and where it is."""

    seq: int
    """Its sequence in ``SCOPENET_DLQ``: the id to replay it by."""
    time: datetime | None
    """When it was parked."""
    letter: DeadLetter | None
    """None when the message on the dead-letter subject is not a ``DeadLetter`` (someone else's)."""
    raw: bytes


async def parked(js: JetStreamContext, *, consumer: str | None = None) -> AsyncIterator[Parked]:
    """Every dead letter (of ``consumer``'s, if given), oldest first."""
    subject = dlq_subject(consumer) if consumer else DLQ_SUBJECTS
    try:
        seq = (await js.stream_info(DLQ_STREAM)).state.first_seq
    except NotFoundError:  # nothing was ever dead-lettered here
        return
    while True:
        try:
            msg = await js.get_msg(DLQ_STREAM, seq, subject=subject, next=True)
        except NotFoundError:
            return
        assert msg.seq is not None
        yield _parked(msg.seq, msg.time, msg.data or b"")
        seq = msg.seq + 1


async def get(js: JetStreamContext, seq: int) -> Parked:
    """The dead letter with id ``seq``; NotParked if there is none."""
    try:
        msg = await js.get_msg(DLQ_STREAM, seq)
    except NotFoundError:
        raise NotParked(f"no dead letter {seq} in {DLQ_STREAM} (see `scopenet dlq list`)") from None
    if not (msg.subject or "").startswith(DLQ_SUBJECTS.removesuffix(">")):
        raise NotParked(f"message {seq} of {DLQ_STREAM} is not a dead letter")
    return _parked(seq, msg.time, msg.data or b"")


def unreplayable(seq: int, letter: DeadLetter | None) -> str | None:
    """Why dead letter ``seq`` cannot be replayed, or None if it can (only events are)."""
    if letter is None:
        return f"dead letter {seq} is not in the dead-letter format; nothing to replay"
    if not letter.subject.startswith(REPLAYABLE):
        return (
            f"dead letter {seq} holds a message of {letter.subject}, not an event ({EVENTS_SUBJECTS}): "
            "only events are replayed (the publisher of desired state sends it again itself)"
        )
    return None


async def replay(js: JetStreamContext, seq: int) -> DeadLetter:
    """Publish dead letter ``seq``'s event again on its subject, then delete the letter."""
    found = await get(js, seq)
    letter = found.letter
    why = unreplayable(seq, letter)
    if why is not None or letter is None:
        raise NotReplayable(why)
    original_id = letter.headers.get("Nats-Msg-Id") or f"{letter.consumer}-{letter.stream_sequence}"
    # Server headers (Nats-Msg-Id, Nats-Expected-*, ...) are not the event's; the rest go out as they were.
    headers = {k: v for k, v in letter.headers.items() if not k.lower().startswith("nats-")}
    await publish(js, letter.subject, letter.payload.encode(), msg_id=f"{original_id}-replay-{seq}", headers=headers)
    await js.delete_msg(DLQ_STREAM, seq)
    _log.info(
        "dead_letter_replayed",
        id=seq,
        subject=letter.subject,
        consumer=letter.consumer,
        stream_sequence=letter.stream_sequence,
    )
    return letter


def _parked(seq: int, time: datetime | None, data: bytes) -> Parked:
    try:
        letter: DeadLetter | None = DeadLetter.model_validate_json(data)
    except ValidationError:
        letter = None
    return Parked(seq=seq, time=time, letter=letter, raw=data)
