"""``topology.mirror.wait``: answer once the IPAM mirror holds given pool revisions (read-your-writes).

Concurrency model: a wait is a loop of "does the mirror (Postgres) hold every pool at its revision?"
checks, each followed by a sleep that ends early when the mirror of this process applies an event
(``applied``: one ``asyncio.Event`` per generation, replaced on every wake, taken before each check
so a wake that lands during the check is not lost). With one topology replica that is the whole
story: the check after the event's commit succeeds, and the wait ends a Postgres round trip after
the mirror's commit. With several replicas the event may be applied by another one, which cannot
wake us: the sleeps back off from ``FIRST_POLL`` to ``MAX_POLL``, so such a wait ends at most
``MAX_POLL`` after the commit. The answer comes at ``timeout`` at the latest, caught up or not;
the write the caller waits for has happened either way, only the reads may still lag.
"""

from __future__ import annotations

import asyncio
import time
from uuid import UUID

import asyncpg
import structlog
from prometheus_client import Histogram

from scopenet.contracts import consistency as c
from scopenet.store.db import db_errors

log = structlog.get_logger("topology.mirror_wait")

FIRST_POLL = 0.002
MAX_POLL = 0.05

WAITED = Histogram(
    "scopenet_topology_mirror_wait_seconds",
    "How long a read-your-writes wait took until the mirror held the pool revisions (or gave up)",
    ["caught_up"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_CAUGHT_UP = """SELECT count(*) FROM unnest($1::uuid[], $2::bigint[]) AS w(id, revision)
                JOIN subnetpools p ON p.id = w.id AND p.revision_number >= w.revision"""


class MirrorWaits:
    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db
        self._applied = asyncio.Event()

    def applied(self) -> None:
        """The mirror committed a change: every waiter checks again."""
        self._applied.set()
        self._applied = asyncio.Event()

    async def wait(self, cmd: c.MirrorWait) -> c.MirrorWaitReply:
        wanted = {p.id: p.revision_number for p in cmd.subnetpools}
        start = time.monotonic()
        deadline = start + cmd.timeout
        poll = FIRST_POLL
        while True:
            wake = self._applied
            if await self._caught_up(wanted):
                return self._reply(True, start)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("mirror_wait_timed_out", subnetpools=[str(i) for i in wanted], timeout=cmd.timeout)
                return self._reply(False, start)
            try:
                await asyncio.wait_for(wake.wait(), timeout=min(poll, remaining))
            except TimeoutError:
                poll = min(poll * 2, MAX_POLL)

    async def _caught_up(self, wanted: dict[UUID, int]) -> bool:
        async with db_errors(), self.db.acquire() as conn:
            held = await conn.fetchval(_CAUGHT_UP, list(wanted), list(wanted.values()))
        return bool(held == len(wanted))

    @staticmethod
    def _reply(caught_up: bool, start: float) -> c.MirrorWaitReply:
        waited = time.monotonic() - start
        WAITED.labels(str(caught_up).lower()).observe(waited)
        return c.MirrorWaitReply(caught_up=caught_up, waited=round(waited, 6))
