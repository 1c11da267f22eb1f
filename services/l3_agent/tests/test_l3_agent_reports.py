"""What the agent tells the rest of the system, and when it vouches for its routers: no NATS, no root.

- Heartbeat: the ``AgentHeartbeat`` it puts under its id (router count, a start time that does not
  move), the bucket made when topology has not made it yet, the bucket's TTL learned, and a failed
  put that leaves ``last_beat`` alone (the fence reads it).
- Status reports: only the newest status per router is sent, REMOVED never, a reason only with
  ERROR, a report topology already took is not repeated within ``refresh``, a 503 is retried (a newer
  status wins), a refused report is dropped.
- Fence: the lease is ``ttl - interval``; in ``nats`` mode it runs from the last heartbeat topology
  heard; after a lapse nothing is renewed before every published spec has been read and applied.
- Spec intake: a RouterSpec for another agent, or on another router's subject, is refused.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError
from pydantic import BaseModel, ValidationError

from scopenet.bus.client import BusClient
from scopenet.bus.consumer import Rejected
from scopenet.contracts.errors import BadRequest, TransientError
from scopenet.contracts.routerspec import AGENTS_BUCKET, RouterStatusReport
from scopenet.datapath.example import ROUTER1, router1
from scopenet.netlink import Kernel
from scopenet.netlink import fence as fence_io
from scopenet.services.l3_agent.fence import FenceKeeper
from scopenet.services.l3_agent.heartbeat import BUCKET_TTL, Heartbeat
from scopenet.services.l3_agent.reconciler import Reconciler, RouterStatus
from scopenet.services.l3_agent.specs import SpecConsumer
from scopenet.services.l3_agent.status import REPORT_ENDPOINT, StatusReporter

# ---------------------------------------------------------------- heartbeat


@dataclass
class FakeKv:
    ttl: float
    puts: list[tuple[str, bytes]] = field(default_factory=list)
    fail: bool = False

    async def status(self) -> Any:
        return SimpleNamespace(ttl=self.ttl)

    async def put(self, key: str, value: bytes) -> int:
        if self.fail:
            raise TimeoutError("nats: timeout")
        self.puts.append((key, value))
        return len(self.puts)


@dataclass
class FakeJs:
    kv: FakeKv | None = None
    created: list[Any] = field(default_factory=list)

    async def key_value(self, bucket: str) -> FakeKv:
        if self.kv is None:
            raise BucketNotFoundError()
        return self.kv

    async def create_key_value(self, config: Any) -> FakeKv:
        self.created.append(config)
        self.kv = FakeKv(ttl=config.ttl)
        return self.kv


def heartbeat(js: FakeJs, routers: int = 3) -> Heartbeat:
    return Heartbeat(cast(JetStreamContext, js), agent_id="agent-1", host="host-a", routers=lambda: routers, interval=2)


async def test_heartbeat_payload_and_bucket() -> None:
    js = FakeJs()
    beat = heartbeat(js)
    await beat.put()
    await beat.put()
    assert [(c.bucket, c.ttl, c.history) for c in js.created] == [(AGENTS_BUCKET, BUCKET_TTL, 1)]
    assert beat.ttl == BUCKET_TTL
    assert js.kv is not None
    (key1, first), (key2, second) = js.kv.puts
    assert key1 == key2 == "agent-1"
    doc = json.loads(first)
    assert doc == {**json.loads(second)} and doc["routers"] == 3 and doc["host"] == "host-a"
    assert doc["type"] == "scopenet.v1.agent_heartbeat" and doc["started_at"] == beat.started_at


async def test_heartbeat_uses_topologys_bucket_and_ttl() -> None:
    js = FakeJs(kv=FakeKv(ttl=30.0))
    beat = heartbeat(js, routers=0)
    await beat.put()
    assert js.created == [] and beat.ttl == 30.0 and beat.last_beat is not None


async def test_a_failed_beat_leaves_the_last_one_alone() -> None:
    js = FakeJs(kv=FakeKv(ttl=10.0))
    beat = heartbeat(js)
    await beat.put()
    heard = beat.last_beat
    js.kv.fail = True  # type: ignore[union-attr]
    with pytest.raises(TimeoutError):
        await beat.put()
    assert beat.last_beat == heard
    js.kv.fail = False  # type: ignore[union-attr]
    await beat.put()
    assert beat.last_beat is not None and heard is not None and beat.last_beat > heard


# ---------------------------------------------------------------- status reports


@dataclass
class FakeBus:
    """``BusClient.call`` for the status endpoint: ``answers`` are consumed first, then accepted."""

    answers: list[BaseException | bool] = field(default_factory=list)
    sent: list[RouterStatusReport] = field(default_factory=list)
    called: asyncio.Event = field(default_factory=asyncio.Event)

    async def call(self, endpoint: Any, request: BaseModel) -> Any:
        assert endpoint is REPORT_ENDPOINT and isinstance(request, RouterStatusReport)
        self.sent.append(request)
        self.called.set()
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, BaseException):
            raise answer
        return SimpleNamespace(accepted=answer)


@pytest.fixture
async def reporting() -> AsyncIterator[tuple[StatusReporter, FakeBus]]:
    bus = FakeBus()
    reporter = StatusReporter(cast(BusClient, bus), agent_id="agent-1", retry_delays=(0.01,))
    task = asyncio.create_task(reporter.run())
    yield reporter, bus
    task.cancel()


R1, R2 = str(uuid.uuid4()), str(uuid.uuid4())


async def test_only_the_newest_status_of_a_router_is_sent(reporting: tuple[StatusReporter, FakeBus]) -> None:
    reporter, bus = reporting
    reporter.submit(RouterStatus(R1, 1, "ERROR", "nft: syntax error"))
    reporter.submit(RouterStatus(R1, 2, "ACTIVE", "stale reason"))
    reporter.submit(RouterStatus(R2, 5, "REMOVED"))
    reporter.submit(RouterStatus(R2, None, "ERROR", "no spec"))
    assert await reporter.drained(2)
    [report] = bus.sent
    assert (str(report.router_id), report.revision, report.status, report.reason) == (R1, 2, "ACTIVE", None)
    assert report.agent_id == "agent-1" and report.context.is_admin
    assert report.context.project_id == "l3-agent-agent-1"


async def test_errors_carry_their_reason(reporting: tuple[StatusReporter, FakeBus]) -> None:
    reporter, bus = reporting
    reporter.submit(RouterStatus(R1, 1, "ERROR", "RTNETLINK answers: File exists"))
    assert await reporter.drained(2)
    assert bus.sent[0].reason == "RTNETLINK answers: File exists"


async def test_what_topology_took_is_not_repeated(reporting: tuple[StatusReporter, FakeBus]) -> None:
    reporter, bus = reporting
    for _ in range(3):  # the periodic resync finds the router as it was
        reporter.submit(RouterStatus(R1, 1, "ACTIVE"))
        assert await reporter.drained(2)
    reporter.submit(RouterStatus(R1, 1, "ERROR", "boom"))
    assert await reporter.drained(2)
    reporter.submit(RouterStatus(R1, 1, "ACTIVE"))
    assert await reporter.drained(2)
    assert [r.status for r in bus.sent] == ["ACTIVE", "ERROR", "ACTIVE"]
    reporter.refresh = 0  # after ``refresh`` seconds the same status goes again
    reporter.submit(RouterStatus(R1, 1, "ACTIVE"))
    assert await reporter.drained(2)
    assert len(bus.sent) == 4


async def test_unavailable_topology_is_retried_and_a_newer_status_wins(
    reporting: tuple[StatusReporter, FakeBus],
) -> None:
    reporter, bus = reporting
    bus.answers = [TransientError("no service answers"), TransientError("no service answers")]
    reporter.submit(RouterStatus(R1, 1, "ACTIVE"))
    await asyncio.wait_for(bus.called.wait(), 2)
    reporter.submit(RouterStatus(R1, 2, "DOWN"))  # while the first waits to be retried
    assert await reporter.drained(2)
    assert [(r.revision, r.status) for r in bus.sent] == [(1, "ACTIVE"), (2, "DOWN"), (2, "DOWN")]


async def test_a_refused_report_is_dropped(reporting: tuple[StatusReporter, FakeBus]) -> None:
    reporter, bus = reporting
    bus.answers = [BadRequest("agent_id does not match the subject")]
    reporter.submit(RouterStatus(R1, 1, "ACTIVE"))
    assert await reporter.drained(2)
    await asyncio.sleep(0.03)
    assert len(bus.sent) == 1


# ---------------------------------------------------------------- fence


@dataclass
class Renewals:
    calls: list[tuple[set[str], float]] = field(default_factory=list)

    async def __call__(self, kernel: Any, ports: Iterable[str], lease: float) -> None:
        self.calls.append((set(ports), lease))


@dataclass
class FakeConsumer:
    drained_: bool = False
    asked: int = 0

    async def drained(self) -> bool:
        self.asked += 1
        return self.drained_


def keeper(*, ttl: float | None = 10.0, beat: float | None = 0.0, mode: str = "nats", synced: bool = True) -> Any:
    event = asyncio.Event()
    if synced:
        event.set()
    heard = SimpleNamespace(ttl=ttl, last_beat=None if beat is None else time.monotonic() - beat)
    routers = SimpleNamespace(idle=True, router_ports=lambda: {"tap1", "tap2"})
    consumer = FakeConsumer()
    k = FenceKeeper(
        cast(Kernel, None),
        cast(Reconciler, routers),
        cast(SpecConsumer, consumer),
        cast(Heartbeat, heard),
        event,
        interval=2.0,
        mode=mode,
    )
    return k, consumer


@pytest.fixture
def renewals(monkeypatch: pytest.MonkeyPatch) -> Renewals:
    fake = Renewals()
    monkeypatch.setattr(fence_io, "renew", fake)
    return fake


@pytest.mark.parametrize(
    ("ttl", "beat", "mode", "synced", "grant"),
    [
        (10.0, 0.0, "process", True, 8.0),  # ttl - interval
        (3.0, 0.0, "process", True, 2.0),  # never shorter than the interval
        (None, 0.0, "process", True, 0.0),  # the bucket's TTL not known yet
        (10.0, 0.0, "process", False, 0.0),  # the first sync is not done
        (10.0, 3.0, "nats", True, 5.0),  # counted from the heartbeat topology heard
        (10.0, 9.0, "nats", True, 0.0),
        (10.0, None, "nats", True, 0.0),  # never heard
    ],
)
def test_grant(ttl: float | None, beat: float | None, mode: str, synced: bool, grant: float) -> None:
    k, _ = keeper(ttl=ttl, beat=beat, mode=mode, synced=synced)
    assert k.grant(time.monotonic()) == pytest.approx(grant, abs=0.1)


async def test_after_a_lapse_nothing_is_renewed_before_the_specs_are_applied(renewals: Renewals) -> None:
    k, consumer = keeper()
    assert not await k.tick() and renewals.calls == []
    consumer.drained_ = True
    assert await k.tick()
    [(ports, lease)] = renewals.calls
    assert ports == {"tap1", "tap2"} and lease == pytest.approx(8.0, abs=0.1)
    asked = consumer.asked
    consumer.drained_ = False  # while current, renewing does not wait for the stream
    assert await k.tick() and consumer.asked == asked
    k.expires_at = time.monotonic() - 1  # the lease ran out (the agent hung)
    assert not await k.tick() and len(renewals.calls) == 2


async def test_a_stale_heartbeat_lets_the_lease_run_out(renewals: Renewals) -> None:
    k, consumer = keeper(beat=7.8)
    consumer.drained_ = True
    assert not await k.tick() and renewals.calls == []  # less than half a second left: not worth it


# ---------------------------------------------------------------- spec intake


def _msg(subject: str, data: bytes) -> Any:
    return SimpleNamespace(subject=subject, data=data)


def test_specs_for_another_agent_or_router_are_refused() -> None:
    consumer = SpecConsumer(cast(JetStreamContext, None), cast(Reconciler, None), agent_id="agent-1")
    mine = f"scopenet.v1.agent.agent-1.router.{ROUTER1}"
    spec = router1(agent_id="agent-1")
    assert consumer._decode(_msg(mine, spec.model_dump_json().encode())) == spec
    with pytest.raises(Rejected, match="on agent agent-2"):
        consumer._decode(_msg(mine, router1(agent_id="agent-2").model_dump_json().encode()))
    with pytest.raises(Rejected):
        consumer._decode(_msg(f"scopenet.v1.agent.agent-1.router.{uuid.uuid4()}", spec.model_dump_json().encode()))
    with pytest.raises(ValidationError):
        consumer._decode(_msg(mine, b'{"router_id": "nope"}'))
