"""IPAM and topology running in-process against the session's Postgres and NATS, and short forms
for the objects the topology tests build. Every call goes over NATS like any other client's."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from scopenet.bus.client import BusClient, decode_error
from scopenet.bus.errors import ERROR_CODE_HEADER
from scopenet.contracts.base import CallContext
from scopenet.contracts.subjects import TOPOLOGY_ENDPOINTS, Endpoint
from scopenet.infra.select import Endpoints
from scopenet.services.topology.app import TopologyRunning, topology_service
from scopenet.services.topology.settings import TopologySettings
from scopenet.store.service import Running
from tests.helpers import eventually
from tests.integration.conftest import ADMIN, Ipam

FAST = TopologySettings(topology_reconcile_interval=1.0, topology_stale_after=3.0, topology_agent_ttl=3.0)


def topo_endpoint(subject_tail: str) -> Endpoint:
    for ep in TOPOLOGY_ENDPOINTS:
        if ep.subject.endswith("." + subject_tail):
            return ep
    raise KeyError(subject_tail)


class Topo:
    """Calls topology commands the way any NATS client would."""

    def __init__(self, bus: BusClient) -> None:
        self.bus = bus

    async def __call__(self, subject_tail: str, ctx: CallContext, **body: Any) -> Any:
        ep = topo_endpoint(subject_tail)
        request = ep.request.model_validate({"context": ctx.model_dump(), **body})
        return await self.bus.call(ep, request)

    async def unchecked(self, subject_tail: str, ctx: CallContext | None, **body: Any) -> Any:
        """The request goes out as given, no client-side validation."""
        ep = topo_endpoint(subject_tail)
        payload = {"context": ctx.model_dump(), **body} if ctx is not None else body
        subject = f"{ep.subject}.{body[ep.sender]}" if ep.sender else ep.subject  # its sender's own subject
        data, headers = await self.bus.call_raw(subject, json.dumps(payload).encode())
        if ERROR_CODE_HEADER in headers:
            raise decode_error(data, headers)
        return ep.reply.model_validate_json(data)


@pytest.fixture(scope="session")
async def topology_running(ipam_running: Running, infra: Endpoints) -> AsyncIterator[Running]:
    settings = FAST.model_copy(
        update={"database_url": infra.database_url, "nats_url": infra.nats_url, "health_port": 0}
    )
    async with topology_service(settings, database_url=infra.database_url, nats_url=infra.nats_url) as svc:
        yield svc


@pytest.fixture(scope="session")
async def topo(topology_running: TopologyRunning, nats_client: Any) -> Topo:
    return Topo(BusClient(nats_client, timeout=10))


def project(*roles: str) -> CallContext:
    return CallContext(project_id=uuid.uuid4().hex, roles=list(roles or ("member",)))


def uniq(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Build:
    """Short forms: every object a test needs, made through the public commands."""

    def __init__(self, topo: Topo, ipam: Ipam) -> None:
        self.topo = topo
        self.ipam = ipam

    async def scope(self, version: int = 4, *, ctx: CallContext = ADMIN, shared: bool = True) -> Any:
        reply = await self.ipam(
            "address_scope.create", ctx, address_scope={"name": uniq("scope"), "ip_version": version, "shared": shared}
        )
        return reply.address_scope

    async def pool(self, prefixes: list[str], *, ctx: CallContext = ADMIN, scope: Any = None, **body: Any) -> Any:
        body.setdefault("shared", True)
        if scope is not None:
            body["address_scope_id"] = str(scope.id)
        body = {"name": uniq("pool"), "prefixes": prefixes, **body}
        reply = await self.ipam("subnetpool.create", ctx, subnetpool=body)
        return reply.subnetpool

    async def network(self, ctx: CallContext, **body: Any) -> Any:
        body.setdefault("name", uniq("net"))
        return (await self.topo("network.create", ctx, network=body)).network

    async def subnet(self, ctx: CallContext, network: Any, *, pool: Any = None, **body: Any) -> Any:
        if pool is not None:
            body["subnetpool_id"] = str(pool.id)
            body.setdefault("ip_version", pool.ip_version)
        if "ip_version" not in body:
            body["ip_version"] = 6 if ":" in body.get("cidr", "") else 4
        body.setdefault("name", uniq("subnet"))
        return (await self.topo("subnet.create", ctx, subnet={"network_id": str(network.id), **body})).subnet

    async def port(self, ctx: CallContext, network: Any, **body: Any) -> Any:
        return (await self.topo("port.create", ctx, port={"network_id": str(network.id), **body})).port

    async def router(self, ctx: CallContext, **body: Any) -> Any:
        body.setdefault("name", uniq("router"))
        return (await self.topo("router.create", ctx, router=body)).router

    async def attach(self, ctx: CallContext, router: Any, subnet: Any) -> Any:
        return await self.topo("router.add_router_interface", ctx, id=str(router.id), subnet_id=str(subnet.id))

    async def external(self, *, v4: str = "203.0.113.0/24", v6: str | None = None, pools: bool = False) -> Any:
        """An admin external network with an unscoped IPv4 (and optionally IPv6) subnet."""
        net = await self.network(ADMIN, **{"router:external": True})
        await self.subnet(ADMIN, net, cidr=v4, enable_dhcp=False)
        if v6:
            await self.subnet(ADMIN, net, cidr=v6, ip_version=6, enable_dhcp=False)
        return net


@pytest.fixture
def mk(topo: Topo, ipam: Ipam) -> Build:
    return Build(topo, ipam)


class SpecWatch:
    """The RouterSpecs topology publishes (``SCOPENET_ROUTERS``), from the moment the watch opens."""

    def __init__(self, js: Any) -> None:
        self.js = js
        self.specs: list[tuple[str, dict[str, Any], float]] = []
        self._arrived = asyncio.Event()
        self._sub: Any = None

    async def __aenter__(self) -> SpecWatch:
        self._sub = await self.js.subscribe(
            "scopenet.v1.agent.*.router.*", ordered_consumer=True, deliver_policy=DeliverPolicy.NEW, cb=self._on
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._sub.unsubscribe()

    async def _on(self, msg: Any) -> None:
        self.specs.append((msg.subject, json.loads(msg.data), asyncio.get_running_loop().time()))
        self._arrived.set()

    async def wait_for(self, check: Any, timeout: float = 10, *, since: int = 0) -> dict[str, Any]:
        """The newest spec (received after the first ``since`` ones) that passes ``check``."""
        async with asyncio.timeout(timeout):
            while True:
                for _, spec, _ in reversed(self.specs[since:]):
                    if check(spec):
                        return spec
                self._arrived.clear()
                await self._arrived.wait()


@pytest.fixture
async def spec_watch(nats_client: Any) -> AsyncIterator[SpecWatch]:
    async with SpecWatch(nats_client.jetstream()) as w:
        yield w


async def last_spec(js: Any, agent_id: str, router_id: Any) -> dict[str, Any] | None:
    """The spec the stream holds for a router on an agent's subject (what an agent starting now reads)."""
    sub = await js.pull_subscribe(
        f"scopenet.v1.agent.{agent_id}.router.{router_id}",
        durable=None,
        stream="SCOPENET_ROUTERS",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT, inactive_threshold=10),
    )
    try:
        msgs = await sub.fetch(1, timeout=2)
    except Exception:
        return None
    finally:
        await sub.unsubscribe()
    return json.loads(msgs[0].data) if msgs else None


AGENT = "test-agent-1"


class Heartbeats:
    """Plays L3 agents: keeps their heartbeats in the KV bucket while the fixture lives."""

    def __init__(self, js: Any) -> None:
        self.js = js
        self.beating: dict[str, asyncio.Task[None]] = {}

    async def start(self, agent_id: str) -> None:
        from scopenet.contracts.routerspec import AgentHeartbeat
        from scopenet.services.topology.agents.heartbeats import agents_bucket

        kv = await agents_bucket(self.js, FAST.agent_ttl)
        beat = AgentHeartbeat(agent_id=agent_id, host="testhost", routers=0, started_at="2026-01-01T00:00:00Z")

        async def loop() -> None:
            while True:
                await kv.put(agent_id, beat.model_dump_json().encode())
                await asyncio.sleep(0.5)

        await kv.put(agent_id, beat.model_dump_json().encode())
        self.beating[agent_id] = asyncio.create_task(loop())

    def stop(self, agent_id: str) -> None:
        self.beating.pop(agent_id).cancel()


@pytest.fixture(scope="session")
async def agents(topology_running: TopologyRunning, nats_client: Any) -> AsyncIterator[Heartbeats]:
    """One agent alive for the whole session (``AGENT``), so routers get scheduled and published."""
    beats = Heartbeats(nats_client.jetstream())
    await beats.start(AGENT)
    agents_ = topology_running.deps.agents

    async def up() -> bool:
        return AGENT in agents_.alive()

    await eventually(up, timeout=10)
    yield beats
    for task in beats.beating.values():
        task.cancel()
