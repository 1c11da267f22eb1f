"""The agent's RouterSpec consumer: a durable JetStream pull consumer on its own subjects.

The stream ``SCOPENET_ROUTERS`` keeps the last spec per router subject, so it *is* the desired
state. A new agent process has no memory of it, so every start (re)creates the durable consumer
with ``DeliverPolicy.LAST_PER_SUBJECT``: it first reads the current spec of each of its routers
(removals included), then follows new ones. Within one process the consumer is durable, so a NATS
restart or reconnect resumes where it was. The consumer counts as *caught up* once a message says
nothing more is pending (or none was pending at all); only then may the reconciler treat the
kernel's other routers as orphans.

Concurrency model: one task fetches batches (``fetch`` returns as soon as something is there) and
hands each spec to ``Reconciler.desired``, which only records it and queues the router id; the
message is acked right away, because retries are the reconciler's job (level-triggered: a newer
spec or the periodic resync repeats whatever failed). A message that is not a RouterSpec for this
agent goes to ``scopenet.v1.dlq.l3-agent`` with the reason and is termed; it never stops the agent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter
from pydantic import ValidationError

from scopenet.bus.deadletter import dead_letter, first_error
from scopenet.contracts.permissions import AGENT_DLQ
from scopenet.contracts.routerspec import ROUTERS_STREAM, RouterSpec, agent_durable, agent_filter
from scopenet.runtime import log
from scopenet.services.l3_agent.reconciler import Reconciler

_log = log.get("scopenet.l3_agent.specs")

DLQ_CONSUMER = AGENT_DLQ  # the permissions allow agents this dead-letter subject and no other
MAX_DELIVER = 8
SPECS = Counter("scopenet_l3_agent_specs_total", "RouterSpec messages read", ["result"])


class SpecConsumer:
    """Reads this agent's RouterSpecs into the reconciler (see the module docstring)."""

    def __init__(
        self,
        js: JetStreamContext,
        reconciler: Reconciler,
        *,
        agent_id: str,
        batch: int = 256,
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        self.js = js
        self.connected = connected
        self.reconciler = reconciler
        self.agent_id = agent_id
        self.batch = batch
        self.durable = agent_durable(agent_id)
        self.subject = agent_filter(agent_id)
        self._prefix = self.subject[:-1]  # "scopenet.v1.agent.<id>.router."
        self.bound = asyncio.Event()
        self.caught_up = asyncio.Event()
        self._sub: Any = None

    # -- binding --------------------------------------------------------------------------------

    async def bind(self, *, wait: float = 0.5) -> None:
        """Create the consumer afresh (see the module docstring); waits for the stream to exist."""
        while True:
            try:
                await self.js.stream_info(ROUTERS_STREAM)
                break
            except NotFoundError:
                _log.info("routers_stream_missing", stream=ROUTERS_STREAM, hint="topology creates it")
                await asyncio.sleep(wait)
        try:
            await self.js.delete_consumer(ROUTERS_STREAM, self.durable)
        except NotFoundError:
            pass
        # Named, so the create request's subject carries the filter: the server checks it against
        # the configuration, and the agent's NATS user may create a consumer on its own subjects only.
        config = ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            filter_subject=self.subject,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=MAX_DELIVER,
            ack_wait=30,
            max_ack_pending=10_000,
        )
        info = await self.js.add_consumer(ROUTERS_STREAM, config)
        self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=ROUTERS_STREAM)
        self.bound.set()
        _log.info("spec_consumer_bound", durable=self.durable, pending=info.num_pending)
        if not info.num_pending:
            self.caught_up.set()

    # -- reading --------------------------------------------------------------------------------

    async def run(self) -> None:
        while self._sub is None:
            try:
                await self.bind()
            except Exception as exc:  # NATS or JetStream not answering yet
                _log.warning("spec_consumer_bind_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1)
        while True:
            try:
                msgs = await self._sub.fetch(self.batch, timeout=5)
            except (TimeoutError, NatsTimeout):
                if self.connected():  # nothing was there to read (not: NATS away)
                    self.caught_up.set()
                continue
            except Exception as exc:  # NATS away: the durable consumer keeps our place
                _log.warning("spec_fetch_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1)
                await self._rebind_if_lost()
                continue
            for msg in msgs:
                await self.handle(msg)
            last = msgs[-1].metadata if msgs else None
            if last is not None and last.num_pending == 0:
                self.caught_up.set()

    async def drained(self) -> bool:
        """Has every spec published until now been delivered to this agent and acknowledged (i.e.
        handed to the reconciler)? Asked of the server; False when it cannot be asked."""
        try:
            info = await self.js.consumer_info(ROUTERS_STREAM, self.durable, timeout=2)
        except Exception:
            return False
        return not info.num_pending and not info.num_ack_pending

    async def _rebind_if_lost(self) -> None:
        """The consumer vanished (the server lost it): make it again. Reading every router's current
        spec once more is harmless, the reconciler is level-triggered."""
        try:
            await self.js.consumer_info(ROUTERS_STREAM, self.durable)
        except NotFoundError:
            _log.warning("spec_consumer_lost", durable=self.durable)
            await self.bind()
        except Exception:  # still away; the fetch loop tries again
            pass

    async def handle(self, msg: Any) -> None:
        """One message: a spec for the reconciler, or a dead letter. Never raises for bad input."""
        rid = msg.subject[len(self._prefix) :] if msg.subject.startswith(self._prefix) else None
        try:
            spec = RouterSpec.model_validate_json(msg.data)
        except (ValidationError, ValueError) as exc:
            await self.dead_letter(msg, f"malformed RouterSpec: {first_error(exc)}")
            return
        if spec.agent_id != self.agent_id or str(spec.router_id) != rid:
            await self.dead_letter(
                msg, f"RouterSpec for router {spec.router_id} on agent {spec.agent_id} arrived on {msg.subject}"
            )
            return
        fresh = self.reconciler.desired(spec)
        SPECS.labels("applied" if fresh else "stale").inc()
        await msg.ack()

    async def dead_letter(self, msg: Any, reason: str) -> None:
        SPECS.labels("dead_lettered").inc()
        await dead_letter(self.js, msg, consumer=self.durable, dlq=DLQ_CONSUMER, reason=reason)
