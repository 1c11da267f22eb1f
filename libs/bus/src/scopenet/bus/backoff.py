"""Redelivery schedules: how long JetStream waits before it delivers an unacknowledged message again.

A schedule is the consumer's ``backoff`` (JetStream ``BackOff``): the server waits ``schedule[n-1]``
seconds for the ack of the n-th delivery (the last step repeats), then delivers again, and a
message goes to the dead letters after ``len(schedule) + 1`` deliveries. The first step is also
the ack wait of the first delivery (the server sets ``ack_wait`` to it); a handler that runs longer
keeps its message with progress acks (``scopenet.bus.consumer``).

So the schedule's sum is how long a dependency (Postgres, IPAM) may be away before anything is
dead-lettered. The default rides out ten minutes: 1, 2, 5, 10, 30 and 60 seconds, then 120 six
times (828 s in all). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_SCHEDULE: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 120, 120, 120, 120, 120, 120)
MAX_STEPS = 100
"""More steps than this is a typo, not a schedule (JetStream keeps the list in every consumer's config)."""


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"1,2,5"`` → ``(1.0, 2.0, 5.0)``: comma-separated seconds, each > 0; ValueError naming the
    problem otherwise (settings fail at start with it)."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"{text!r}: comma-separated seconds, e.g. 1,2,5,10")
    steps = []
    for part in parts:
        try:
            step = float(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a number of seconds") from None
        if not 0 < step <= 24 * 3600:
            raise ValueError(f"{part}: each step must be more than 0 and at most a day (86400 s)")
        steps.append(step)
    if len(steps) > MAX_STEPS:
        raise ValueError(f"{len(steps)} steps: at most {MAX_STEPS}")
    return tuple(steps)


def format_schedule(schedule: Sequence[float]) -> str:
    return ",".join(f"{s:g}" for s in schedule)


def max_deliver(schedule: Sequence[float]) -> int:
    """Deliveries before a message is given up: one more than the waits between them."""
    return len(schedule) + 1


def window(schedule: Sequence[float]) -> float:
    """Seconds from the first delivery to the last, when every delivery fails at once: how long
    an outage may last before a message is dead-lettered."""
    return float(sum(schedule))


def ack_deadline(schedule: Sequence[float], delivery: int) -> float:
    """Seconds the server waits for the ack of the ``delivery``-th delivery (1-based)."""
    return schedule[min(max(delivery, 1), len(schedule)) - 1]
