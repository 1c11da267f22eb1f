"""What a fleet of L3 agents is told and what it answers, as seen on NATS by the fleet benchmark.

Two plain subscriptions, nothing in the path: the RouterSpecs topology publishes
(``scopenet.v1.agent.<agent>.router.<id>``, which JetStream stores *and* delivers to ordinary
subscribers) say where each router is placed and what it should look like; the agents'
``router_status.report`` requests (topology's micro endpoint answers them; this subscription only
gets a copy) say what each agent applied. A router counts as applied once the agent it is placed on
reported ACTIVE for its newest spec revision or a later one: topology's own ``status`` does not
go back to PENDING when a new spec revision is published, so it alone cannot tell "the interface
just added is in the kernel" from "the router was ACTIVE before".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

SPECS = "scopenet.v1.agent.*.router.*"
REPORTS = "scopenet.v1.topology.router_status.report.*"  # each agent reports on its own subject


@dataclass(frozen=True)
class Placement:
    agent: str
    revision: int
    interfaces: int
    gateway: bool
    floating_ips: int
    at: float
    """``time.perf_counter()`` when the spec was seen."""


@dataclass(frozen=True)
class Applied:
    agent: str
    revision: int
    at: float


class FleetWatch:
    def __init__(self) -> None:
        self.placed: dict[str, Placement] = {}
        self.active: dict[tuple[str, str], Applied] = {}
        """(router, agent) → the newest revision that agent reported ACTIVE."""
        self.errors: list[str] = []
        self._subs: list[Any] = []

    async def start(self, nc: Any) -> None:
        self._subs = [await nc.subscribe(SPECS, cb=self._on_spec), await nc.subscribe(REPORTS, cb=self._on_report)]

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()

    async def _on_spec(self, msg: Any) -> None:
        now = time.perf_counter()
        spec = orjson.loads(msg.data)
        rid, revision = spec["router_id"], spec["revision"]
        known = self.placed.get(rid)
        if known is not None and known.revision >= revision:
            return
        if not spec.get("present", True):
            if known is not None and known.agent == spec["agent_id"]:
                del self.placed[rid]  # removed from its agent; a placement elsewhere comes with a higher revision
            return
        self.placed[rid] = Placement(
            agent=spec["agent_id"],
            revision=revision,
            interfaces=len(spec.get("interfaces") or []),
            gateway=spec.get("gateway") is not None,
            floating_ips=len(spec.get("floating_ips") or []),
            at=now,
        )

    async def _on_report(self, msg: Any) -> None:
        now = time.perf_counter()
        report = orjson.loads(msg.data)
        rid, agent, revision = report["router_id"], report["agent_id"], report["revision"]
        if report["status"] == "ERROR" and len(self.errors) < 20:
            self.errors.append(f"{agent} {rid}@{revision}: {report.get('reason')}")
        if report["status"] != "ACTIVE":
            return
        known = self.active.get((rid, agent))
        if known is None or revision > known.revision:
            self.active[(rid, agent)] = Applied(agent, revision, now)

    def applied_at(self, rid: str) -> float | None:
        """When the router's agent reported ACTIVE for its newest spec (None: not yet)."""
        place = self.placed.get(rid)
        done = self.active.get((rid, place.agent)) if place is not None else None
        if place is None or done is None or done.revision < place.revision:
            return None
        return done.at

    def per_agent(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for place in self.placed.values():
            counts[place.agent] = counts.get(place.agent, 0) + 1
        return dict(sorted(counts.items()))
