"""Scheduling, liveness and status reports without NATS or a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts import routerspec as rs
from scopenet.contracts.base import CallContext
from scopenet.services.topology.agents import rules
from scopenet.services.topology.agents.liveness import Liveness

SERVICE = CallContext(project_id="service", roles=["service"])
R1, R2 = uuid.UUID(int=1), uuid.UUID(int=2)

# ---------------------------------------------------------------- scheduling


def test_least_loaded_breaks_ties_by_id() -> None:
    assert rules.least_loaded({}) is None
    assert rules.least_loaded({"b": 1, "a": 1, "c": 0}) == "c"
    assert rules.least_loaded({"b": 1, "a": 1}) == "a"


def test_assign_without_agents_leaves_routers_unscheduled() -> None:
    assert rules.assign(3, {}) == [None, None, None]


loads = st.dictionaries(st.sampled_from(["a1", "a2", "a3", "a4", "a5"]), st.integers(0, 20), min_size=1)


@given(loads, st.integers(0, 60))
def test_assign_places_each_router_on_the_least_loaded(start: dict[str, int], count: int) -> None:
    chosen = rules.assign(count, start)
    assert len(chosen) == count
    now = dict(start)
    for agent in chosen:
        assert agent is not None
        assert (now[agent], agent) == min((n, a) for a, n in now.items())
        now[agent] += 1
    assert start == dict(start)  # not mutated
    # Filling up: the spread never grows beyond what it was, and shrinks to at most one.
    spread = max(now.values()) - min(now.values())
    assert spread <= max(1, max(start.values()) - min(start.values()))


@given(loads, st.integers(1, 60))
def test_assign_is_what_pick_would_do_one_by_one(start: dict[str, int], count: int) -> None:
    now, expected = dict(start), []
    for _ in range(count):
        agent = rules.least_loaded(now)
        assert agent is not None
        expected.append(agent)
        now[agent] += 1
    assert rules.assign(count, start) == expected


def test_nothing_to_move() -> None:
    assert rules.nothing_to_move([], ["a"])
    assert rules.nothing_to_move([None, None], [])
    assert not rules.nothing_to_move([None, "dead"], [])
    assert not rules.nothing_to_move([None], ["a"])


# ---------------------------------------------------------------- status reports


def report(
    router: uuid.UUID, agent: str, revision: int, status: str = "ACTIVE", reason: str | None = None
) -> rs.RouterStatusReport:
    return rs.RouterStatusReport(
        context=SERVICE, router_id=router, agent_id=agent, revision=revision, status=status, reason=reason
    )


def test_reports_only_from_the_current_agent_and_not_older() -> None:
    rows = {
        R1: rules.StatusRow("a", ("PENDING", None, 3)),
        R2: rules.StatusRow("b", ("ACTIVE", None, 5)),
    }
    got = rules.decide_reports(
        rows,
        [
            report(R1, "b", 4),  # not its agent
            report(R1, "a", 2),  # older than what was heard
            report(R1, "a", 4, "ERROR", "boom"),
            report(R1, "a", 5),
            report(R2, "b", 6),  # same status, newer revision: written, no event
            report(uuid.UUID(int=9), "a", 1),  # not an active router
        ],
    )
    assert got.accepted == [False, False, True, True, True, False]
    assert got.now == {R1: ("ACTIVE", None, 5), R2: ("ACTIVE", None, 6)}
    assert got.touched == [R1, R2]
    assert got.moved == [R1]


def test_reason_kept_only_for_errors() -> None:
    rows = {R1: rules.StatusRow("a", ("PENDING", None, 0))}
    assert rules.decide_reports(rows, [report(R1, "a", 1, "DOWN", "admin down")]).now[R1] == ("DOWN", None, 1)
    assert rules.decide_reports(rows, [report(R1, "a", 1, "ERROR", "boom")]).now[R1] == ("ERROR", "boom", 1)


def test_a_status_that_moves_and_comes_back_is_no_event() -> None:
    rows = {R1: rules.StatusRow("a", ("ACTIVE", None, 1))}
    got = rules.decide_reports(rows, [report(R1, "a", 2, "ERROR", "x"), report(R1, "a", 3)])
    assert got.touched == [R1] and got.moved == []


# ---------------------------------------------------------------- liveness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def beat(agent: str) -> rs.AgentHeartbeat:
    return rs.AgentHeartbeat(agent_id=agent, host="h", routers=0, started_at="2026-01-01T00:00:00Z")


def test_agent_alive_within_the_ttl() -> None:
    clock = Clock()
    live = Liveness(10.0, clock=clock)
    assert live.heard(beat("a"))
    assert not live.heard(beat("a"), age=1.0)  # older than what was heard: a replay
    assert live.alive() == ["a"]
    clock.now += 10.5
    assert live.alive() == []
    assert live.heard(beat("a"))  # back
    assert not live.heard(beat("b"), age=11.0)  # already expired when heard
    assert live.alive() == ["a"]


def test_next_expiry_is_at_most_a_second() -> None:
    clock = Clock()
    live = Liveness(10.0, clock=clock)
    assert live.next_expiry() == 1.0
    live.heard(beat("a"), age=9.5)
    assert abs(live.next_expiry() - 0.51) < 1e-9


def test_grace_forgives_time_cut_off() -> None:
    clock = Clock()
    live = Liveness(10.0, clock=clock)
    live.heard(beat("a"))
    clock.now += 8
    live.grace(8)
    clock.now += 8
    assert live.alive() == ["a"]
    clock.now += 3
    assert live.alive() == []


def test_age_of_a_kv_entry() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert rules.age(now - timedelta(seconds=3), now=now) == 3.0
    assert rules.age(now.timestamp() - 2, now=now) == 2.0
    assert abs(rules.age((now.timestamp() - 2) * 1e9, now=now) - 2.0) < 1e-6
    assert rules.age(None, now=now) == 0.0
