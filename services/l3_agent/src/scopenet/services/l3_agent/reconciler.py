"""The L3 agent's reconciler: level-triggered, one queue per router, plan then apply.

Model (kopf's ``queueing.py``; docs/architecture.md#the-l3-agent):

- Inputs are cheap and synchronous: ``desired(spec)`` records the newest spec of a router and
  ``forget(router_id)`` records that the router is no longer this agent's. Both only *enqueue the
  router id*; they never touch the kernel, so a NATS callback can call them directly.
- Each router has at most one worker task. Events that arrive while it works set a dirty flag, and
  the worker runs once more afterwards: any number of events in between coalesce into one
  reconcile, and one router's work is never concurrent with itself. Different routers run in
  parallel, bounded by ``concurrency``.
- A reconcile always starts from the whole desired state and the whole observed state:
  ``observe → plan (pure) → apply``. Nothing depends on which event triggered it.
- A failed reconcile reports ERROR and is retried with a growing delay; a periodic resync re-runs
  every router (repairing whatever was changed by hand) and, once the caller says the desired state
  is complete (``mark_caught_up``), removes router namespaces this agent owns but no longer wants.
- Traces: ``desired`` keeps the context it is called in (the span that consumed the spec, itself a
  child of the change that produced it). The reconcile that takes those specs runs in a
  ``router.reconcile`` span in the newest one's trace, linked to the others it coalesced, with the
  kernel work in a ``router.apply`` span; a failed pass keeps them for its retry. A resync pass
  carries no trace: it starts a ``router.apply`` root span only when it has something to repair.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from prometheus_client import Counter, Histogram

from scopenet.contracts.routerspec import RouterSpec
from scopenet.datapath import DatapathPort, desired_state, names, plan
from scopenet.datapath.model import RouterState, Underlay
from scopenet.netlink.errors import KernelError
from scopenet.runtime import log, tracing
from scopenet.runtime.supervise import every

_log = log.get("scopenet.l3_agent")

APPLY_SECONDS = Histogram(
    "scopenet_l3_agent_apply_seconds",
    "From a router's first pending event to its kernel state applied",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RECONCILES = Counter("scopenet_l3_agent_reconciles_total", "Router reconciles", ["result"])

Status = Literal["ACTIVE", "ERROR", "DOWN", "REMOVED"]

#: Trace contexts kept per router between its specs and its next reconcile (newest last): links,
#: not a history; a router flooded with specs keeps the newest few.
MAX_TRACES = 8


@dataclass(frozen=True)
class RouterStatus:
    """The outcome of one reconcile (the wiring turns it into a ``RouterStatusReport``)."""

    router_id: str
    revision: int | None
    status: Status
    """ACTIVE: applied; DOWN: admin-down (nothing in the kernel); REMOVED: torn down; ERROR: failed."""
    reason: str | None = None
    changes: int = 0
    """Number of actions applied (0: the kernel already matched)."""
    seconds: float = 0.0


StatusCallback = Callable[[RouterStatus], Awaitable[None]]


class Reconciler:
    """Keeps the kernel state of this agent's routers equal to their RouterSpecs.

    ``desired(spec)`` / ``forget(router_id)`` are the inputs; ``start()``/``stop()`` (or ``async
    with``) run the periodic resync; ``status(router_id)`` and ``on_status`` tell the outcome;
    ``wait_idle()`` waits for the queues to drain; ``latencies`` keeps spec-to-applied times.
    """

    def __init__(
        self,
        datapath: DatapathPort,
        *,
        owner: str,
        resync_interval: float = 30.0,
        concurrency: int = 8,
        on_status: StatusCallback | None = None,
        retry_delays: Sequence[float] = (0.5, 1, 2, 5, 10, 30),
        freeze_gc: bool = True,
        underlay: Underlay | None = None,
    ) -> None:
        """``underlay``: this host's VXLAN settings (every bridge also gets its network's VXLAN
        device); None on a single host."""
        self.datapath = datapath
        self.underlay = underlay
        self.freeze_gc = freeze_gc
        self.owner = owner
        self.resync_interval = resync_interval
        self.on_status = on_status
        self.retry_delays = tuple(retry_delays)
        self.latencies: deque[float] = deque(maxlen=100_000)
        """Seconds from first pending event to applied, for every reconcile that changed something."""
        self._specs: dict[str, RouterSpec] = {}
        self._tombstones: dict[str, int] = {}
        self._removing: set[str] = set()
        self._fingerprints: dict[str, tuple[str, str]] = {}
        self._status: dict[str, RouterStatus] = {}
        self._failures: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._since: dict[str, float] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._sem = asyncio.Semaphore(concurrency)
        self._idle = asyncio.Event()
        self._idle.set()
        self._caught_up = False
        self._resync_task: asyncio.Task[None] | None = None
        self._traces: dict[str, list[tracing.Context]] = {}

    # -- inputs -------------------------------------------------------------------------------

    def desired(self, spec: RouterSpec) -> bool:
        """Record the router's desired spec (call it on the event loop's thread). False when the spec
        is older than one already seen, or not newer than the router's removal (a redelivery)."""
        rid = str(spec.router_id)
        known = self._specs.get(rid)
        if (known and spec.revision < known.revision) or spec.revision <= self._tombstones.get(rid, -1):
            return False
        self._tombstones.pop(rid, None)
        if spec.present:
            self._specs[rid] = spec
            self._removing.discard(rid)
        else:
            self._forget(rid, spec.revision)
        self._keep_trace(rid, [tracing.capture()])
        self._enqueue(rid)
        return True

    def _keep_trace(self, rid: str, contexts: list[tracing.Context]) -> None:
        traced = [c for c in contexts if tracing.link_to(c) is not None]
        if traced:
            kept = self._traces.setdefault(rid, [])
            kept.extend(traced)
            del kept[:-MAX_TRACES]

    def forget(self, router_id: UUID | str) -> None:
        """The router is no longer this agent's: remove everything it has in the kernel."""
        rid = str(router_id)
        known = self._specs.get(rid)
        self._forget(rid, known.revision if known else -1)
        self._enqueue(rid)

    def _forget(self, rid: str, revision: int) -> None:
        self._specs.pop(rid, None)
        self._tombstones[rid] = max(revision, self._tombstones.get(rid, -1))
        self._removing.add(rid)

    def mark_caught_up(self) -> None:
        """The desired state is complete (e.g. the stream was read to its end): from now on a
        resync also removes router namespaces this agent owns that no spec asks for.

        Also freezes what is alive now (modules, specs, handles) out of the garbage collector's
        reach: with pyroute2 and pydantic loaded, a full collection otherwise pauses the loop for
        40 ms or more, which is most of the update latency budget.
        """
        self._caught_up = True
        if self.freeze_gc:
            gc.collect()
            gc.freeze()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._resync_task is None:
            self._resync_task = asyncio.get_running_loop().create_task(self._resync_loop())

    async def stop(self) -> None:
        tasks = [t for t in (self._resync_task, *self._workers.values()) if t is not None]
        self._resync_task = None
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._workers.clear()  # a task cancelled before it ran never reached its own cleanup
        self._idle.set()

    async def __aenter__(self) -> Reconciler:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _resync_loop(self) -> None:
        await every(
            lambda: asyncio.sleep(self.resync_interval), self.resync, log=_log, event="resync_failed", traceback=True
        )

    async def resync(self) -> None:
        """Re-run every known router; sweep this agent's orphans once caught up.

        One router at a time, each only once no other router has work queued (for at most a resync
        interval in all per pass, so that constant churn delays repairs but never stops them): a
        resync re-checks hundreds of routers that almost always match, and must not stand in the
        queue ahead of routers that just moved here (an agent failover hands one agent hundreds at
        once) nor take their CPU."""
        patience = time.monotonic() + self.resync_interval
        for rid in sorted(set(self._specs) | self._removing):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), max(0.0, patience - time.monotonic()))
            if rid not in self._specs and rid not in self._removing:
                continue  # forgotten and removed meanwhile
            self._enqueue(rid)
            worker = self._workers.get(rid)
            if worker is not None:
                await asyncio.wait([worker])
        await self.sweep()

    async def sweep(self) -> None:
        """Queue the removal of router namespaces this agent owns that no spec asks for (only once
        caught up: before that, a missing spec may simply not have been read yet)."""
        if not self._caught_up:
            return
        for rid in await self.datapath.routers():
            if rid in self._specs or rid in self._removing:
                continue
            if await self.datapath.owner(rid) == self.owner:
                _log.info("orphan_router_found", router_id=rid)
                self._removing.add(rid)
                self._enqueue(rid)

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Until no router has work queued or running (scheduled retries do not count)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    # -- what the agent knows -------------------------------------------------------------------

    def status(self, router_id: UUID | str) -> RouterStatus | None:
        return self._status.get(str(router_id))

    def spec(self, router_id: UUID | str) -> RouterSpec | None:
        """The spec this agent holds for the router (what its table is rendered from), if any."""
        return self._specs.get(str(router_id))

    @property
    def routers(self) -> list[str]:
        """Routers this agent currently wants in the kernel (present, whatever their state)."""
        return sorted(self._specs)

    @property
    def idle(self) -> bool:
        """No router has work queued or running."""
        return self._idle.is_set()

    def router_ports(self) -> set[str]:
        """Host-side names of the ports of every router this agent wants (what its fence guards)."""
        out = set()
        for spec in self._specs.values():
            for port in (spec.gateway, *spec.interfaces):
                if port is not None:
                    out.add(names.peer_ifname(port.port_id))
        return out

    # -- the queue ------------------------------------------------------------------------------

    def _enqueue(self, rid: str) -> None:
        self._since.setdefault(rid, time.monotonic())
        self._dirty.add(rid)
        retry = self._retries.pop(rid, None)
        if retry is not None:
            retry.cancel()
        if rid not in self._workers:
            self._idle.clear()
            self._workers[rid] = asyncio.get_running_loop().create_task(self._worker(rid), name=f"router-{rid}")

    async def _worker(self, rid: str) -> None:
        try:
            while rid in self._dirty:
                self._dirty.discard(rid)
                async with self._sem:
                    await self._reconcile(rid)
        finally:
            del self._workers[rid]
            if not self._workers:
                self._idle.set()

    async def _reconcile(self, rid: str) -> None:
        traces = self._traces.pop(rid, [])
        if not traces:
            await self._pass(rid)
            return
        links = [link for c in traces[:-1] if (link := tracing.link_to(c)) is not None]
        with tracing.span("router.reconcile", context=traces[-1], links=links, attributes={"scopenet.router_id": rid}):
            await self._pass(rid)
        outcome = self._status.get(rid)
        if outcome is not None and outcome.status == "ERROR":
            self._keep_trace(rid, traces)  # its retry goes on in the same traces

    async def _pass(self, rid: str) -> None:
        since = self._since.pop(rid, time.monotonic())
        spec = self._specs.get(rid)
        bound = _log.bind(router_id=rid, revision=spec.revision if spec else None)
        desired: RouterState | None = None
        changes = 0
        try:
            desired = desired_state(spec, owner=self.owner, underlay=self.underlay) if spec is not None else None
            if desired is not None:
                digest, fingerprint = self._fingerprints.get(rid, ("", ""))
                if digest == desired.nft.digest:
                    desired = dataclasses.replace(desired, nft_fingerprint=fingerprint)
            observed = await self.datapath.observe(rid, desired)
            steps = plan(desired, observed)
            changes = len(steps.actions)
            if steps:
                bound.info("router_apply", actions=steps.describe())
                with tracing.span(
                    "router.apply",
                    attributes={"scopenet.router_id": rid, "scopenet.router.actions": changes},
                ):
                    written = await self.datapath.apply(steps)
                if written is not None and desired is not None:
                    self._fingerprints[rid] = (desired.nft.digest, written)
        except Exception as exc:  # any failure: report, retry later; the next event retries at once
            RECONCILES.labels("error").inc()
            bound.warning("router_apply_failed", error=str(exc), exc_info=not _expected(exc))
            await self._report(RouterStatus(rid, spec.revision if spec else None, "ERROR", _reason(exc)))
            self._schedule_retry(rid)
            return
        elapsed = time.monotonic() - since
        self._failures.pop(rid, None)
        RECONCILES.labels("changed" if changes else "unchanged").inc()
        if changes:
            self.latencies.append(elapsed)
            APPLY_SECONDS.observe(elapsed)
        if spec is None:
            self._removing.discard(rid)
            self._fingerprints.pop(rid, None)
            await self._report(RouterStatus(rid, self._tombstones.get(rid), "REMOVED", None, changes, elapsed))
        else:
            state: Status = "ACTIVE" if desired is not None else "DOWN"
            await self._report(RouterStatus(rid, spec.revision, state, None, changes, elapsed))

    def _schedule_retry(self, rid: str) -> None:
        n = self._failures.get(rid, 0)
        self._failures[rid] = n + 1
        delay = self.retry_delays[min(n, len(self.retry_delays) - 1)]
        self._retries[rid] = asyncio.get_running_loop().call_later(delay, self._retry, rid)

    def _retry(self, rid: str) -> None:
        self._retries.pop(rid, None)
        if rid in self._specs or rid in self._removing:
            self._enqueue(rid)

    async def _report(self, status: RouterStatus) -> None:
        span = tracing.current_span()
        if span.is_recording():
            span.set_attributes(
                {"scopenet.router.revision": status.revision or -1, "scopenet.router.status": status.status}
            )
            if status.status == "ERROR":
                span.set_status(tracing.StatusCode.ERROR, status.reason)
        previous = self._status.get(status.router_id)
        if status.status == "REMOVED":
            self._status.pop(status.router_id, None)
        else:
            self._status[status.router_id] = status
        if self.on_status is None:
            return
        try:
            await self.on_status(status)
        except Exception:
            _log.exception("status_report_failed", router_id=status.router_id, previous=previous)


def _expected(exc: Exception) -> bool:
    """Kernel refusals are logged without a traceback; anything else is a bug worth one."""
    return isinstance(exc, KernelError)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:1024]
