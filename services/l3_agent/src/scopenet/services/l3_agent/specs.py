"""The agent's RouterSpec consumer: a durable JetStream pull consumer on its own subjects.

The stream ``SCOPENET_ROUTERS`` keeps the last spec per router subject, so it *is* the desired
state. A new agent process has no memory of it, so every start (re)creates the durable consumer
with ``DeliverPolicy.LAST_PER_SUBJECT``: it first reads the current spec of each of its routers
(removals included), then follows new ones. Within one process the consumer is durable, so a NATS
restart or reconnect resumes where it was. The consumer counts as *caught up* once a message says
nothing more is pending (or none was pending at all); only then may the reconciler treat the
kernel's other routers as orphans.

The fetching, binding and dead-lettering are the bus's ``DurableConsumer``. Concurrency model: one
task fetches batches (``fetch`` returns as soon as something is there) and hands each spec to
``Reconciler.desired``, which only records it and queues the router id; the
message is acked right away, because retries are the reconciler's job (level-triggered: a newer
spec or the periodic resync repeats whatever failed). A message that is not a RouterSpec for this
agent goes to ``scopenet.v1.dlq.l3-agent`` with the reason and is termed; it never stops the agent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter

from scopenet.bus.consumer import DurableConsumer, Rejected
from scopenet.contracts.permissions import AGENT_DLQ
from scopenet.contracts.routerspec import ROUTERS_STREAM, RouterSpec, agent_durable, agent_filter
from scopenet.runtime import log
from scopenet.runtime.supervise import retry
from scopenet.services.l3_agent.reconciler import Reconciler

_log = log.get("scopenet.l3_agent.specs")

MAX_DELIVER = 8
SPECS = Counter("scopenet_l3_agent_specs_total", "RouterSpec messages read", ["result"])


class SpecConsumer(DurableConsumer[RouterSpec]):
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
        super().__init__(
            js,
            stream=ROUTERS_STREAM,
            durable=agent_durable(agent_id),
            subject=agent_filter(agent_id),
            dlq=AGENT_DLQ,  # the permissions allow agents this dead-letter subject and no other
            decode=self._decode,
            handler=self._desired,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            fresh=True,
            batch=batch,
            max_deliver=MAX_DELIVER,
            max_ack_pending=10_000,
            connected=connected,
            on_dead_letter=SPECS.labels("dead_lettered").inc,
            log=_log,
            events="spec_",
            what="RouterSpec",
        )
        self.reconciler = reconciler
        self.agent_id = agent_id
        self._prefix = self.subject[:-1]  # "scopenet.v1.agent.<id>.router."

    async def bind(self, *, wait: float = 0.5) -> None:
        """Create the consumer afresh (see the module docstring); waits for the stream to exist."""
        await retry(
            lambda: self.js.stream_info(ROUTERS_STREAM),
            log=_log,
            event="routers_stream_missing",
            delay=wait,
            retry_on=NotFoundError,
            level="info",
            stream=ROUTERS_STREAM,
            hint="topology creates it",
        )
        await super().bind()

    def _decode(self, msg: Any) -> RouterSpec:
        """A RouterSpec for this agent, on its router's subject; else the message is dead-lettered."""
        rid = msg.subject[len(self._prefix) :] if msg.subject.startswith(self._prefix) else None
        spec = RouterSpec.model_validate_json(msg.data)
        if spec.agent_id != self.agent_id or str(spec.router_id) != rid:
            raise Rejected(f"RouterSpec for router {spec.router_id} on agent {spec.agent_id} arrived on {msg.subject}")
        return spec

    async def _desired(self, spec: RouterSpec) -> None:
        """Hand the spec to the reconciler, which only records it and queues the router: retries are
        its job, so the message is acked right away."""
        fresh = self.reconciler.desired(spec)
        SPECS.labels("applied" if fresh else "stale").inc()
