"""``scopenet bench fleet``: a thousand routers over three L3 agents, from cold, then one agent killed.

The whole control plane as in production, each service **its own process** (so each peak RSS is
that process's own): IPAM and topology on a throwaway database, and ``--agents`` L3 agents, each
the real ``scopenet service l3-agent`` in an ``AgentSandbox`` of its own (a private network and
mount namespace, its host namespace ``host`` inside; its NATS through a relay on the sandbox's
loopback). No VXLAN between the sandboxes: nothing here sends packets between hosts, only the
kernel state each agent builds counts. NATS is a nats-server of the run's own unless
``SCOPENET_NATS_URL`` is set (a live stack's NATS would mix its agents and RouterSpecs with these).

What the fleet holds (``--routers`` R, ``--ports`` P), made through the NATS commands as any
client would, by ``--clients`` concurrent clients, one project per ten routers:

- one shared address scope; an external network (``router:external``) with a /16 from a pool in
  that scope; two shared pools of /24s, ``10.0.0.0/8`` in the scope and ``172.16.0.0/12`` outside;
- per router a network with one /24 subnet, from the scoped pool for even routers and the unscoped
  one for odd routers, and P/R instance ports on it (``compute:nova``; 10 each by default);
- the routers (the timed part): each is created, gets its subnet as an interface, three in four
  get a gateway on the external network (SNAT on: the unscoped subnets are NATed, the scoped ones
  routed), and one in four (those with a gateway, i % 4 == 0) a floating IP on one of its ports.

Phases and figures:

- **cold**: from the first ``router.create`` until every router's agent has reported ACTIVE for the
  router's complete spec (interface, gateway, floating IP: see ``fleetwatch``), then confirmed by
  topology (no router listed in another status); per agent, how many routers it got;
- **failover**: once the fleet is quiet, the agent holding the most routers is killed with -9
  (with the default sizes, least-loaded scheduling gives each agent about a third: ≥ 300); timed
  from the kill until every one of its routers is ACTIVE on a live agent, with the per-router gaps
  (kill → that router ACTIVE elsewhere) and when topology rescheduled them (kill → new spec seen);
  topology's ``agent_ttl`` is ``--agent-ttl`` (10 s, the issue's heartbeat TTL), agents beat every 2 s;
- **CPU seconds** spent during each phase by every process of the fleet (services, agents, this
  process's clients and relays, nats-server, the embedded Postgres with its backends): unlike
  elapsed time, it hardly depends on what else the machine runs; each agent's reconcile counters;
- **peak RSS** (VmHWM) of IPAM, topology and every agent (the killed one just before the kill),
  and the load average around the run (the machine may be shared).

The agents take ``SCOPENET_AGENT_*`` settings from the environment (``SCOPENET_AGENT_CONCURRENCY``…);
no other ``SCOPENET_*`` variable reaches them.

The killed agent's routers stay in its sandbox's kernel (as on a real host that lost its agent);
every sandbox and everything in it vanishes at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import nats
import psutil

from scopenet.bus.client import BusClient
from scopenet.commands.bench.common import machine, peak_rss_mb, scratch_database, start_service, stop
from scopenet.commands.bench.fleetwatch import FleetWatch
from scopenet.commands.bench.sandbox import AgentSandbox
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import TransientError
from scopenet.contracts.subjects import ALL_ENDPOINTS
from scopenet.infra import processes
from scopenet.infra.embedded import nats_server
from scopenet.infra.select import Endpoints

ADMIN = CallContext(project_id="0" * 32, roles=["admin"])
HEALTH_PORT = 9697
"""Each agent's probe port, on its own sandbox's loopback."""
NOT_ACTIVE = ["PENDING", "ERROR", "DOWN"]
A = TypeVar("A")
R = TypeVar("R")


@dataclass
class Sizes:
    routers: int = 1000
    ports: int = 10_000
    agents: int = 3
    clients: int = 32
    agent_ttl: float = 10.0
    heartbeat_interval: float = 2.0
    failover: bool = True


@dataclass
class FleetAgent:
    agent_id: str
    box: AgentSandbox
    proc: subprocess.Popen[bytes]
    log: Path
    peak_rss_mb: float | None = None
    killed: bool = False


@dataclass
class RouterPlan:
    index: int
    ctx: CallContext
    subnet_id: str
    fip_port_id: str | None
    gateway: bool
    floating_ips: int


@dataclass
class World:
    external: str
    routers: list[RouterPlan] = field(default_factory=list)
    ports: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------ small helpers


def _say(what: str) -> None:
    """Progress on stderr (stdout is the JSON): a phase's start, with the pids worth watching."""
    print(f"bench fleet: {what}", file=sys.stderr, flush=True)


def _endpoint(service: str, tail: str) -> Any:
    return next(e for e in ALL_ENDPOINTS if e.service == service and e.subject.endswith("." + tail))


async def _call(bus: BusClient, service: str, tail: str, ctx: CallContext, **body: Any) -> Any:
    ep = _endpoint(service, tail)
    return await bus.call(ep, ep.request.model_validate({"context": ctx.model_dump(), **body}))


async def _bounded(clients: int, job: Callable[[A], Awaitable[R]], args: Sequence[A]) -> list[R]:
    """``job(a)`` for every ``a``, ``clients`` at a time, results in order; any failure fails the run
    (a benchmark of a broken stack is void)."""
    results: dict[int, R] = {}
    todo = iter(range(len(args)))

    async def worker() -> None:
        for i in todo:
            results[i] = await job(args[i])

    await asyncio.gather(*(worker() for _ in range(min(clients, len(args)) or 1)))
    return [results[i] for i in range(len(args))]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _spread(values: list[float]) -> dict[str, float | None]:
    return {
        "p50_s": _pct(values, 0.5),
        "p90_s": _pct(values, 0.9),
        "p99_s": _pct(values, 0.99),
        "max_s": round(max(values), 3) if values else None,
    }


async def _until(check: Callable[[], Awaitable[bool] | bool], *, timeout: float, every: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        await asyncio.sleep(every)


# ------------------------------------------------------------------ processes


async def _ready(bus: BusClient, timeout: float = 90) -> None:
    """IPAM and topology answer commands."""
    deadline = time.perf_counter() + timeout
    for service, tail in (("ipam", "address_scope.list"), ("topology", "network.list")):
        while True:
            try:
                await _call(bus, service, tail, ADMIN)
                break
            except TransientError:
                if time.perf_counter() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def _start_agent(
    stack: contextlib.AsyncExitStack, agent_id: str, nats_url: str, tmp: Path, sizes: Sizes
) -> FleetAgent:
    box = await stack.enter_async_context(AgentSandbox())
    inside = await box.expose(nats_url)
    state = tmp / agent_id
    state.mkdir()
    # The agents' own knobs (SCOPENET_AGENT_CONCURRENCY, …) pass through; nothing else of ours does.
    env = {k: v for k, v in os.environ.items() if k.startswith("SCOPENET_AGENT_")}
    env |= {
        "SCOPENET_NATS_URL": inside,
        "SCOPENET_STATE_DIR": str(state),
        "SCOPENET_AGENT_ID": agent_id,
        "SCOPENET_AGENT_HOST_NETNS": box.host,
        "SCOPENET_AGENT_HEARTBEAT_INTERVAL": str(sizes.heartbeat_interval),
        "SCOPENET_HEALTH_PORT": str(HEALTH_PORT),
        "SCOPENET_LOG_LEVEL": "warning",
    }
    log = state / "agent.log"
    proc = processes.start_service("l3-agent", env=env, log=log, inherit_scopenet=False, spawn=box.spawn)
    agent = FleetAgent(agent_id, box, proc, log)
    stack.push_async_callback(_stop_agent, agent)  # runs before its sandbox closes
    return agent


async def _stop_agent(agent: FleetAgent) -> None:
    await processes.stop_async([agent.proc], timeout=15)  # the loop keeps relaying its last messages meanwhile


async def _agent_ready(agent: FleetAgent, timeout: float = 90) -> None:
    async def ok() -> bool:
        if agent.proc.poll() is not None:
            tail = agent.log.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(f"agent {agent.agent_id} exited with {agent.proc.returncode}:\n" + "\n".join(tail))
        with contextlib.suppress(OSError, TimeoutError, ValueError, IndexError):
            return (await agent.box.http_get(HEALTH_PORT, "/readyz"))[0] == 200
        return False

    try:
        await _until(ok, timeout=timeout, every=0.1, what=f"agent {agent.agent_id} ready")
    except TimeoutError as exc:
        tail = agent.log.read_text(errors="replace").splitlines()[-20:]
        raise TimeoutError(f"{exc}; its log ends:\n" + "\n".join(tail)) from None


async def _alive(bus: BusClient) -> dict[str, int]:
    """Topology's view: live agent → routers scheduled to it."""
    reply = await _call(bus, "topology", "agent.list", ADMIN)
    return {a.agent_id: a.routers for a in reply.agents if a.alive}


# ------------------------------------------------------------------ the fleet's objects


async def _setup(bus: BusClient, sizes: Sizes) -> World:
    t0 = time.perf_counter()
    scope = (
        await _call(
            bus, "ipam", "address_scope.create", ADMIN, address_scope={"name": "fleet", "ip_version": 4, "shared": True}
        )
    ).address_scope

    async def pool(name: str, prefix: str, prefixlen: int, scoped: bool) -> str:
        body: dict[str, Any] = {"name": name, "prefixes": [prefix], "default_prefixlen": prefixlen, "shared": True}
        if scoped:
            body["address_scope_id"] = str(scope.id)
        return str((await _call(bus, "ipam", "subnetpool.create", ADMIN, subnetpool=body)).subnetpool.id)

    public = await pool("fleet-public", "100.64.0.0/16", 16, True)
    scoped = await pool("fleet-scoped", "10.0.0.0/8", 24, True)
    unscoped = await pool("fleet-unscoped", "172.16.0.0/12", 24, False)
    ext = (
        await _call(bus, "topology", "network.create", ADMIN, network={"name": "fleet-ext", "router:external": True})
    ).network
    await _call(
        bus,
        "topology",
        "subnet.create",
        ADMIN,
        subnet={"network_id": str(ext.id), "ip_version": 4, "subnetpool_id": public, "enable_dhcp": False},
    )
    world = World(external=str(ext.id))
    projects = [CallContext(project_id=uuid.uuid4().hex, roles=["member"]) for _ in range(sizes.routers // 10 + 1)]

    async def network(i: int) -> tuple[CallContext, str, str]:
        ctx = projects[i // 10]
        net = (await _call(bus, "topology", "network.create", ctx, network={"name": f"fleet-net-{i}"})).network
        sub = (
            await _call(
                bus,
                "topology",
                "subnet.create",
                ctx,
                subnet={
                    "network_id": str(net.id),
                    "ip_version": 4,
                    "subnetpool_id": scoped if i % 2 == 0 else unscoped,
                },
            )
        ).subnet
        return ctx, str(net.id), str(sub.id)

    nets = await _bounded(sizes.clients, network, range(sizes.routers))
    world.seconds["networks_and_subnets"] = round(time.perf_counter() - t0, 3)

    t1 = time.perf_counter()
    per_net = [
        sizes.ports // sizes.routers + (1 if i < sizes.ports % sizes.routers else 0) for i in range(sizes.routers)
    ]

    async def port(job: tuple[int, int]) -> str:
        i, k = job
        ctx, net_id, _ = nets[i]
        body = {"network_id": net_id, "name": f"fleet-port-{i}-{k}", "device_owner": "compute:nova"}
        return str((await _call(bus, "topology", "port.create", ctx, port=body)).port.id)

    jobs = [(i, k) for i in range(sizes.routers) for k in range(per_net[i])]
    port_ids = await _bounded(sizes.clients, port, jobs)
    first_port = {i: pid for (i, k), pid in zip(jobs, port_ids, strict=True) if k == 0}
    world.ports = len(port_ids)
    world.seconds["ports"] = round(time.perf_counter() - t1, 3)

    for i, (ctx, _, subnet_id) in enumerate(nets):
        gateway = i % 4 != 3
        fip = i % 4 == 0 and i in first_port
        world.routers.append(RouterPlan(i, ctx, subnet_id, first_port.get(i) if fip else None, gateway, int(fip)))
    return world


async def _make_router(bus: BusClient, world: World, plan: RouterPlan) -> tuple[str, float]:
    """The router, its interface, its gateway and floating IP: (router id, when its last call returned)."""
    body: dict[str, Any] = {"name": f"fleet-router-{plan.index}"}
    if plan.gateway:
        body["external_gateway_info"] = {"network_id": world.external}
    router = (await _call(bus, "topology", "router.create", plan.ctx, router=body)).router
    await _call(bus, "topology", "router.add_router_interface", plan.ctx, id=str(router.id), subnet_id=plan.subnet_id)
    if plan.fip_port_id is not None:
        fip = {"floating_network_id": world.external, "port_id": plan.fip_port_id}
        await _call(bus, "topology", "floatingip.create", plan.ctx, floatingip=fip)
    return str(router.id), time.perf_counter()


def _complete(watch: FleetWatch, rid: str, plan: RouterPlan) -> float | None:
    """When the router's complete spec was applied (None: not yet)."""
    place = watch.placed.get(rid)
    if place is None or place.interfaces < 1 or place.gateway != plan.gateway or place.floating_ips < plan.floating_ips:
        return None
    return watch.applied_at(rid)


async def _topology_agrees(bus: BusClient) -> bool:
    reply = await _call(bus, "topology", "router.list", ADMIN, filters={"status": NOT_ACTIVE})
    return not reply.routers


# ------------------------------------------------------------------ phases


async def _cold(
    bus: BusClient,
    watch: FleetWatch,
    world: World,
    sizes: Sizes,
    services: dict[str, subprocess.Popen[bytes]],
    postmaster: psutil.Process | None,
) -> tuple[dict[str, Any], dict[str, RouterPlan]]:
    _say(f"creating {len(world.routers)} routers")
    cpu_before = _cpu_all(services, postmaster)
    t0 = time.perf_counter()
    made = await _bounded(sizes.clients, functools.partial(_make_router, bus, world), world.routers)
    created = time.perf_counter() - t0
    plans = {rid: plan for (rid, _), plan in zip(made, world.routers, strict=True)}
    returned = dict(made)
    done: dict[str, float] = {}

    def all_applied() -> bool:
        for rid, plan in plans.items():
            if rid not in done and (at := _complete(watch, rid, plan)) is not None:
                done[rid] = at
        return len(done) == len(plans)

    await _until(all_applied, timeout=max(120.0, sizes.routers * 0.5), every=0.05, what="every router applied")
    last = max(done.values()) - t0
    cpu_during = _cpu_since(services, postmaster, cpu_before)
    await _until(lambda: _topology_agrees(bus), timeout=30, every=0.2, what="topology showing every router ACTIVE")
    confirmed = time.perf_counter() - t0
    return {
        "routers": len(plans),
        "with_gateway": sum(p.gateway for p in plans.values()),
        "with_floating_ip": sum(p.floating_ips for p in plans.values()),
        "seconds_to_all_active": round(last, 3),
        "seconds_creating": round(created, 3),
        "topology_confirmed_after_s": round(confirmed, 3),
        "routers_per_s": round(len(plans) / last, 1) if last else None,
        "last_command_to_applied": _spread([max(0.0, done[rid] - returned[rid]) for rid in plans]),
        "per_agent": watch.per_agent(),
        "cpu_seconds_until_all_active": cpu_during,
        "target_seconds": 60,
    }, plans


async def _failover(
    bus: BusClient,
    watch: FleetWatch,
    agents: list[FleetAgent],
    plans: dict[str, RouterPlan],
    sizes: Sizes,
    services: dict[str, subprocess.Popen[bytes]],
    postmaster: psutil.Process | None,
) -> dict[str, Any]:
    await asyncio.sleep(3)  # quiet: no status report or spec in flight
    counts = watch.per_agent()
    victim = max(agents, key=lambda a: (counts.get(a.agent_id, 0), a.agent_id))
    moved = [rid for rid in plans if watch.placed[rid].agent == victim.agent_id]
    victim.peak_rss_mb = peak_rss_mb(victim.proc.pid)
    _say(f"killing {victim.agent_id} (pid {victim.proc.pid}) with {len(moved)} routers")
    t_kill = time.perf_counter()
    victim.proc.send_signal(signal.SIGKILL)
    victim.killed = True
    await asyncio.to_thread(victim.proc.wait)
    rescheduled: dict[str, float] = {}
    active: dict[str, float] = {}

    def all_moved() -> bool:
        for rid in moved:
            place = watch.placed.get(rid)
            if place is None or place.agent == victim.agent_id or place.at < t_kill:
                continue
            rescheduled.setdefault(rid, place.at - t_kill)
            if rid not in active and (at := _complete(watch, rid, plans[rid])) is not None:
                active[rid] = at - t_kill
        return len(active) == len(moved)

    cpu_before = _cpu_all(services, postmaster)
    await _until(all_moved, timeout=120, every=0.05, what="the dead agent's routers ACTIVE elsewhere")
    cpu_during = _cpu_since(services, postmaster, cpu_before)
    total = max(active.values(), default=0.0)
    await _until(lambda: _topology_agrees(bus), timeout=30, every=0.2, what="topology showing every router ACTIVE")
    confirmed = time.perf_counter() - t_kill
    alive = await _alive(bus)
    return {
        "killed_agent": victim.agent_id,
        "routers_on_killed_agent": len(moved),
        "agent_ttl_s": sizes.agent_ttl,
        "heartbeat_interval_s": sizes.heartbeat_interval,
        "seconds_to_all_active": round(total, 3),
        "kill_to_rescheduled": _spread(list(rescheduled.values())),
        "kill_to_active_per_router": _spread(list(active.values())),
        "rescheduled_to_active": _spread([active[r] - rescheduled[r] for r in moved]),
        "topology_confirmed_after_s": round(confirmed, 3),
        "cpu_seconds_until_all_active": cpu_during,
        "per_agent_after": watch.per_agent(),
        "topology_live_agents": alive,
        "target_seconds": 15,
    }


# ------------------------------------------------------------------ the run


async def _agent_metrics(agent: FleetAgent) -> dict[str, Any]:
    """The agent's reconcile counters and apply-time total, from its /metrics."""
    out: dict[str, Any] = {}
    with contextlib.suppress(OSError, TimeoutError, ValueError, IndexError):
        _, text = await agent.box.http_get(HEALTH_PORT, "/metrics")
        for line in str(text).splitlines():
            name, _, value = line.rpartition(" ")
            if name.startswith("scopenet_l3_agent_reconciles_total{"):
                out["reconciles_" + name.split('result="')[1].split('"')[0]] = int(float(value))
            elif name in ("scopenet_l3_agent_apply_seconds_sum", "scopenet_l3_agent_apply_seconds_count"):
                out[name.removeprefix("scopenet_l3_agent_")] = round(float(value), 2)
    return out


def _cpu(proc: subprocess.Popen[bytes]) -> float | None:
    with contextlib.suppress(psutil.Error):
        t = psutil.Process(proc.pid).cpu_times()
        return round(float(t.user + t.system), 2)
    return None


def _postmaster(database_url: str) -> psutil.Process | None:
    """The embedded Postgres serving ``database_url`` (a Unix socket directory named in its command
    line); None for any other server (its CPU is then not counted)."""
    sockets = parse_qs(urlsplit(database_url).query).get("host", [])
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and "-D" in cmdline and any(s in cmdline for s in sockets):
            return proc
    return None


def _cpu_all(services: dict[str, subprocess.Popen[bytes]], postmaster: psutil.Process | None) -> dict[str, float]:
    """CPU seconds so far of each service, of this process (clients, relays, the watch), of nats-server
    and of the embedded Postgres with its backends: the whole fleet's bill, which unlike elapsed time
    does not depend on what else the machine is running."""
    out = {name: cpu for name, p in services.items() if (cpu := _cpu(p)) is not None}

    def spent(procs: list[psutil.Process]) -> float:
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
        return round(total, 2)

    me = psutil.Process()
    out["bench"] = spent([me])
    out["nats"] = spent([c for c in me.children(recursive=True) if _named(c, "nats-server")])
    if postmaster is not None:
        with contextlib.suppress(psutil.Error):
            out["postgres"] = spent([postmaster, *postmaster.children(recursive=True)])
    return out


def _named(proc: psutil.Process, name: str) -> bool:
    with contextlib.suppress(psutil.Error):
        return bool(proc.name() == name)
    return False


def _cpu_since(
    services: dict[str, subprocess.Popen[bytes]], postmaster: psutil.Process | None, before: dict[str, float]
) -> dict[str, float]:
    now = _cpu_all(services, postmaster)
    spent = {name: round(now[name] - before[name], 2) for name in now if name in before}
    spent["total"] = round(sum(spent.values()), 2)
    return spent


@contextlib.asynccontextmanager
async def _nats(ep: Endpoints, own: bool, tmp: Path) -> AsyncIterator[str]:
    if not own:
        yield ep.nats_url
        return
    with nats_server(tmp / "nats") as url:
        yield url


async def run(ep: Endpoints, sizes: Sizes, *, own_nats: bool = True) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="scopenet-bench-fleet-") as tmp_name:
        tmp = Path(tmp_name)
        async with scratch_database(ep) as db_url, _nats(ep, own_nats, tmp) as nats_url:
            topo_env = {"SCOPENET_TOPOLOGY_AGENT_TTL": str(sizes.agent_ttl)}
            ipam = start_service("ipam", database_url=db_url, nats_url=nats_url)
            topo = start_service("topology", database_url=db_url, nats_url=nats_url, extra_env=topo_env)
            nc = await nats.connect(nats_url)
            watch = FleetWatch()
            try:
                async with contextlib.AsyncExitStack() as stack:
                    bus = BusClient(nc, timeout=30)
                    t0 = time.perf_counter()
                    await _ready(bus)
                    await watch.start(nc)
                    agents = [
                        await _start_agent(stack, f"fleet-agent-{n + 1}", nats_url, tmp, sizes)
                        for n in range(sizes.agents)
                    ]
                    for agent in agents:
                        await _agent_ready(agent)
                    ids = {a.agent_id for a in agents}
                    await _until(
                        lambda: _alive_all(bus, ids), timeout=60, every=0.2, what="topology hearing every agent"
                    )
                    startup = time.perf_counter() - t0
                    pids = " ".join(f"{a.agent_id}={a.proc.pid}" for a in agents)
                    _say(f"started: ipam={ipam.pid} topology={topo.pid} {pids}; making the networks and ports")
                    world = await _setup(bus, sizes)
                    services = {"ipam": ipam, "topology": topo} | {a.agent_id: a.proc for a in agents}
                    postmaster = _postmaster(db_url)
                    cold, plans = await _cold(bus, watch, world, sizes, services, postmaster)
                    failover = (
                        await _failover(bus, watch, agents, plans, sizes, services, postmaster)
                        if sizes.failover
                        else None
                    )
                    rss = {"ipam": peak_rss_mb(ipam.pid), "topology": peak_rss_mb(topo.pid)}
                    cpu = {"ipam": _cpu(ipam), "topology": _cpu(topo)}
                    metrics = {a.agent_id: await _agent_metrics(a) for a in agents if not a.killed}
                    for agent in agents:
                        rss[agent.agent_id] = agent.peak_rss_mb if agent.killed else peak_rss_mb(agent.proc.pid)
                        cpu[agent.agent_id] = None if agent.killed else _cpu(agent.proc)
                    rss["bench (clients, relays)"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
                    load_after = os.getloadavg()
            finally:
                await watch.stop()
                await nc.close()
                stop(topo)
                stop(ipam)
    return {
        "benchmark": "fleet",
        "machine": machine(),
        "infrastructure": ep.source,
        "nats": "private nats-server" if own_nats else "configured",
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
        "sizes": {"routers": sizes.routers, "ports": world.ports, "agents": sizes.agents, "clients": sizes.clients},
        "startup_seconds": round(startup, 3),
        "setup_seconds": world.seconds,
        "cold": cold,
        "failover": failover,
        "peak_rss_mb": rss,
        "cpu_seconds": cpu,
        "agent_metrics": metrics,
        "agent_errors": watch.errors[:10],
    }


async def _alive_all(bus: BusClient, ids: set[str]) -> bool:
    return ids <= set(await _alive(bus))
