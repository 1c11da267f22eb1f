"""Which L3 agents are alive: heard from within the heartbeat bucket's TTL.

Pure bookkeeping with an injected clock (``time.monotonic`` in the service, a fake in tests):
``heard`` records a heartbeat with its age by the server's clock, ``alive`` answers at any moment,
``grace`` forgives a period during which this replica could not hear anybody.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scopenet.contracts import routerspec as rs


@dataclass(frozen=True)
class Seen:
    beat: rs.AgentHeartbeat
    at: float
    """When it was put, on the monotonic clock."""
    when: datetime
    """The same moment on the wall clock (what ``agent.list`` shows)."""


class Liveness:
    def __init__(
        self,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._wall = wall
        self.seen: dict[str, Seen] = {}

    def alive(self) -> list[str]:
        now = self._clock()
        return sorted(a for a, s in self.seen.items() if now - s.at <= self.ttl)

    def next_expiry(self) -> float:
        """Seconds until the next live agent would turn dead (at most 1 s: routers may be waiting),
        so a death is acted on when it happens, not up to a tick later."""
        now = self._clock()
        due = [s.at + self.ttl - now for s in self.seen.values() if now - s.at <= self.ttl]
        return min([1.0, *(d + 0.01 for d in due)])

    def heard(self, beat: rs.AgentHeartbeat, *, age: float = 0.0) -> bool:
        """``beat`` was put ``age`` seconds ago (by the server's clock); True when it brought its
        agent back to life (or to life for the first time)."""
        age = max(age, 0.0)
        known = self.seen.get(beat.agent_id)
        at = self._clock() - age
        if known is not None and known.at >= at:
            return False  # a replay of something already heard (a restarted watcher)
        new = beat.agent_id not in self.alive()
        self.seen[beat.agent_id] = Seen(beat, at, self._wall() - timedelta(seconds=age))
        return new and beat.agent_id in self.alive()

    def grace(self, seconds: float) -> None:
        """This replica could not hear anyone for ``seconds``: do not count them against agents."""
        now = self._clock()
        for agent, s in list(self.seen.items()):
            self.seen[agent] = Seen(s.beat, min(s.at + seconds, now), s.when)
