"""The durable consumer's outcomes, without NATS: ack, nak with a delay, or a dead letter."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

from scopenet.bus import consumer as consumer_module
from scopenet.bus.consumer import DurableConsumer, Rejected
from scopenet.contracts.errors import Conflict, TransientError


class Event(BaseModel):
    n: int


@dataclass
class Msg:
    data: bytes
    subject: str = "scopenet.v1.evt.thing.created"
    delivered: int = 1
    done: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(num_delivered=self.delivered, sequence=SimpleNamespace(stream=1))

    async def ack(self) -> None:
        self.done.append(("ack", None))

    async def nak(self, delay: float) -> None:
        self.done.append(("nak", delay))


def decode(msg: Any) -> Event:
    if msg.subject.endswith("unknown"):
        raise Rejected(f"unknown event subject {msg.subject}")
    return Event.model_validate_json(msg.data)


@pytest.fixture
def letters(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, str]]:
    out: list[tuple[Any, str]] = []

    async def dead_letter(js: Any, msg: Any, *, consumer: str, dlq: str, reason: str, log: Any = None) -> None:
        out.append((msg, reason))
        msg.done.append(("term", None))

    monkeypatch.setattr(consumer_module, "dead_letter", dead_letter)
    return out


def make(handler: Any, **kw: Any) -> DurableConsumer[Event]:
    return DurableConsumer(
        None,  # type: ignore[arg-type]  # handle() never reaches JetStream but through dead_letter
        stream="S",
        durable="d",
        subject="scopenet.v1.evt.>",
        dlq="d",
        decode=decode,
        handler=handler,
        **kw,
    )


async def test_outcomes(letters: list[tuple[Any, str]]) -> None:
    seen: list[int] = []

    async def handler(e: Event) -> None:
        if e.n == 2:
            raise Conflict("no")
        if e.n == 3:
            raise TransientError("later", delay=2.5)
        if e.n == 4:
            raise RuntimeError("bug")
        seen.append(e.n)

    dead = 0

    def counted() -> None:
        nonlocal dead
        dead += 1

    c = make(handler, on_dead_letter=counted)
    ok, refused, transient, bug, last = (Msg(f'{{"n": {n}}}'.encode()) for n in (1, 2, 3, 4, 4))
    last.delivered = 8
    malformed, unknown = Msg(b"{"), Msg(b'{"n": 1}', subject="x.unknown")
    for m in (ok, refused, transient, bug, last, malformed, unknown):
        await c.handle(m)
    assert seen == [1]
    assert ok.done == [("ack", None)]
    assert transient.done == [("nak", 2.5)] and bug.done == [("nak", 1.0)]
    reasons = [r for _, r in letters]
    assert reasons[0].startswith("refused: ")
    assert reasons[1] == "gave up after 8 deliveries: bug"
    assert reasons[2].startswith("malformed event: ")
    assert reasons[3] == "unknown event subject x.unknown"
    assert dead == 4
