"""Events: a JetStream ordered consumer yielding CloudEvents with their contract model decoded.

``EventStream`` reads one contract model's events (``SubnetEvent`` → ``scopenet.v1.evt.subnet.*``)
through an *ordered consumer*: ephemeral (nothing left on the server when the stream closes, no
durable name to manage), in stream order, flow-controlled, re-created by nats-py from the next
sequence if a message goes missing. It is a reader's tool — look, wait for something, tail; a
system that must process every event exactly once across restarts wants a durable consumer.

Each message becomes a ``Received``: its CloudEvents attributes (``ce-*`` headers, binary mode,
read by ``scopenet.contracts.cloudevents``) and its body validated against the contract model.
A message written before the services set those headers gets the same attributes derived from
its body, so a stream read from the start looks the same throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from scopenet.contracts import cloudevents as ce
from scopenet.contracts.base import Event
from scopenet.contracts.subjects import ALL_EVENTS, EventSpec

E = TypeVar("E", bound=Event)

Deliver = Literal["new", "all", "last"] | datetime
"""Where reading starts: events published from now on, every event the stream holds, the last
one per subject, or those published since a time."""


@dataclass(frozen=True)
class Received(Generic[E]):
    cloudevent: ce.CloudEvent
    """The CloudEvents attributes (``id``, ``source``, ``type``, ``time``, ``subject``: the
    resource's id, ``dataschema``) and the body as parsed JSON (``data``)."""
    event: E
    """The body as its contract model (``event.resource`` is the resource after the change)."""
    subject: str
    sequence: int
    """The stream sequence: a position to start from again."""


def specs_of(model: type[Event], actions: list[str] | None = None) -> list[EventSpec]:
    """The event types whose body is ``model`` (of ``actions`` only, when given)."""
    specs = [s for s in ALL_EVENTS if s.model is model and (actions is None or s.action in actions)]
    if not specs:
        what = f" with actions {actions}" if actions is not None else ""
        raise ValueError(f"no event of the contracts carries {model.__name__}{what}")
    return specs


def filter_subject(specs: list[EventSpec]) -> str:
    """One subject for the consumer: the exact one, or the resource's wildcard (then the stream
    filters the other actions out on the client side)."""
    if len(specs) == 1:
        return specs[0].subject
    resources = {s.resource for s in specs}
    if len(resources) != 1:
        raise ValueError(f"events of several resources: {sorted(resources)}")
    return specs[0].subject.rsplit(".", 1)[0] + ".*"


def decode(specs: list[EventSpec], model: type[E], subject: str, headers: dict[str, str], data: bytes) -> E | None:
    """The message's body as ``model``, or None when it is not one of ``specs``."""
    if not any(s.subject == subject for s in specs):
        return None
    return model.model_validate_json(data)


def cloudevent(spec: EventSpec, headers: dict[str, str], data: bytes, event: Event) -> ce.CloudEvent:
    """The message's CloudEvent; derived from the body when it carries no ``ce-*`` headers."""
    try:
        return ce.parse(headers, data)
    except ce.NotACloudEvent:
        if any(k.lower().startswith("ce-") for k in headers):
            raise  # it claims to be one and is not: say so rather than paper over it
    derived = ce.event_headers(spec, id=str(event.id), occurred_at=event.occurred_at, resource=event.resource)
    return ce.parse(derived, data)


class EventStream(Generic[E]):
    """``async with client.events(SubnetEvent) as events: async for received in events: ...``"""

    def __init__(
        self, js: JetStreamContext, model: type[E], *, actions: list[str] | None, deliver: Deliver, stream: str
    ) -> None:
        self.js = js
        self.model = model
        self.specs = specs_of(model, actions)
        self.subject = filter_subject(self.specs)
        self.deliver = deliver
        self.stream = stream
        self._sub: Any = None

    def _policy(self) -> tuple[DeliverPolicy, ConsumerConfig]:
        if isinstance(self.deliver, datetime):
            return DeliverPolicy.BY_START_TIME, ConsumerConfig(opt_start_time=self.deliver)
        policy = {"new": DeliverPolicy.NEW, "all": DeliverPolicy.ALL, "last": DeliverPolicy.LAST_PER_SUBJECT}
        return policy[self.deliver], ConsumerConfig()

    async def __aenter__(self) -> EventStream[E]:
        policy, config = self._policy()
        config.deliver_policy = policy
        # Subscribed before the caller's next command: an event that command causes is not missed.
        self._sub = await self.js.subscribe(self.subject, stream=self.stream, ordered_consumer=True, config=config)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()

    def __aiter__(self) -> EventStream[E]:
        return self

    async def __anext__(self) -> Received[E]:
        return await self.next()

    async def next(self, timeout: float | None = None) -> Received[E]:
        """The next event (``TimeoutError`` after ``timeout`` seconds without one)."""
        if self._sub is None:
            raise RuntimeError("use the stream inside `async with`")
        async with asyncio.timeout(timeout):
            while True:
                msg = await self._sub.next_msg(timeout=None)
                headers = dict(msg.headers or {})
                event = decode(self.specs, self.model, msg.subject, headers, msg.data)
                if event is None:
                    continue  # another action of the resource
                spec = next(s for s in self.specs if s.subject == msg.subject)
                return Received(
                    cloudevent=cloudevent(spec, headers, msg.data, event),
                    event=event,
                    subject=msg.subject,
                    sequence=msg.metadata.sequence.stream,
                )

    async def wait_for(self, match: Callable[[Received[E]], bool], *, timeout: float) -> Received[E]:
        """The first event ``match`` accepts (earlier ones are passed over); ``TimeoutError`` after
        ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                received = await self.next()
                if match(received):
                    return received
