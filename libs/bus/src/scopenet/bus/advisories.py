"""Messages JetStream gave up on reach the dead letters, whatever the reason.

A consumer dead-letters what it refuses or fails on its last delivery itself (``consumer.py``). But
a message can also run out of deliveries without its consumer ever answering: the handler hung
past the ack wait, the process crashed or was killed mid-way, every time. JetStream then stops
delivering it and says so with an advisory, ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.
<consumer>``, naming the stream sequence. Nobody may be listening at that moment (the one consumer
process is the one that is stuck), so the advisories are kept in a stream of their own
(``SCOPENET_ADVISORIES``), and a durable consumer of that stream (``watcher``) reads each, fetches
the original message by its sequence and parks it on ``scopenet.v1.dlq.<consumer>`` in the one
dead-letter format, then acks the advisory.

Replicas share the durable, so each advisory is handled once; a redelivered advisory (a replica
died mid-way) parks nothing twice within the dead-letter stream's duplicate window
(JetStream's default, 120 s), since a dead letter's ``Nats-Msg-Id`` is
``<consumer>-<stream sequence>``, the same the consumer itself would use. Redelivered after the
window, it parks a second copy of the letter (JetStream no longer remembers the id). A message that is no
longer in its stream (expired) cannot be parked; that is logged and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

import structlog
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict

from scopenet.bus.consumer import DurableConsumer
from scopenet.bus.deadletter import letter, park
from scopenet.bus.jetstream import DUPLICATE_WINDOW
from scopenet.contracts.topology import ADVISORIES_STREAM

MAX_DELIVERIES = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
EXHAUSTED = Counter(
    "scopenet_messages_exhausted_total", "Messages JetStream stopped delivering (max deliveries)", ["result"]
)

_log = structlog.get_logger("bus.advisories")


class MaxDeliveries(BaseModel):
    """The server's ``io.nats.jetstream.advisory.v1.max_deliver`` (only the fields we use)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["io.nats.jetstream.advisory.v1.max_deliver"]
    id: str
    timestamp: datetime
    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


def max_deliveries_subject(stream: str, consumer: str = "*") -> str:
    return f"{MAX_DELIVERIES}.{stream}.{consumer}"


def advisories_stream_config(streams: Sequence[str]) -> StreamConfig:
    """The max-deliveries advisories about consumers of ``streams``, kept a week at most (they are
    read within seconds while topology runs; the week covers a long stop)."""
    return StreamConfig(
        name=ADVISORIES_STREAM,
        subjects=[max_deliveries_subject(s) for s in streams],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * 24 * 3600,
        duplicate_window=DUPLICATE_WINDOW,
    )


def reason(advisory: MaxDeliveries) -> str:
    return (
        f"not acknowledged after {advisory.deliveries} deliveries: the consumer's handler timed out, "
        "hung or its process stopped each time (server max-deliveries advisory)"
    )


async def park_exhausted(
    js: JetStreamContext, advisory: MaxDeliveries, *, dlq: Callable[[str], str], log: Any = None
) -> None:
    """Fetch the message ``advisory`` names and park it on ``dlq(consumer)``'s dead-letter subject.
    ``log``: the watcher's logger (its service bound), else this module's."""
    log = log or _log
    try:
        original = await js.get_msg(advisory.stream, advisory.stream_seq)
    except NotFoundError:
        EXHAUSTED.labels("gone").inc()
        log.error(
            "exhausted_message_gone",
            stream=advisory.stream,
            consumer=advisory.consumer,
            stream_seq=advisory.stream_seq,
            hint="no longer in its stream (expired or deleted): nothing to park",
        )
        return
    dead = letter(
        consumer=advisory.consumer,
        subject=original.subject or "",
        data=original.data,
        headers=original.headers,
        reason=reason(advisory),
        stream=advisory.stream,
        seq=advisory.stream_seq,
        deliveries=advisory.deliveries,
    )
    parked = await park(js, dead, dlq=dlq(advisory.consumer), log=log)
    EXHAUSTED.labels("parked" if parked else "parked_before").inc()


def decode(msg: Any) -> MaxDeliveries:
    return MaxDeliveries.model_validate_json(msg.data)


def watcher(
    js: JetStreamContext,
    *,
    durable: str,
    dlq: Callable[[str], str] = lambda consumer: consumer,
    backoff: Sequence[float] = (),
    log: Any = None,
    service: str | None = None,
) -> DurableConsumer[MaxDeliveries]:
    """The durable consumer of ``SCOPENET_ADVISORIES`` that parks what each advisory names.
    ``dlq`` maps a consumer's name to its dead-letter name (by default the same); ``service``
    is bound on what it logs."""
    if service is not None:
        log = (log or _log).bind(service=service)

    async def handle(advisory: MaxDeliveries) -> None:
        await park_exhausted(js, advisory, dlq=dlq, log=log)

    return DurableConsumer(
        js,
        stream=ADVISORIES_STREAM,
        durable=durable,
        subject=f"{MAX_DELIVERIES}.>",
        dlq=durable,
        decode=decode,
        handler=handle,
        deliver_policy=DeliverPolicy.ALL,  # advisories kept while nobody read them are read too
        backoff=backoff,
        log=log,
        what="max-deliveries advisory",
    )
