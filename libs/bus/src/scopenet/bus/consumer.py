"""A durable JetStream pull consumer that never crashes on input and never drops it silently.

Concurrency model: one task per consumer fetches up to ``batch`` messages at a time (``fetch``
returns as soon as something is there; it does not wait for the batch to fill) and handles them one
after another. Outcomes of one message:

- it cannot be decoded (malformed, not meant for this consumer: ``decode`` raises ``Rejected``,
  or pydantic refuses it) → dead letter: parked on ``scopenet.v1.dlq.<dlq>`` with the reason, then
  ``term`` (``deadletter.py``);
- the handler succeeds → ``ack``;
- the handler raises a ``DomainError`` (permanent) → dead letter;
- the handler raises a ``TransientError`` or anything else → ``nak`` with a delay (the error's
  ``delay``, else 1 s), retried up to ``max_deliver`` deliveries; the last one is dead-lettered.

Handlers are idempotent on the event id, since JetStream delivers at least once. While NATS is away
the fetch fails; the durable consumer keeps our place, and the loop tries again a second later (and
creates the consumer again if the server lost it). A fetch that times out with NATS connected means
nothing is pending: the consumer is *caught up* (also said by a batch whose last message has no
more pending behind it).

Binding: by default an existing durable consumer is resumed (created on first use); with
``fresh=True`` it is deleted and created anew on every bind, e.g. so that a new process reads the
last message per subject again (``DeliverPolicy.LAST_PER_SUBJECT``). A fresh consumer is created by
name, so the create request's subject carries the filter and a NATS user allowed only its own
subjects may create it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from scopenet.bus.deadletter import dead_letter, first_error
from scopenet.contracts.errors import DomainError, TransientError
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
        max_deliver: int = MAX_DELIVER,
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
        self.max_deliver = max_deliver
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
            ack_wait=ACK_WAIT,
            max_ack_pending=self.max_ack_pending,
        )

    # -- binding --------------------------------------------------------------------------------

    async def bind(self) -> None:
        """Resume (or create) the durable consumer, or with ``fresh`` create it anew."""
        if not self.fresh:
            self._sub = await self.js.pull_subscribe(
                self.subject, durable=self.durable, stream=self.stream, config=self.config()
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
                msgs = await self._sub.fetch(self.batch, timeout=5)
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
            await self.handler(event)
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
            await msg.nak(delay=getattr(exc, "delay", 1.0))
            return
        await msg.ack()

    async def dead_letter(self, msg: Any, reason: str) -> None:
        if self.on_dead_letter is not None:
            self.on_dead_letter()
        await dead_letter(self.js, msg, consumer=self.durable, dlq=self.dlq, reason=reason)
