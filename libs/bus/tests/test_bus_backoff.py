"""Redelivery schedules (pure), and what the consumer does with one, without NATS."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

from scopenet.bus import backoff
from scopenet.bus.consumer import DurableConsumer
from scopenet.contracts.errors import TransientError


def test_the_default_schedule_rides_out_ten_minutes() -> None:
    assert backoff.window(backoff.DEFAULT_SCHEDULE) >= 600
    assert backoff.max_deliver(backoff.DEFAULT_SCHEDULE) == len(backoff.DEFAULT_SCHEDULE) + 1
    assert backoff.DEFAULT_SCHEDULE[0] <= 2, "the first retry comes quickly (most failures are blips)"


def test_parse() -> None:
    assert backoff.parse_schedule(" 1, 2.5 ,60") == (1.0, 2.5, 60.0)
    assert backoff.format_schedule((1.0, 2.5, 60.0)) == "1,2.5,60"
    for bad, words in [
        ("", "comma-separated"),
        ("1,,2", "comma-separated"),
        ("1,x", "'x' is not"),
        ("0", "more than 0"),
    ]:
        with pytest.raises(ValueError, match=words):
            backoff.parse_schedule(bad)


def test_ack_deadline_follows_the_schedule_then_keeps_its_last_step() -> None:
    schedule = (1.0, 2.0, 5.0)
    assert [backoff.ack_deadline(schedule, n) for n in (1, 2, 3, 4, 9)] == [1.0, 2.0, 5.0, 5.0, 5.0]


class Event(BaseModel):
    n: int


@dataclass
class Msg:
    data: bytes
    delivered: int = 1
    subject: str = "scopenet.v1.evt.thing.created"
    headers: dict[str, str] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(num_delivered=self.delivered, sequence=SimpleNamespace(stream=1), stream="S")

    async def ack(self) -> None:
        self.done.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.done.append(f"nak {delay}")

    async def in_progress(self) -> None:
        self.done.append("wpi")


def consumer(handler: Any, schedule: tuple[float, ...]) -> DurableConsumer[Event]:
    return DurableConsumer(
        None,  # type: ignore[arg-type]  # handle() never reaches JetStream on these paths
        stream="S",
        durable="d",
        subject="scopenet.v1.evt.>",
        dlq="d",
        decode=lambda m: Event.model_validate_json(m.data),
        handler=handler,
        backoff=schedule,
    )


def test_a_schedule_sets_the_consumer_config() -> None:
    async def nothing(e: Event) -> None:
        pass

    config = consumer(nothing, (0.5, 2.0, 10.0)).config()
    assert (config.backoff, config.max_deliver, config.ack_wait) == ([0.5, 2.0, 10.0], 4, 0.5)
    with pytest.raises(ValueError, match="must exceed"):
        DurableConsumer(
            None,  # type: ignore[arg-type]
            stream="S",
            durable="d",
            subject="s",
            dlq="d",
            decode=lambda m: m,
            handler=nothing,
            backoff=(1, 2),
            max_deliver=2,
        )


async def test_with_a_schedule_a_failure_is_not_nakked_and_a_long_handler_keeps_its_message() -> None:
    async def handler(e: Event) -> None:
        if e.n == 1:
            raise TransientError("database away", delay=30)
        await asyncio.sleep(0.35)  # longer than the first step: progress acks keep the message

    c = consumer(handler, (0.1, 1.0))
    failed, slow = Msg(b'{"n": 1}'), Msg(b'{"n": 2}')
    await c.handle(failed)
    await c.handle(slow)
    assert failed.done == [], "no nak: the schedule brings it back (a nak's delay would override it)"
    assert slow.done[-1] == "ack" and slow.done.count("wpi") >= 3, slow.done
