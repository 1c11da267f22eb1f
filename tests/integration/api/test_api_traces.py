"""One trace across every hop, recorded by the real OpenTelemetry SDK (in-memory exporter).

IPAM, topology and the API run in-process (``conftest.py``), and so does an L3 agent built from its
real parts (RouterSpec consumer, reconciler, heartbeat, status reporter) over a kernel that starts
empty and records what it is asked to apply; so one ``TracerProvider`` sees every service's spans.
Each request sends its own ``traceparent``, the way a traced client would, and the test follows its
trace id.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from nats.js.api import DeliverPolicy
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from scopenet.bus.client import BusClient
from scopenet.contracts.subjects import EVENTS_SUBJECTS
from scopenet.datapath import names
from scopenet.datapath.model import ObservedRouter, Plan, RouterState
from scopenet.runtime import log
from scopenet.services.l3_agent.heartbeat import Heartbeat
from scopenet.services.l3_agent.reconciler import Reconciler
from scopenet.services.l3_agent.specs import SpecConsumer
from scopenet.services.l3_agent.status import StatusReporter
from tests.helpers import eventually
from tests.integration.api.conftest import Http

SERVER = trace.SpanKind.SERVER


class Switch(Sampler):
    """Records only while a test of this module runs: the provider, once set, stays for the session."""

    on = False

    def should_sample(
        self, parent_context: Any, trace_id: int, name: str, kind: Any = None, attributes: Any = None, *_: Any
    ) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP, attributes)

    def get_description(self) -> str:
        return "Switch"


_EXPORTER = InMemorySpanExporter()
_SWITCH = Switch()


@pytest.fixture
def spans() -> Any:
    """The in-memory exporter, recording for the duration of the test."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(sampler=_SWITCH)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    _SWITCH.on = True
    yield _EXPORTER
    _SWITCH.on = False
    _EXPORTER.clear()


def traceparent() -> tuple[str, str]:
    """A new trace id and the ``traceparent`` of a sampled client span in it."""
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def of_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]


def named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert found, f"no span {name!r} among {sorted({s.name for s in spans})}"
    return found[0]


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """Names of the span's ancestors in this trace, nearest first."""
    by_id = {s.context.span_id: s for s in spans}
    out = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        out.append(span.name)
    return out


async def ok(reply: Any) -> Any:
    assert reply.status < 300, (reply.status, reply.body)
    return reply.body


async def test_a_subnet_create_is_one_trace_through_api_topology_and_ipam(
    http: Http, spans: Any, nats_client: Any
) -> None:
    net = (await ok(await http.post("/v2.0/networks", body={"network": {"name": "traced"}})))["network"]
    trace_id, parent = traceparent()
    events: list[Any] = []

    async def heard(msg: Any) -> None:
        events.append(msg)

    js = nats_client.jetstream()
    sub = await js.subscribe(EVENTS_SUBJECTS, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW, cb=heard)
    try:
        body = {"subnet": {"network_id": net["id"], "cidr": "10.77.0.0/24", "ip_version": 4}}
        subnet = (await ok(await http.post("/v2.0/subnets", body=body, headers={"traceparent": parent})))["subnet"]

        def created() -> Any:
            return next(
                (m for m in events if m.subject.endswith("subnet.created") and subnet["id"] in m.data.decode()), None
            )

        event = await eventually(created, what="topology's subnet.created event")
    finally:
        await sub.unsubscribe()

    got = await eventually(lambda: of_trace(spans, trace_id), passes=lambda s: len(s) >= 4, what="spans")
    api = named(got, "POST /v2.0/subnets")
    topology = named(got, "scopenet.v1.topology.subnet.create")
    ipam = [s for s in got if s.kind == SERVER and (s.attributes or {}).get("scopenet.service") == "ipam"]
    assert api.kind == SERVER and api.parent is not None and format(api.parent.span_id, "016x") == parent.split("-")[2]
    assert (api.attributes or {})["http.route"] == "/v2.0/subnets"
    assert (api.attributes or {})["http.response.status_code"] == 201
    assert (topology.attributes or {})["scopenet.service"] == "topology"
    assert "POST /v2.0/subnets" in ancestors(topology, got)
    assert ipam, f"no IPAM server span among {sorted({s.name for s in got})}"
    assert "scopenet.v1.topology.subnet.create" in ancestors(ipam[0], got), ancestors(ipam[0], got)

    # the event (an outbox row written in topology's handler) carries the trace on to its consumers
    _, event_trace, writer_id, _ = (event.headers or {})["traceparent"].split("-")
    assert event_trace == trace_id
    writer = next(s for s in got if format(s.context.span_id, "016x") == writer_id)
    assert "scopenet.v1.topology.subnet.create" in [writer.name, *ancestors(writer, got)]


class EmptyKernel:
    """A ``DatapathPort`` whose kernel has nothing yet: every reconcile plans the router in full,
    and ``apply`` only records the plan."""

    def __init__(self) -> None:
        self.applied: list[Plan] = []

    async def observe(self, router_id: str, desired: RouterState | None) -> ObservedRouter:
        return ObservedRouter(router_id, names.namespace(router_id), False)

    async def apply(self, plan: Plan) -> str | None:
        self.applied.append(plan)
        return None

    async def routers(self) -> list[str]:
        return []

    async def owner(self, router_id: str) -> str | None:
        return None


@pytest.fixture
async def agent(api_server: Any, nats_client: Any) -> AsyncIterator[Reconciler]:
    """An L3 agent of the real parts over ``EmptyKernel``, alive (heartbeating) for the test."""
    agent_id = f"traced-{uuid.uuid4().hex[:8]}"
    js = nats_client.jetstream()
    reporter = StatusReporter(BusClient(nats_client, timeout=10), agent_id=agent_id)
    reconciler = Reconciler(EmptyKernel(), owner=agent_id, on_status=reporter, freeze_gc=False)
    consumer = SpecConsumer(js, reconciler, agent_id=agent_id)
    beat = Heartbeat(js, agent_id=agent_id, host=socket.gethostname(), routers=lambda: 0, interval=0.5)
    tasks = [asyncio.create_task(work) for work in (reporter.run(), consumer.run(), beat.run())]
    await reconciler.start()
    try:
        yield reconciler
    finally:
        await reconciler.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_router_interface_change_is_traced_to_the_agents_apply(
    http: Http, agent: Reconciler, spans: Any
) -> None:
    router = (await ok(await http.post("/v2.0/routers", body={"router": {"name": "traced"}})))["router"]
    net = (await ok(await http.post("/v2.0/networks", body={"network": {"name": "traced-r"}})))["network"]
    body = {"subnet": {"network_id": net["id"], "cidr": "10.78.0.0/24", "ip_version": 4}}
    subnet = (await ok(await http.post("/v2.0/subnets", body=body)))["subnet"]
    await eventually(lambda: router["id"] in agent.routers, what="the router scheduled onto the test's agent")

    trace_id, parent = traceparent()
    with structlog.testing.capture_logs(processors=[log.add_trace_ids]) as logs:
        await ok(
            await http.put(
                f"/v2.0/routers/{router['id']}/add_router_interface",
                body={"subnet_id": subnet["id"]},
                headers={"traceparent": parent},
            )
        )

        def applied() -> ReadableSpan | None:
            return next((s for s in of_trace(spans, trace_id) if s.name == "router.apply"), None)

        apply = await eventually(applied, what="the agent's router.apply span in the request's trace")
    got = of_trace(spans, trace_id)
    chain = ancestors(apply, got)
    # the agent's apply ← its reconcile ← the consumed spec ← (outbox) ← topology's handler ← the HTTP request
    assert chain[0] == "router.reconcile", chain
    assert chain[1].startswith("process scopenet.v1.agent."), chain
    assert "scopenet.v1.topology.router.add_router_interface" in chain, chain
    assert chain[-1] == "PUT /v2.0/routers/{id}/add_router_interface", chain
    assert (apply.attributes or {})["scopenet.router_id"] == router["id"]
    assert (apply.attributes or {})["scopenet.router.actions"] > 0

    # a log line written inside the traced work carries the trace id (and the span it was written in)
    lines = [e for e in logs if e.get("event") == "router_apply" and e.get("router_id") == router["id"]]
    assert lines, "the agent logged no router_apply for the change"
    assert lines[-1]["trace_id"] == trace_id
    assert lines[-1]["span_id"] in {format(s.context.span_id, "016x") for s in got}
