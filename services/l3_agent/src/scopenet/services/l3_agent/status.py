"""Router statuses to topology, off the reconciler's path.

Concurrency model: the reconciler calls ``submit`` (through ``on_status``) after every reconcile;
it only records the newest status per router and wakes the sender, so a slow or absent topology
never holds a router's worker (nor the reconciler's concurrency slot). One sender task sends what
is pending, a bounded number at a time. A status superseded before it was sent is never sent;
a ``TransientError`` (503: topology restarting or busy, NATS away) puts the status back unless a
newer one arrived, and the sender waits with a growing delay; a ``DomainError`` (the report itself
was refused) is logged and dropped — sending it again would be refused again.

Only what topology shows is reported: ACTIVE, ERROR (with the reason) and DOWN. A router that was
torn down (REMOVED) is not this agent's any more, and topology does not listen to it about it.

A status topology has already taken (same revision, status and reason) is not sent again for
``refresh`` seconds: the periodic resync re-checks every router and almost always finds it as it
was, and hundreds of routers per agent would otherwise mean a stream of identical reports, each a
transaction in topology, competing with the ones that matter (an agent failover's).

Each report goes to the agent's own subject, ``router_status.report.<agent_id>`` (``BusClient.call``
sends a per-sender command there): its NATS user may publish to no other agent's, and topology
refuses a report whose ``agent_id`` is not the subject's, so no agent can report for another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import Counter

from scopenet.bus.client import BusClient
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.contracts.routerspec import RouterStatusReport
from scopenet.contracts.topology_endpoints import ROUTER_STATUS_REPORT
from scopenet.runtime import log
from scopenet.services.l3_agent.reconciler import RouterStatus

_log = log.get("scopenet.l3_agent.status")

REPORTS = Counter("scopenet_l3_agent_status_reports_total", "Router status reports sent to topology", ["result"])
REPORT_ENDPOINT = ROUTER_STATUS_REPORT


class StatusReporter:
    """Sends the newest status of each router to topology (see the module docstring)."""

    def __init__(
        self,
        bus: BusClient,
        *,
        agent_id: str,
        in_flight: int = 16,
        retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0),
        refresh: float = 300.0,
    ) -> None:
        self.bus = bus
        self.agent_id = agent_id
        self.in_flight = in_flight
        self.retry_delays = retry_delays
        self.context = CallContext(project_id=f"l3-agent-{agent_id}", roles=["admin"], request_id=agent_id)
        self.refresh = refresh
        self._pending: dict[str, RouterStatusReport] = {}
        self._taken: dict[str, tuple[tuple[int, str, str | None], float]] = {}
        """Per router: the last report topology took (accepted or not) and when (``time.monotonic()``)."""
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(self, status: RouterStatus) -> None:
        """The reconciler's ``on_status``: never waits for topology."""
        self.submit(status)

    def submit(self, status: RouterStatus) -> None:
        if status.status == "REMOVED" or status.revision is None:
            self._pending.pop(status.router_id, None)
            self._taken.pop(status.router_id, None)
            return
        reason = status.reason if status.status == "ERROR" else None
        taken = self._taken.get(status.router_id)
        if taken is not None and taken[0] == (status.revision, status.status, reason):
            if time.monotonic() - taken[1] < self.refresh:
                self._pending.pop(status.router_id, None)  # whatever was pending is superseded by it
                return
        self._pending[status.router_id] = RouterStatusReport(
            context=self.context,
            router_id=status.router_id,
            agent_id=self.agent_id,
            revision=status.revision,
            status=status.status,
            reason=reason,
        )
        self._idle.clear()
        self._wake.set()

    async def drained(self, timeout: float) -> bool:
        """Wait until nothing is pending (or ``timeout``); False if something is still unsent."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self._idle.is_set()

    async def run(self) -> None:
        failures = 0
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            batch = [self._pending.pop(rid) for rid in list(self._pending)[: self.in_flight]]
            sent = await asyncio.gather(*(self._send(r) for r in batch))
            retry = [r for r, ok in zip(batch, sent, strict=True) if not ok]
            for report in retry:
                self._pending.setdefault(str(report.router_id), report)  # a newer status wins
            if retry:
                delay = self.retry_delays[min(failures, len(self.retry_delays) - 1)]
                failures += 1
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _send(self, report: RouterStatusReport) -> bool:
        """True when done with (accepted, not accepted, or refused); False to retry later."""
        try:
            ack = await self.bus.call(REPORT_ENDPOINT, report)
        except TransientError as exc:
            REPORTS.labels("retry").inc()
            _log.info("status_report_retry", router_id=str(report.router_id), error=exc.message)
            return False
        except DomainError as exc:
            REPORTS.labels("refused").inc()
            _log.warning("status_report_refused", router_id=str(report.router_id), error=exc.message)
            return True
        except Exception as exc:  # NATS gone mid-call and the like: try again later
            REPORTS.labels("retry").inc()
            _log.warning("status_report_failed", router_id=str(report.router_id), error=str(exc) or type(exc).__name__)
            return False
        REPORTS.labels("accepted" if ack.accepted else "ignored").inc()
        rid = str(report.router_id)
        if rid not in self._pending:  # else a newer status is on its way and decides what topology has
            self._taken[rid] = ((report.revision, report.status, report.reason), time.monotonic())
        if not ack.accepted:
            _log.debug("status_report_ignored", router_id=str(report.router_id), revision=report.revision)
        return True
