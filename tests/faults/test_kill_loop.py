"""Every service killed with -9 at random moments while clients create and delete subnets, ports,
routers (interfaces, gateways) and floating IPs through the HTTP API.

The world is the module's own: a nats-server and a database of its own, IPAM, topology and the API
as ``scopenet service`` processes, and the L3 agent as a process inside an ``AgentSandbox`` (its
kernel state survives its deaths there, for the next one to adopt). A ``Supervisor`` restarts
whatever dies after a random delay; a chaos loop kills a random service (each in turn, in a
shuffled order) with SIGKILL at random moments. Clients (``workload``) remember only what the API
acknowledged and retry lost answers the way the API allows.

When the load stops and the last killed service is back, within a bounded time:

- the API shows exactly what was acknowledged: nothing lost, nothing doubled (``differences``);
- IPAM and topology agree, every allocation has its owner, nothing is left half-way (``agreement``);
- every router's last RouterSpec on the stream is what topology's database says now;
- the agent's kernel matches those specs exactly, and every router is ACTIVE;
- no service died on its own and the API never answered a 5xx other than 503.

The random seed is printed; ``SCOPENET_FAULT_SEED=<seed>`` replays the same kill intervals and
order, restart delays and client random streams (what the clients do still depends on timing).
The load lasts ``soak_seconds(15)``: 15 s in CI, ``SCOPENET_SOAK_SECONDS`` under ``make soak``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import nats
import pytest

from scopenet.bus import natsauth
from scopenet.bus.client import BusClient
from scopenet.commands.bench.sandbox import AgentSandbox
from scopenet.contracts import permissions as perm
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.infra.embedded import nats_credentials, nats_server
from scopenet.infra.select import Endpoints
from tests.conftest import with_database
from tests.faults import agreement
from tests.faults.conftest import soak_seconds
from tests.faults.http_api import Api
from tests.faults.supervisor import Child, Supervisor
from tests.faults.workload import Client, Ledger, Owned, differences
from tests.integration.topology.conftest import Topo

pytestmark = pytest.mark.netns

LOAD_SECONDS = soak_seconds(15)
CLIENTS = 4
KILL_EVERY = (1.0, 3.0)
"""Seconds between two kills (uniform)."""
RESTART_DELAY = (0.1, 1.5)
CONVERGE_WITHIN = 60.0
AGENT = "kill-loop-agent"
AGENT_USER = perm.AGENT_PREFIX + AGENT
AGENT_HEALTH_PORT = 9697
TOPOLOGY_ENV = {
    "SCOPENET_TOPOLOGY_RECONCILE_INTERVAL": "1",
    "SCOPENET_TOPOLOGY_STALE_AFTER": "3",
    "SCOPENET_TOPOLOGY_IPAM_TIMEOUT": "2",
}
"""Repairs within seconds (a short run must see them); stale_after stays above the IPAM timeout."""
SEED = int(os.environ.get("SCOPENET_FAULT_SEED") or random.SystemRandom().randrange(2**32))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    sup: Supervisor
    box: AgentSandbox
    api: Api
    topo: Topo
    js: Any
    db_url: str
    external: str
    pool: str
    state: Path
    keep_logs: bool = True
    """Cleared when the test passed: the logs (services, supervisor, clients) stay only for a failure."""


async def _admin_sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _children(state: Path, db: str, admin_url: str, box: AgentSandbox, box_nats: str, api_port: int) -> list[Child]:
    """Each service with its own NATS user (as in production), the agent reaching NATS through the
    sandbox's relay."""
    passwords = nats_credentials(state / "nats").load()

    def as_user(url: str, user: str) -> str:
        return natsauth.user_url(url, user, passwords[user])

    base = {
        **os.environ,
        "SCOPENET_DATABASE_URL": db,
        "SCOPENET_STATE_DIR": str(state),
        "SCOPENET_LOG_LEVEL": "info",
        "SCOPENET_LOG_FORMAT": "json",
    }
    agent_env = {
        **base,
        "SCOPENET_NATS_URL": as_user(box_nats, AGENT_USER),
        "SCOPENET_AGENT_ID": AGENT,
        "SCOPENET_AGENT_HOST_NETNS": box.host,
        "SCOPENET_AGENT_HEARTBEAT_INTERVAL": "0.5",
        "SCOPENET_HEALTH_PORT": str(AGENT_HEALTH_PORT),
    }
    agent_env.pop("SCOPENET_DATABASE_URL")
    api_env = {
        **base,
        "SCOPENET_NATS_URL": as_user(admin_url, perm.API),
        "SCOPENET_AUTH": "noauth",
        "SCOPENET_API_PORT": str(api_port),
    }
    ipam_env = {**base, "SCOPENET_NATS_URL": as_user(admin_url, perm.IPAM)}
    topology_env = {**base, **TOPOLOGY_ENV, "SCOPENET_NATS_URL": as_user(admin_url, perm.TOPOLOGY)}

    return [
        Child("ipam", ipam_env, state / "ipam.log"),
        Child("topology", topology_env, state / "topology.log"),
        Child("api", api_env, state / "api.log"),
        Child("l3-agent", agent_env, state / "l3-agent.log", spawn=box.spawn),
    ]


@pytest.fixture(scope="module")
async def world(infra: Endpoints) -> AsyncIterator[World]:
    # Not under pytest's temp root (another pytest run may reset it to 0700 under our processes).
    state = Path(tempfile.mkdtemp(prefix="scopenet-kill-loop-"))
    name = f"scopenet_kill_{uuid.uuid4().hex[:10]}"
    await _admin_sql(infra.database_url, f'CREATE DATABASE "{name}"')
    db = with_database(infra.database_url, name)
    rng = random.Random(SEED)
    keep_logs = True
    try:
        with nats_server(state / "nats", users=[AGENT_USER]) as nats_url:
            async with AgentSandbox() as box, aiohttp.ClientSession() as http:
                # aiohttp silently sends a PUT or DELETE again when the connection breaks under it
                # (the API killed mid-request): the client must see that break, or a delete that
                # went through would look like an acknowledged object gone missing (404).
                assert hasattr(http, "_retry_connection"), "aiohttp changed: find how to disable its retry"
                http._retry_connection = False
                box_nats = await box.expose(nats_url)
                api_port = _free_port()
                sup = Supervisor(
                    {c.name: c for c in _children(state, db, nats_url, box, box_nats, api_port)},
                    rng,
                    restart_delay=RESTART_DELAY,
                )
                nc = await nats.connect(nats_url)
                t0 = time.monotonic()
                sup.start()
                try:
                    admin = Api(f"http://127.0.0.1:{api_port}", http, "0" * 32, roles="admin")
                    try:
                        external, pool = await _setup(admin)
                    except TimeoutError:
                        tails = "\n".join(f"--- {c.name}:\n{c.tail()}" for c in sup.children.values())
                        raise AssertionError(f"the services did not come up within 60 s:\n{tails}") from None
                    print(f"\nkill loop: services up and set up in {time.monotonic() - t0:.1f} s; logs in {state}")
                    topo = Topo(BusClient(nc, timeout=5))
                    world = World(sup, box, admin, topo, nc.jetstream(), db, external, pool, state)
                    yield world
                    keep_logs = world.keep_logs
                finally:
                    await sup.close()
                    await nc.close()
    finally:
        await _admin_sql(infra.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not keep_logs:
            shutil.rmtree(state, ignore_errors=True)


async def _post(admin: Api, collection: str, body: dict[str, Any]) -> str:
    """Setup runs before any kill: every call must succeed (retried only while services start)."""
    async with asyncio.timeout(60):
        while True:
            reply = await admin.call("POST", f"/v2.0/{collection}", body)
            if reply.kind == "ok":
                return str(next(iter(reply.body.values()))["id"])
            assert reply.kind != "refused", f"setup POST {collection}: {reply.status} {reply.body}"
            await asyncio.sleep(0.2)


async def _setup(admin: Api) -> tuple[str, str]:
    """An address scope and a shared pool for the tenants' subnets, an external network."""
    scope = await _post(admin, "address-scopes", {"address_scope": {"name": "kl", "ip_version": 4, "shared": True}})
    pool = await _post(
        admin,
        "subnetpools",
        {
            "subnetpool": {
                "name": "kl-tenants",
                "prefixes": ["10.96.0.0/12"],
                "default_prefixlen": 26,
                "address_scope_id": scope,
                "shared": True,
            }
        },
    )
    external = await _post(admin, "networks", {"network": {"name": "kl-public", "router:external": True}})
    await _post(
        admin,
        "subnets",
        {"subnet": {"network_id": external, "ip_version": 4, "cidr": "172.20.0.0/20", "enable_dhcp": False}},
    )
    return external, pool


async def _chaos(world: World, rng: random.Random, stop: asyncio.Event, kills: list[tuple[float, str]]) -> None:
    turn: list[str] = []
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(*KILL_EVERY))
            return
        if not turn:
            turn = sorted(world.sup.children)
            rng.shuffle(turn)
        running = [name for name in turn if world.sup.children[name].alive]
        if running:  # the next in turn that runs; a dead one keeps its turn until it is back
            turn.remove(running[-1])
            world.sup.kill9(running[-1])
            kills.append((time.monotonic(), running[-1]))


async def _converged(world: World, clients: list[Owned]) -> dict[str, Any]:
    """Every check at once; empty when the whole system agrees."""
    try:
        db = await asyncpg.connect(world.db_url)
        try:
            out: dict[str, Any] = {}
            if d := await differences(world.api, clients, world.external):
                out["api_vs_acknowledged"] = d
            if d := await agreement.databases(db):
                out["databases"] = d
            if d := await agreement.router_specs(world.js, world.topo, db):
                out["router_specs"] = d
            if d := await agreement.kernel(world.box, world.topo, db, owner=AGENT):
                out["kernel"] = d
            statuses = Counter(r["status"] for r in await db.fetch("SELECT status FROM topology.routers"))
            if set(statuses) - {"ACTIVE"}:
                out["router_status"] = dict(statuses)
            return out
        finally:
            await db.close()
    except (DomainError, TransientError, OSError, asyncpg.PostgresError) as exc:
        return {"unanswered": f"{type(exc).__name__}: {exc}"}


async def _until(check: Callable[[], Any], timeout: float) -> tuple[float, float, Any]:
    """Poll ``check`` until it returns nothing: (seconds until then, seconds the last check took,
    what was still wrong). Prints what it still waits for when that changes."""
    t0, last, waiting = time.monotonic(), None, None
    while time.monotonic() - t0 < timeout:
        began = time.monotonic()
        try:
            async with asyncio.timeout(max(1.0, timeout - (began - t0))):
                last = await check()
        except TimeoutError:
            return time.monotonic() - t0, 0.0, {"unanswered": "the checks themselves got no answer in time"}
        if not last:
            return time.monotonic() - t0, time.monotonic() - began, None
        if sorted(last) != waiting:
            waiting = sorted(last)
            print(f"  +{time.monotonic() - t0:.1f} s waiting for: {', '.join(waiting)}")
        await asyncio.sleep(0.5)
    return time.monotonic() - t0, 0.0, last


@pytest.mark.timeout(LOAD_SECONDS + 240)
async def test_every_service_killed_at_random_the_system_converges_with_nothing_lost(
    world: World, record: Callable[..., None]
) -> None:
    print(f"\nkill loop: seed {SEED} (replay: SCOPENET_FAULT_SEED={SEED}), load {LOAD_SECONDS:.0f} s")
    rng = random.Random(SEED + 1)
    ledger = Ledger()
    owned, clients = [], []
    for i in range(CLIENTS):
        project = uuid.uuid4().hex
        api = world.api.as_project(project)
        net = await _post(api, "networks", {"network": {"name": f"kl-net-{i}"}})
        owned.append(Owned(project, net))
        client_rng = random.Random(rng.getrandbits(64))
        clients.append(
            Client(api, owned[-1], client_rng, tag=f"c{i}", external=world.external, pool=world.pool, ledger=ledger)
        )

    stop = asyncio.Event()
    kills: list[tuple[float, str]] = []
    """(monotonic time, service) of every kill"""
    started = time.monotonic()
    async with asyncio.TaskGroup() as tasks:
        chaos = tasks.create_task(_chaos(world, rng, stop, kills))
        load = [tasks.create_task(c.run(stop)) for c in clients]
        await asyncio.sleep(LOAD_SECONDS)
        stop.set()
        await chaos
        await world.sup.all_running()
        async with asyncio.timeout(120):  # each client finishes (and resolves) its current operation
            await asyncio.gather(*load)
    last_kill = kills[-1][0] if kills else started
    drained = time.monotonic() - last_kill
    took, checking, left = await _until(lambda: _converged(world, owned), CONVERGE_WITHIN)
    (world.state / "clients.log").write_text("\n".join(world.api.trace) + "\n")
    converged = drained + took

    per_service = Counter(name for _, name in kills)
    lost = differences_count(left, "lost")
    extra = differences_count(left, "extra")
    repairs = _repairs(world.state / "topology.log")
    schedule = [(round(t - started, 1), name) for t, name in kills]
    print(f"kills {dict(per_service)} at (s) {schedule}; slow to die (s): {world.sup.slow_deaths}")
    print(f"operations: {ledger.acknowledged} acknowledged; {dict(sorted(ledger.ops.items()))}")
    print(
        f"converged {converged:.1f} s after the last kill (clients done {drained:.1f} s after it, the passing "
        f"check took {checking:.1f} s); repairs {repairs}"
    )
    record(
        seed=SEED,
        load_seconds=LOAD_SECONDS,
        faults={f"kill -9 {k}": v for k, v in sorted(per_service.items())},
        operations=ledger.acknowledged,
        operations_by_kind=dict(sorted(ledger.ops.items())),
        lost=lost,
        duplicated=extra,
        inconsistent=len(left or {}),  # checks still failing at the deadline
        converged_seconds=round(converged, 2),
        passing_check_seconds=round(checking, 2),
        reconciler_repairs=repairs,
        slow_deaths=world.sup.slow_deaths,
        findings=len(ledger.findings) + len(world.api.bugs) + len(world.sup.crashes),
    )
    assert not left, f"not converged within {CONVERGE_WITHIN:.0f} s (seed {SEED}): {left}"
    assert not ledger.findings, f"seed {SEED}: {ledger.findings}"
    assert not world.api.bugs, f"the API answered 5xx other than 503 (seed {SEED}): {world.api.bugs}"
    assert not world.sup.crashes, f"a service died on its own (seed {SEED}): {world.sup.crashes}"
    assert set(per_service) == set(world.sup.children), f"every service is killed at least once: {schedule}"
    assert ledger.acknowledged >= 20, f"too little load to prove anything: {dict(ledger.ops)}"
    world.keep_logs = False


def differences_count(left: Any, prefix: str) -> int:
    if not left:
        return 0
    api = left.get("api_vs_acknowledged", {})
    return sum(len(v) for k, v in api.items() if k.startswith(prefix))


def _repairs(log: Path) -> dict[str, int]:
    """What topology's reconcilers repaired (their ``reconciled`` log lines), over every process."""
    import json

    done: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == "reconciled":
                    done.update({k: v for k, v in entry.items() if isinstance(v, int)})
    return dict(done)
