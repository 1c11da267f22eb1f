"""The agent's side of the fence: renew the kernel lease while this agent may vouch for its routers.

The lease (``scopenet.datapath.fence``) lives in the host namespace and runs out on its own, so a
dead or hung agent needs to do nothing for its routers to go quiet. A live agent renews it every
heartbeat interval for ``ttl - interval`` seconds — ``ttl`` being the heartbeat bucket's entry
lifetime, after which topology moves the routers — so the old copies are quiet before the new ones
come up. It renews only while it is *current*:

- with ``agent_fence = "nats"``, it must have been heard (a heartbeat put) within the lease, and
  the renewal runs out ``lease`` after that heartbeat;
- after a lapse (the lease ran out: the agent was cut off, hung, or is a new process), it must first
  have read every RouterSpec published until now and applied them: topology may have moved
  routers away meanwhile, and their removals must be in the kernel before any old copy may forward
  again. Routers that stay this agent's resume when the lease is renewed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from scopenet.netlink import Kernel
from scopenet.netlink import fence as fence_io
from scopenet.runtime import log
from scopenet.runtime.supervise import every
from scopenet.services.l3_agent.heartbeat import Heartbeat
from scopenet.services.l3_agent.reconciler import Reconciler
from scopenet.services.l3_agent.specs import SpecConsumer

_log = log.get("scopenet.l3_agent.fence")


class FenceKeeper:
    def __init__(
        self,
        kernel: Kernel,
        reconciler: Reconciler,
        consumer: SpecConsumer,
        heartbeat: Heartbeat,
        synced: asyncio.Event,
        *,
        interval: float,
        mode: str = "nats",
    ) -> None:
        self.kernel = kernel
        self.reconciler = reconciler
        self.consumer = consumer
        self.heartbeat = heartbeat
        self.synced = synced
        self.interval = interval
        self.mode = mode
        self.last_renew: float | None = None
        """``time.monotonic()`` of the last renewal (None: never by this process)."""
        self.expires_at = 0.0
        """``time.monotonic()`` at which the kernel lease of the last renewal runs out."""
        self._was_current = True

    def lease(self) -> float | None:
        """Seconds each renewal is good for; None until the bucket's TTL is known."""
        ttl = self.heartbeat.ttl
        return max(ttl - self.interval, self.interval) if ttl else None

    def grant(self, now: float) -> float:
        """Seconds this agent may vouch for its routers from ``now`` (0: it may not). In ``nats``
        mode the grant ends ``lease`` after the last heartbeat topology heard, not after this
        renewal: topology's clock for moving the routers started then."""
        lease = self.lease()
        if lease is None or not self.synced.is_set():
            return 0.0
        if self.mode != "nats":
            return lease
        beat = self.heartbeat.last_beat
        return 0.0 if beat is None else max(lease - (now - beat), 0.0)

    async def tick(self) -> bool:
        """Renew if the agent may vouch for its routers; True when renewed."""
        now = time.monotonic()
        lapsed = self.last_renew is None or now > self.expires_at
        if lapsed and not await self.caught_up():
            return False
        grant = self.grant(now)
        if grant < 0.5:  # nothing worth writing; let it run out
            return False
        await fence_io.renew(self.kernel, self.reconciler.router_ports(), grant)
        if lapsed:
            _log.info("fence_lease_renewed", lease_seconds=round(grant, 1), after_lapse=self.last_renew is not None)
        self.last_renew = now
        self.expires_at = now + grant
        return True

    async def caught_up(self) -> bool:
        """After a lapse: has every RouterSpec published until *now* been read and applied? Topology
        may have moved routers away while this agent was not heard; their removals must be in the
        kernel before any old copy may forward again. (Asked of the server, so it holds for
        whatever was published while this agent was away.)"""
        if not (self.synced.is_set() and self.reconciler.idle):
            return False
        return await self.consumer.drained() and self.reconciler.idle

    async def run(self) -> None:
        await fence_io.setup(self.kernel)
        await every(self._pause, self._renew, log=_log, event="fence_renew_failed", first=True)

    async def _renew(self) -> None:
        """One renewal (a failure — the kernel refused — is logged by ``run``; the next interval
        tries again)."""
        renewed = await self.tick()
        if self._was_current and not renewed and self.last_renew is not None:
            _log.warning("fence_lease_not_renewed", mode=self.mode, reason=self._why())
        self._was_current = renewed or self.last_renew is None

    async def _pause(self) -> None:
        if self.synced.is_set():
            await asyncio.sleep(self.interval)
        else:  # renew as soon as the first sync is done, not up to an interval later
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.synced.wait(), self.interval)

    def _why(self) -> str:
        beat = self.heartbeat.last_beat
        if self.mode == "nats" and (beat is None or time.monotonic() - beat > (self.lease() or 0) - 0.5):
            return "not heard by NATS within the lease"
        return "catching up after a lapse"
