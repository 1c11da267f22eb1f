"""Pure decisions of L3 scheduling and router status reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from scopenet.contracts import routerspec as rs

Status = tuple[str, str | None, int]
"""(status, status reason, the spec revision it was reported for)"""


def least_loaded(loads: Mapping[str, int]) -> str | None:
    """The agent with the fewest routers (ties: by id); None when there is none."""
    return min(loads, key=lambda a: (loads[a], a)) if loads else None


def assign(count: int, loads: Mapping[str, int]) -> list[str | None]:
    """Agents for ``count`` routers placed one after the other, each on the least-loaded live agent
    counting those placed before it (the choice ``least_loaded`` would make for each in turn);
    None for each when no agent is alive."""
    loads = dict(loads)
    chosen: list[str | None] = []
    for _ in range(count):
        agent = least_loaded(loads)
        if agent is not None:
            loads[agent] += 1
        chosen.append(agent)
    return chosen


def nothing_to_move(agents: Sequence[str | None], alive: Sequence[str]) -> bool:
    """No router to move: none without a live agent, or no agent alive and every such router
    already unscheduled (moving them would only bump their revision)."""
    return not agents or (not alive and all(a is None for a in agents))


@dataclass(frozen=True)
class StatusRow:
    agent_id: str | None
    status: Status


@dataclass(frozen=True)
class Reports:
    accepted: list[bool]
    """One per report, in order."""
    now: dict[UUID, Status]
    """Every router's status after the batch."""
    touched: list[UUID]
    """Routers whose row changes (status, reason or revision)."""
    moved: list[UUID]
    """Routers whose status or reason moved: one ``router.updated`` each."""


def decide_reports(rows: Mapping[UUID, StatusRow], reports: Sequence[rs.RouterStatusReport]) -> Reports:
    """Reports decided in arrival order, each against what the ones before it left: only the
    router's current agent is heard, and an older revision than the last heard is ignored.
    ``rows``: the active routers reported on (a deleted one refuses its reports)."""
    was = {rid: r.status for rid, r in rows.items()}
    now = dict(was)
    accepted: list[bool] = []
    for cmd in reports:
        row = rows.get(cmd.router_id)
        if row is None or row.agent_id != cmd.agent_id or cmd.revision < now[cmd.router_id][2]:
            accepted.append(False)
            continue
        now[cmd.router_id] = (cmd.status, cmd.reason if cmd.status == "ERROR" else None, cmd.revision)
        accepted.append(True)
    touched = [rid for rid in now if now[rid] != was[rid]]
    moved = [rid for rid in touched if now[rid][:2] != was[rid][:2]]
    return Reports(accepted, now, touched, moved)


def age(created: Any, *, now: datetime) -> float:
    """Seconds since a KV entry was stored (the server's timestamp; 0 when it has none)."""
    if isinstance(created, datetime):
        return (now - created.astimezone(UTC)).total_seconds()
    if isinstance(created, int | float) and created > 0:
        return now.timestamp() - (created / 1e9 if created > 1e12 else created)
    return 0.0
