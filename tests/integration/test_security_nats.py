"""NATS credentials and subject permissions, enforced by a real nats-server.

One stack for the module, started the way ``scopenet up`` starts it (``run_stack``): ipam, topology
and the API as processes, each logging in to the embedded nats-server as its own user and (ipam,
topology) to Postgres as its own role, in a database of the module's own. The L3 agents are
played in this process by the agent's real parts (``SpecConsumer``, ``Heartbeat``, the status
report) over connections that log in as ``l3-agent-<id>``; everything else the tests try is what a
foreign or compromised client would try, and the server must refuse it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError

from scopenet.bus.client import BusClient, decode_error
from scopenet.bus.natsauth import inbox_prefix, user_url
from scopenet.commands.stack import RunningStack, run_stack
from scopenet.contracts import permissions as perm
from scopenet.contracts.base import CallContext
from scopenet.contracts.bgp import BgpSpeakerSpec, speaker_subject
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.contracts.routerspec import AGENTS_BUCKET, ROUTERS_STREAM, RouterSpec, agent_durable, router_subject
from scopenet.contracts.subjects import ALL_ENDPOINTS, EVENTS_STREAM
from scopenet.contracts.topology import DLQ_STREAM
from scopenet.infra.embedded import nats_credentials, nats_server
from scopenet.infra.select import Endpoints
from scopenet.runtime.settings import Settings
from scopenet.services.l3_agent.bgp.speaker import SpeakerHost
from scopenet.services.l3_agent.heartbeat import Heartbeat
from scopenet.services.l3_agent.reconciler import RouterStatus
from scopenet.services.l3_agent.specs import SpecConsumer
from scopenet.services.l3_agent.status import StatusReporter
from scopenet.store.roles import drop_roles_sql, role_name
from tests import helpers
from tests.conftest import with_database

AGENTS = ("node-a", "node-b")
ADMIN_CTX = CallContext(project_id="0" * 32, roles=["admin"])


def endpoint(tail: str) -> Any:
    return next(e for e in ALL_ENDPOINTS if e.subject.endswith("." + tail))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, what: str = "") -> Any:
    """``tests.helpers.eventually``, where a check that raises (a refused or timed-out call, while
    credentials and services settle) means not yet."""
    return await helpers.eventually(check, timeout=timeout, every=0.2, what=what, tolerate=Exception)


@dataclass
class Secure:
    url: str
    """The server's address, without credentials."""
    passwords: dict[str, str]
    admin: Any
    db_url: str
    api: str
    stack: RunningStack

    def user(self, name: str) -> str:
        return user_url(self.url, name, self.passwords[name])


class Client:
    """A connection as one user that records the permission violations the server reports."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: Any = None

    async def connect(self, url: str) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc).lower())

        # Replies on the user's own inbox, as every scopenet process has them (runtime.connect_nats).
        self.nc = await nats.connect(url, inbox_prefix=inbox_prefix(url), error_cb=on_error, allow_reconnect=False)
        return self

    async def refused(self, verb: str, subject: str, *, timeout: float = 5.0) -> bool:
        """Did the server answer ``Permissions Violation for <verb> to "<subject>"``?"""
        needle = f'permissions violation for {verb} to "{subject}"'.lower()
        await eventually(lambda: asyncio.sleep(0, any(needle in e for e in self.errors)), timeout=timeout, what=needle)
        return True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.nc.close()


@pytest.fixture
async def client() -> AsyncIterator[Callable[[str], Awaitable[Client]]]:
    made: list[Client] = []

    async def make(url: str) -> Client:
        c = await Client().connect(url)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[str]:
    """A database of the module's own (its own roles too), dropped with its roles afterwards."""
    name = f"scopenet_sec_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield with_database(admin_url, name)
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(drop_roles_sql(name))
        finally:
            await conn.close()


@pytest.fixture(scope="module")
async def secure(infra: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secure]:
    tmp = Path(tmp_path_factory.mktemp("secure"))
    port = _free_port()
    async with scratch_database(infra.database_url) as db_url:
        with nats_server(tmp / "nats", users=[perm.agent_user(a) for a in AGENTS]) as admin_url:
            ep = Endpoints(db_url, admin_url, "embedded", tmp / "nats")
            settings = Settings(state_dir=tmp, database_url=db_url, nats_url=admin_url)
            env = {
                "SCOPENET_AUTH": "noauth",
                "SCOPENET_API_PORT": str(port),
                "SCOPENET_LOG_LEVEL": "warning",
                "SCOPENET_TOPOLOGY_RECONCILE_INTERVAL": "1",
            }
            with run_stack(settings, ep, services=["ipam", "topology", "api"], extra_env=env) as stack:
                admin = await nats.connect(admin_url)
                api = f"http://127.0.0.1:{port}"
                try:

                    async def api_up() -> bool:
                        async with aiohttp.ClientSession() as s, s.get(f"{api}/v2.0/routers") as r:
                            return r.status == 200

                    await eventually(api_up, timeout=90, what="the stack answers through the API")
                    parts = urlsplit(admin_url)
                    yield Secure(
                        url=f"nats://{parts.hostname}:{parts.port}",
                        passwords=nats_credentials(tmp / "nats").load(),
                        admin=admin,
                        db_url=db_url,
                        api=api,
                        stack=stack,
                    )
                finally:
                    await admin.close()
                    assert not stack.dead(), f"a service died: {stack.dead()}"


async def _address_scopes(db_url: str, name: str) -> int:
    conn = await asyncpg.connect(db_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM ipam.address_scopes WHERE name = $1", name))
    finally:
        await conn.close()


def _scope_create(name: str) -> bytes:
    body = {"context": ADMIN_CTX.model_dump(), "address_scope": {"name": name, "ip_version": 4}}
    return json.dumps(body).encode()


def _raw_publish(url: str, subject: str, payload: bytes, *, connect: dict[str, Any]) -> bytes:
    """Speak the NATS protocol by hand: CONNECT (with what ``connect`` holds), PUB, PING."""
    target = urlsplit(url)
    with socket.create_connection((target.hostname, target.port), timeout=5) as s:
        s.recv(4096)  # INFO
        frame = f"CONNECT {json.dumps({'verbose': False, 'pedantic': False, **connect})}\r\n"
        frame += f"PUB {subject} _INBOX.raw.1 {len(payload)}\r\n"
        s.sendall(frame.encode() + payload + b"\r\nPING\r\n")
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(4096):
                answer += chunk
                if b"PONG" in answer or b"-ERR" in answer:
                    break
        return answer


# ------------------------------------------------------------------------------ no credentials


async def test_a_client_without_credentials_cannot_connect_nor_command(secure: Secure) -> None:
    for url in (secure.url, user_url(secure.url, "api", "not-the-password"), user_url(secure.url, "mallory", "x")):
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3)

    # By hand, below any client library: the command is published right after CONNECT.
    foreign = f"foreign-{uuid.uuid4().hex[:8]}"
    answer = _raw_publish(secure.url, endpoint("ipam.address_scope.create").subject, _scope_create(foreign), connect={})
    assert b"-ERR 'Authorization Violation'" in answer
    # The same bytes from the API's user do create a scope: the difference is the credentials.
    allowed = f"allowed-{uuid.uuid4().hex[:8]}"
    answer = _raw_publish(
        secure.url,
        endpoint("ipam.address_scope.create").subject,
        _scope_create(allowed),
        connect={"user": "api", "pass": secure.passwords["api"]},
    )
    assert b"PONG" in answer and b"-ERR" not in answer
    await eventually(lambda: _address_scopes(secure.db_url, allowed), what="the API user's scope is created")
    assert await _address_scopes(secure.db_url, foreign) == 0, "a command without credentials changed something"


# ------------------------------------------------------------------------------ the API's user


async def test_the_api_sends_commands_but_no_event_stream_subject_or_agent_report(
    secure: Secure, client: Callable[[str], Awaitable[Client]]
) -> None:
    api = await client(secure.user("api"))
    scopes = await BusClient(api.nc, timeout=10).call(
        endpoint("ipam.address_scope.list"), endpoint("ipam.address_scope.list").request(context=ADMIN_CTX)
    )
    assert scopes is not None  # a command and its reply: what the API is for

    rid = str(uuid.uuid4())
    watch = await secure.admin.subscribe(">")  # the admin sees everything that gets through
    seen: list[str] = []

    async def collect() -> None:
        async for msg in watch.messages:
            seen.append(msg.subject)

    collector = asyncio.create_task(collect())
    try:
        for subject in ("scopenet.v1.evt.network.created", router_subject("node-a", rid), f"$KV.{AGENTS_BUCKET}.x"):
            await api.nc.publish(subject, b"{}")
            assert await api.refused("publish", subject)
        report = endpoint("topology.router_status.report").sender_subject("node-a")
        with pytest.raises(TransientError):  # the report never reaches topology: no reply
            await BusClient(api.nc, timeout=1).call_raw(report, b"{}")
        assert await api.refused("publish", report)
        with pytest.raises(Exception):  # noqa: B017 — no JetStream API at all (the request is dropped)
            await api.nc.jetstream(timeout=1).stream_info(EVENTS_STREAM)
        assert await api.refused("publish", f"$JS.API.STREAM.INFO.{EVENTS_STREAM}")
        await api.nc.subscribe("scopenet.v1.evt.>")
        assert await api.refused("subscription", "scopenet.v1.evt.>")
        await secure.admin.flush()
        await asyncio.sleep(0.5)
    finally:
        collector.cancel()
        await watch.unsubscribe()
    leaked = [s for s in seen if s in ("scopenet.v1.evt.network.created", router_subject("node-a", rid))]
    assert not leaked, f"the API's user got {leaked} through"
    with pytest.raises(NotFoundError):
        await secure.admin.jetstream().get_last_msg(ROUTERS_STREAM, router_subject("node-a", rid))


# ------------------------------------------------------------------------------ agents


class Desired:
    """The part of the reconciler the spec consumer talks to: it records what arrives."""

    def __init__(self) -> None:
        self.specs: list[RouterSpec] = []

    def desired(self, spec: RouterSpec) -> bool:
        self.specs.append(spec)
        return True


async def _publish_spec(secure: Secure, agent_id: str, rid: str, revision: int = 1) -> None:
    spec = RouterSpec(router_id=uuid.UUID(rid), revision=revision, agent_id=agent_id)
    await secure.admin.jetstream().publish(router_subject(agent_id, rid), spec.model_dump_json().encode())


async def test_an_agent_reads_its_own_specs_and_cannot_reach_another_agents(
    secure: Secure, client: Callable[[str], Awaitable[Client]]
) -> None:
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    await _publish_spec(secure, "node-a", mine)
    await _publish_spec(secure, "node-b", theirs)

    a = await client(secure.user(perm.agent_user("node-a")))
    js = a.nc.jetstream(timeout=3)
    got = Desired()
    consumer = SpecConsumer(js, got, agent_id="node-a")  # type: ignore[arg-type]  # the recording stand-in
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: asyncio.sleep(0, any(str(s.router_id) == mine for s in got.specs)), what="own spec")
        # a spec that is not a RouterSpec is dead-lettered (the agent may write its dead letters)
        await secure.admin.jetstream().publish(router_subject("node-a", str(uuid.uuid4())), b"not json")
        dlq = secure.admin.jetstream()
        await eventually(lambda: _has_msgs(dlq, DLQ_STREAM), what="the agent's dead letter")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert all(s.agent_id == "node-a" for s in got.specs)

    filt_b = "scopenet.v1.agent.node-b.router.*"
    await a.nc.subscribe(filt_b)
    assert await a.refused("subscription", filt_b)
    await a.nc.subscribe("_INBOX.>")
    assert await a.refused("subscription", "_INBOX.>")

    base = {"deliver_policy": DeliverPolicy.LAST_PER_SUBJECT, "ack_policy": AckPolicy.EXPLICIT}
    with pytest.raises(Exception):  # noqa: B017 — B's consumer: the create request never reaches JetStream
        await js.add_consumer(
            ROUTERS_STREAM,
            ConsumerConfig(name=agent_durable("node-b"), durable_name=agent_durable("node-b"), filter_subject=filt_b),
            **base,
        )
    with pytest.raises(Exception):  # noqa: B017 — an ephemeral consumer on B's subjects: the same
        await js.add_consumer(ROUTERS_STREAM, ConsumerConfig(filter_subject=filt_b), **base)
    with pytest.raises(Exception):  # noqa: B017 — the legacy durable API (filter in the body only): the same
        await js.add_consumer(ROUTERS_STREAM, ConsumerConfig(durable_name="l3-agent-node-a", filter_subject=filt_b))
    with pytest.raises(BadRequestError, match="did not match filtered subject"):  # its own name, B's filter
        await js._jsm._api_request(  # the raw request: the client library would refuse to send it this way
            f"$JS.API.CONSUMER.CREATE.{ROUTERS_STREAM}.l3-agent-node-a.scopenet.v1.agent.node-a.router.*",
            json.dumps(
                {"stream_name": ROUTERS_STREAM, "config": {"name": "l3-agent-node-a", "filter_subject": filt_b}}
            ).encode(),
            timeout=3,
        )
    for subject in (
        f"$JS.API.CONSUMER.CREATE.{ROUTERS_STREAM}.{agent_durable('node-b')}.{filt_b}",
        f"$JS.API.CONSUMER.CREATE.{ROUTERS_STREAM}",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{ROUTERS_STREAM}.l3-agent-node-a",
    ):
        assert await a.refused("publish", subject)
    with pytest.raises(Exception):  # noqa: B017 — reading B's last spec directly
        await js.get_last_msg(ROUTERS_STREAM, router_subject("node-b", theirs))
    assert await a.refused("publish", f"$JS.API.STREAM.MSG.GET.{ROUTERS_STREAM}")
    await a.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{ROUTERS_STREAM}.{agent_durable('node-b')}", b"1", reply="x")
    assert await a.refused("publish", f"$JS.API.CONSUMER.MSG.NEXT.{ROUTERS_STREAM}.{agent_durable('node-b')}")

    # What exists on the stream afterwards: node-a's consumer, on node-a's subjects, and nothing else.
    consumers = await secure.admin.jetstream().consumers_info(ROUTERS_STREAM)
    assert [(c.name, c.config.filter_subject) for c in consumers] == [
        (agent_durable("node-a"), "scopenet.v1.agent.node-a.router.*")
    ]


async def _has_msgs(js: Any, stream: str) -> bool:
    return bool((await js.stream_info(stream)).state.messages)


async def test_an_agent_beats_and_reports_but_sends_no_other_command(
    secure: Secure, client: Callable[[str], Awaitable[Client]]
) -> None:
    a = await client(secure.user(perm.agent_user("node-a")))
    js = a.nc.jetstream(timeout=3)
    beat = Heartbeat(js, agent_id="node-a", host="test", routers=lambda: 0, interval=0.5)
    task = asyncio.create_task(beat.run())
    try:
        kv = await secure.admin.jetstream().key_value(AGENTS_BUCKET)
        await eventually(lambda: kv.get("node-a"), what="node-a's heartbeat")
        await a.nc.publish(f"$KV.{AGENTS_BUCKET}.node-b", b"{}")  # B's heartbeat, forged
        assert await a.refused("publish", f"$KV.{AGENTS_BUCKET}.node-b")
        with pytest.raises(Exception):  # noqa: B017
            await kv.get("node-b")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    bus = BusClient(a.nc, timeout=10)
    report = endpoint("topology.router_status.report")
    request = report.request(
        context=CallContext(project_id="l3-agent-node-a", roles=["admin"]),
        router_id=uuid.uuid4(),
        agent_id="node-a",
        revision=1,
        status="ACTIVE",
    )
    with contextlib.suppress(DomainError):  # an unknown router: refused or ignored, but answered
        await bus.call(report, request)

    name = f"agent-{uuid.uuid4().hex[:8]}"
    for tail, body in (
        ("ipam.address_scope.create", _scope_create(name)),
        ("topology.router.create", b"{}"),
        ("topology.agent.list", b"{}"),
        ("topology.router.spec", b"{}"),
    ):
        with pytest.raises(TransientError):  # dropped by the server: no service ever sees it
            await BusClient(a.nc, timeout=1).call_raw(endpoint(tail).subject, body)
        assert await a.refused("publish", endpoint(tail).subject)
    assert await _address_scopes(secure.db_url, name) == 0


# ------------------------------------------------------------------------------ end to end


async def test_the_stack_works_end_to_end_with_a_user_per_service(
    secure: Secure, client: Callable[[str], Awaitable[Client]]
) -> None:
    """ipam, topology and the API (processes, each its own NATS user and Postgres role) and an agent
    (its own user): a subnet and a router through the API, the router scheduled to the agent, its
    spec read through the agent's consumer, its status reported back and shown by the API."""
    db_name = urlsplit(secure.db_url).path.lstrip("/")
    for svc in ("ipam", "topology", "api"):
        url = urlsplit(secure.stack.env[svc]["SCOPENET_NATS_URL"])
        assert url.username == svc and url.password == secure.passwords[svc]
    for svc in ("ipam", "topology"):
        assert urlsplit(secure.stack.env[svc]["SCOPENET_DATABASE_URL"]).username == role_name(svc, db_name)
    assert "SCOPENET_DATABASE_URL" not in secure.stack.env["api"]

    a = await client(secure.user(perm.agent_user("node-a")))
    js = a.nc.jetstream(timeout=3)
    got = Desired()
    reporter = StatusReporter(BusClient(a.nc, timeout=5), agent_id="node-a")
    parts = [
        SpecConsumer(js, got, agent_id="node-a").run(),  # type: ignore[arg-type]
        Heartbeat(js, agent_id="node-a", host="test", routers=lambda: len(got.specs), interval=0.5).run(),
        reporter.run(),
    ]
    tasks = [asyncio.create_task(p) for p in parts]
    try:
        async with aiohttp.ClientSession(base_url=secure.api) as http:

            async def post(path: str, body: dict[str, Any], method: str = "POST") -> dict[str, Any]:
                async with http.request(method, path, json=body) as r:
                    assert r.status in (200, 201), await r.text()
                    return dict(await r.json())

            net = (await post("/v2.0/networks", {"network": {"name": "sec-net"}}))["network"]
            subnet = (
                await post(
                    "/v2.0/subnets",
                    {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.77.0.0/24", "name": "sec"}},
                )
            )["subnet"]
            router = (await post("/v2.0/routers", {"router": {"name": "sec-router"}}))["router"]
            await post(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]}, "PUT")

            def spec() -> RouterSpec | None:
                hits = [s for s in got.specs if str(s.router_id) == router["id"] and s.interfaces]
                return hits[-1] if hits else None

            applied = await eventually(lambda: asyncio.sleep(0, spec()), timeout=60, what="the agent gets the spec")
            assert applied.agent_id == "node-a"
            assert [str(p.network_id) for p in applied.interfaces] == [net["id"]]
            reporter.submit(RouterStatus(router_id=router["id"], revision=applied.revision, status="ACTIVE"))

            async def active() -> bool:
                async with http.get(f"/v2.0/routers/{router['id']}") as r:
                    return (await r.json())["router"]["status"] == "ACTIVE"

            await eventually(active, timeout=30, what="the API shows the router ACTIVE")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    conn = await asyncpg.connect(secure.db_url)
    try:
        users = {
            r["usename"] for r in await conn.fetch("SELECT usename FROM pg_stat_activity WHERE datname = $1", db_name)
        }
    finally:
        await conn.close()
    assert {role_name("ipam", db_name), role_name("topology", db_name)} <= users, users


async def test_an_agent_reads_the_bgp_speaker_specs_for_its_speaker(
    secure: Secure, client: Callable[[str], Awaitable[Client]]
) -> None:
    """The speaker beside an agent (SCOPENET_AGENT_BGP) follows every speaker's spec through an
    ordered consumer, as the agent's user; it may not write one."""
    sid = uuid.uuid4()
    spec = BgpSpeakerSpec(speaker_id=sid, revision=1)
    await secure.admin.jetstream().publish(speaker_subject(sid), spec.model_dump_json().encode())
    a = await client(secure.user(perm.agent_user("node-a")))
    host = SpeakerHost(a.nc.jetstream(timeout=3), None, router_id="192.0.2.1")  # type: ignore[arg-type]  # no BIRD
    await asyncio.wait_for(host._subscribe(), timeout=30)  # the speaker's own subscription code
    await eventually(lambda: asyncio.sleep(0, sid in host.specs), what="the speaker spec reaches the agent")
    await a.nc.publish(speaker_subject(sid), spec.model_dump_json().encode())
    assert await a.refused("publish", speaker_subject(sid))
    assert not [e for e in a.errors if "subscription" in e or "consumer" in e], a.errors


# ------------------------------------------------------------------------------ one agent for another


async def test_an_agent_cannot_report_for_another_agents_router(
    secure: Secure, client: Callable[[str], Awaitable[Client]]
) -> None:
    """Each agent reports on its own subject (``router_status.report.<its id>``). A compromised agent
    cannot publish to the host's subject (the server refuses it), and a report on its own subject
    that names the host in its body is refused by topology: the host's router keeps its status."""
    agents = {a: await client(secure.user(perm.agent_user(a))) for a in AGENTS}
    beats = [
        asyncio.create_task(
            Heartbeat(c.nc.jetstream(timeout=3), agent_id=a, host="t", routers=lambda: 0, interval=0.5).run()
        )
        for a, c in agents.items()
    ]  # both alive throughout: the router stays where it is scheduled
    report = endpoint("topology.router_status.report")
    try:
        async with aiohttp.ClientSession(base_url=secure.api) as http:
            async with http.post("/v2.0/routers", json={"router": {"name": "hosted"}}) as r:
                assert r.status == 201, await r.text()
                rid = (await r.json())["router"]["id"]

            async def hosted() -> RouterSpec | None:
                spec_of = endpoint("topology.router.spec")
                spec: RouterSpec = await BusClient(secure.admin, timeout=5).call(
                    spec_of, spec_of.request(context=ADMIN_CTX, id=rid)
                )
                return spec if spec.agent_id in AGENTS else None

            spec = await eventually(hosted, timeout=60, what="the router is scheduled to one of the agents")
            host = spec.agent_id
            attacker = next(a for a in AGENTS if a != host)

            def status_report(sender: str, agent_id: str, revision: int, status: str, reason: str | None = None) -> Any:
                ctx = CallContext(project_id=perm.agent_user(sender), roles=["admin"])
                body = {"router_id": rid, "agent_id": agent_id, "revision": revision, "status": status}
                return report.request(context=ctx, reason=reason, **body)

            async def shown() -> tuple[str, str | None]:
                async with http.get(f"/v2.0/routers/{rid}") as r:
                    router = (await r.json())["router"]
                    return router["status"], router.get("status_reason")

            # the host reports, on its own subject: accepted, the API shows it
            ack = await BusClient(agents[host].nc, timeout=10).call(
                report, status_report(host, host, spec.revision, "ACTIVE")
            )
            assert ack.accepted
            assert await shown() == ("ACTIVE", None)

            forged = status_report(attacker, host, spec.revision + 5, "ERROR", "forged by " + attacker)
            bad = agents[attacker]
            # 1. as the host, on the host's subject: the server drops it, topology never sees it
            with pytest.raises(TransientError):
                await BusClient(bad.nc, timeout=1).call(report, forged)  # the client sends it to the host's subject
            assert await bad.refused("publish", report.sender_subject(host))
            for subject in (report.subject, f"{report.subject}.>"):  # nor the shared subject, nor all of them
                await bad.nc.publish(subject, forged.model_dump_json().encode())
                assert await bad.refused("publish", subject)
            # 2. the host's id in the body, on its own subject: topology refuses it (403), writes nothing
            data, headers = await BusClient(bad.nc, timeout=10).call_raw(
                report.sender_subject(attacker), forged.model_dump_json().encode()
            )
            err = decode_error(data, headers)
            assert isinstance(err, DomainError) and (err.code, err.type) == (403, "PolicyNotAuthorized"), err
            assert "only send as itself" in err.message and err.field == "agent_id"
            # 3. as itself: heard, but ignored — it does not host the router
            mine = await BusClient(bad.nc, timeout=10).call(
                report, status_report(attacker, attacker, spec.revision + 5, "ERROR", "x")
            )
            assert not mine.accepted

            assert await shown() == ("ACTIVE", None), "another agent changed the host's router status"
            async with http.delete(f"/v2.0/routers/{rid}") as r:
                assert r.status == 204, await r.text()
    finally:
        for task in beats:
            task.cancel()
        await asyncio.gather(*beats, return_exceptions=True)
