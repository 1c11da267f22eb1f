"""A durable JetStream pull consumer that never crashes on input and never drops it silently.

Concurrency model: one task per consumer fetches up to ``batch`` messages at a time (``fetch``
returns as soon as something is there; it does not wait for the batch to fill) and handles them one
after another. Outcomes of one message:

- it cannot be decoded (malformed, not meant for this consumer: ``decode`` raises ``Rejected``,
  or pydantic refuses it) → dead letter: parked on ``scopenet.v1.dlq.<dlq>`` with the reason, then
  ``term`` (``deadletter.py``);
- the handler succeeds → ``ack``;
- the handler raises a ``DomainError`` (permanent) → dead letter;
- the handler raises a ``TransientError`` or anything else → retried up to ``max_deliver``
  deliveries; the last one is dead-lettered. Without a schedule the message is nak'ed with a delay
  (the error's ``delay``, else 1 s). With a redelivery schedule (``backoff``, JetStream
  ``BackOff``, ``scopenet.bus.backoff``) it is not nak'ed at all: the server redelivers it when the
  delivery's ack wait (the schedule's step) runs out. A nak with a delay would override the
  schedule (the server then waits the delay plus the difference between the current step and the
  first), and the error's delay is a guess where the schedule is the operator's setting, so the
  schedule alone decides; ``max_deliver`` is then the schedule's length + 1.

Redelivery schedules and long handlers: with a schedule the first delivery's ack wait is the first
step (1 s by default), so while a handler runs the consumer sends progress acks (``+WPI``) every
half step; JetStream redelivers only what nobody is working on. It stops after the schedule's
longest step: a handler running longer than that counts as hung, and the message may go to another
replica. A message no delivery acknowledged (hung or crashed handlers, a process gone mid-way)
reaches the dead letters through the server's max-deliveries advisory (``advisories.py``).

Handlers are idempotent on the event id, since JetStream delivers at least once. While NATS is away
the fetch fails; the durable consumer keeps our place, and the loop tries again a second later (and
creates the consumer again if the server lost it). A fetch that times out with NATS connected means
nothing is pending: the consumer is *caught up* (also said by a batch whose last message has no
more pending behind it).

Traces: each message is handled in a CONSUMER span (``process <filter subject>``), a child of the
span that wrote the message (its ``traceparent`` header, carried from the outbox row), so a change's
trace goes on into what its events cause; a dead-lettered message marks its span an error.

Binding: by default an existing durable consumer is resumed (created on first use), and brought to
this consumer's redelivery settings (``backoff``, ``max_deliver``, ``ack_wait``) if it was made with
others, e.g. by a release before schedules or with another ``SCOPENET_*_BACKOFF``; with
``fresh=True`` it is deleted and created anew on every bind, e.g. so that a new process reads the
last message per subject again (``DeliverPolicy.LAST_PER_SUBJECT``). A fresh consumer is created by
name, so the create request's subject carries the filter and a NATS user allowed only its own
subjects may create it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

import structlog
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from scopenet.bus.backoff import ack_deadline
from scopenet.bus.backoff import max_deliver as max_deliver_for
from scopenet.bus.deadletter import dead_letter, first_error
from scopenet.bus.pull import next_batch
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.runtime import tracing
from scopenet.runtime.supervise import describe, retry

T = TypeVar("T")

MAX_DELIVER = 8
ACK_WAIT = 30.0


class Rejected(Exception):
    """``decode`` refuses a message for good: it is dead-lettered with this reason."""


class DurableConsumer(Generic[T]):
    """A durable pull consumer on ``subject`` of ``stream`` (see the module docstring)."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        subject: str,
        dlq: str,
        decode: Callable[[Any], T],
        handler: Callable[[T], Awaitable[None]],
        deliver_policy: DeliverPolicy = DeliverPolicy.NEW,
        fresh: bool = False,
        batch: int = 1,
        max_deliver: int | None = None,
        backoff: Sequence[float] = (),
        max_ack_pending: int | None = None,
        connected: Callable[[], bool] = lambda: True,
        on_dead_letter: Callable[[], None] | None = None,
        log: Any = None,
        events: str = "",
        what: str = "event",
    ) -> None:
        self.js = js
        self.stream = stream
        self.durable = durable
        self.subject = subject
        self.dlq = dlq
        self.decode = decode
        self.handler = handler
        self.deliver_policy = deliver_policy
        self.fresh = fresh
        self.batch = batch
        self.backoff = tuple(backoff)
        """The redelivery schedule in seconds (JetStream ``BackOff``); empty: nak with a delay."""
        self.max_deliver = max_deliver or (max_deliver_for(self.backoff) if self.backoff else MAX_DELIVER)
        if self.backoff and self.max_deliver <= len(self.backoff):  # JetStream refuses it; say so at start
            raise ValueError(f"max_deliver {self.max_deliver} must exceed the {len(self.backoff)} backoff steps")
        self.max_ack_pending = max_ack_pending
        self.connected = connected
        self.on_dead_letter = on_dead_letter
        self._log = log if log is not None else structlog.get_logger("bus.consumer").bind(consumer=durable)
        self._events = events
        """A prefix for this consumer's log event names (``spec_`` → ``spec_fetch_failed``)."""
        self._what = what
        """What a message is, for a dead letter's reason ("malformed RouterSpec: ...")."""
        self.bound = asyncio.Event()
        self.caught_up = asyncio.Event()
        self._sub: Any = None

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            name=self.durable if self.fresh else None,
            durable_name=self.durable,
            filter_subject=self.subject,
            deliver_policy=self.deliver_policy,
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=self.max_deliver,
            ack_wait=self.backoff[0] if self.backoff else ACK_WAIT,  # the server sets it to the first step
            backoff=list(self.backoff) or None,
            max_ack_pending=self.max_ack_pending,
        )

    def _outdated(self, have: ConsumerConfig) -> bool:
        """Does the server's consumer redeliver otherwise than this one would (schedule, deliveries)?"""
        want = self.config()

        def ms(values: Sequence[float] | None) -> list[int]:
            return [round(v * 1000) for v in values or ()]

        return (
            ms(have.backoff) != ms(want.backoff)
            or have.max_deliver != want.max_deliver
            or ms([have.ack_wait or 0]) != ms([want.ack_wait or 0])
        )

    # -- binding --------------------------------------------------------------------------------

    async def bind(self) -> None:
        """Resume (or create) the durable consumer, or with ``fresh`` create it anew."""
        if not self.fresh:
            self._sub = await self.js.pull_subscribe(
                self.subject, durable=self.durable, stream=self.stream, config=self.config()
            )
            info = await self.js.consumer_info(self.stream, self.durable)
            if self._outdated(info.config):  # made by an older release or with another schedule
                want = self.config()  # only what may change; the rest (e.g. the deliver policy) stays
                update = dataclasses.replace(
                    info.config, backoff=want.backoff, max_deliver=want.max_deliver, ack_wait=want.ack_wait
                )
                await self.js.add_consumer(self.stream, update)  # create-or-update, by the same name
                self._log.info(
                    f"{self._events}consumer_updated",
                    durable=self.durable,
                    backoff=self.backoff,
                    max_deliver=self.max_deliver,
                )
            self.bound.set()
            return
        try:
            await self.js.delete_consumer(self.stream, self.durable)
        except NotFoundError:
            pass
        info = await self.js.add_consumer(self.stream, self.config())
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self.bound.set()
        self._log.info(f"{self._events}consumer_bound", durable=self.durable, pending=info.num_pending)
        if not info.num_pending:
            self.caught_up.set()

    async def _rebind_if_lost(self) -> None:
        """The consumer vanished (the server lost it): make it again. For a fresh consumer every
        subject's last message comes once more, which level-triggered handlers take in stride."""
        try:
            await self.js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            self._log.warning(f"{self._events}consumer_lost", durable=self.durable)
            await self.bind()
        except Exception:  # still away; the fetch loop tries again
            pass

    async def drained(self) -> bool:
        """Has every message published until now been delivered and acknowledged? Asked of the
        server; False when it cannot be asked."""
        try:
            info = await self.js.consumer_info(self.stream, self.durable, timeout=2)
        except Exception:
            return False
        return not info.num_pending and not info.num_ack_pending

    # -- reading --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Bind (until NATS and JetStream answer) unless bound already, then fetch forever."""
        if self._sub is None:
            await retry(self.bind, log=self._log, event=f"{self._events}consumer_bind_failed", delay=1.0)
        while True:
            try:
                msgs = await next_batch(self._sub, self.batch, timeout=5)
            except (TimeoutError, NatsTimeout):
                if self.connected():  # nothing was there to read (not: NATS away)
                    self.caught_up.set()
                continue
            except Exception as exc:  # NATS away: the durable consumer keeps our place
                self._log.warning(f"{self._events}fetch_failed", error=describe(exc))
                await asyncio.sleep(1)
                await self._rebind_if_lost()
                continue
            for msg in msgs:
                with self._span(msg):
                    await self.handle(msg)
            last = msgs[-1].metadata if msgs else None
            if last is not None and last.num_pending == 0:
                self.caught_up.set()

    async def handle(self, msg: Any) -> None:
        """One message: handled and acked, nak'ed for later, or dead-lettered. Never raises for
        bad input."""
        try:
            event = self.decode(msg)
        except Rejected as exc:
            await self.dead_letter(msg, str(exc))
            return
        except (ValidationError, ValueError) as exc:
            await self.dead_letter(msg, f"malformed {self._what}: {first_error(exc)}")
            return
        try:
            await self._run_handler(msg, event)
        except DomainError as exc:
            await self.dead_letter(msg, f"refused: {exc.type}: {exc.message}")
            return
        except Exception as exc:
            delivered = msg.metadata.num_delivered if msg.metadata else 1
            if delivered >= self.max_deliver:
                await self.dead_letter(msg, f"gave up after {delivered} deliveries: {describe(exc)}")
                return
            if not isinstance(exc, TransientError):
                self._log.exception("event_handler_failed", subject=msg.subject)
            if self.backoff:  # the schedule decides when it comes back (see the module docstring)
                self._log.info(
                    "event_retry_scheduled",
                    subject=msg.subject,
                    delivered=delivered,
                    in_seconds=ack_deadline(self.backoff, delivered),
                    error=describe(exc),
                )
                return
            await msg.nak(delay=getattr(exc, "delay", 1.0))
            return
        await msg.ack()

    async def _run_handler(self, msg: Any, event: T) -> None:
        """The handler, with progress acks while it runs when the ack wait is a schedule's step."""
        if not self.backoff:
            await self.handler(event)
            return
        delivered = msg.metadata.num_delivered if msg.metadata else 1
        beat = asyncio.create_task(
            keep_alive(msg, every=ack_deadline(self.backoff, delivered) / 2, until=max(self.backoff))
        )
        try:
            await self.handler(event)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    def _span(self, msg: Any) -> AbstractContextManager[tracing.Span]:
        headers = msg.headers or {}
        return tracing.span(
            f"process {self.subject}",
            context=tracing.parent_or_root(headers),
            kind=tracing.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": self.durable,
                "messaging.message.id": headers.get("Nats-Msg-Id", ""),
            },
        )

    async def dead_letter(self, msg: Any, reason: str) -> None:
        tracing.current_span().set_status(tracing.StatusCode.ERROR, reason)
        if self.on_dead_letter is not None:
            self.on_dead_letter()
        await dead_letter(self.js, msg, consumer=self.durable, dlq=self.dlq, reason=reason, log=self._log)


async def keep_alive(msg: Any, *, every: float, until: float) -> None:
    """Tell JetStream ``msg`` is being worked on every ``every`` seconds, for ``until`` seconds at most."""
    spent = 0.0
    while spent < until:
        await asyncio.sleep(every)
        spent += every
        with contextlib.suppress(Exception):  # NATS away: the server redelivers later, as it would
            await msg.in_progress()
