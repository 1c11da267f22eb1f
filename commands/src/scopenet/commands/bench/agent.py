"""``scopenet bench agent``: the L3 agent's RouterSpec → kernel latency, cold start and peak RSS.

Everything runs in an ``AgentSandbox`` (``sandbox.py``), never on the machine's own network: a
private network and mount namespace held by this process, with the agent's host namespace
``host`` inside; the agent — the real ``scopenet service l3-agent`` process — runs entirely in it
and reaches NATS through a relay on the sandbox's loopback (one extra local hop, included in the
figures). Every namespace, bridge and veth it makes disappears with the sandbox.

NATS is a throwaway nats-server in a temporary directory (the bench publishes RouterSpecs and must
not do that on a live stack). The bench plays topology: it creates the RouterSpec stream and the
heartbeat bucket as topology does, publishes the specs, and answers ``router_status.report``;
"applied" is the agent's ACTIVE report for that revision (sent right after the kernel accepted the
last change of the plan).

- cold start: ``--routers`` specs (the seed's router1 shape: a gateway and two interfaces, IPv4 and
  IPv6, scoped and unscoped, a namespace, three veths, two bridges of its own) are in the stream
  before the agent starts; timed from the process start to the last router's ACTIVE report;
- updates: one at a time, a random router gets a floating IP (or loses it): a new revision, a new
  nftables table and an address. Timed from the publish to the ACTIVE report of that revision;
- peak RSS: the agent process's high-water mark (VmHWM) at the end;
- teardown: every router's ``present=false``, until no router namespace is left.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats

from scopenet.commands.bench.common import machine, peak_rss_mb
from scopenet.commands.bench.sandbox import AgentSandbox
from scopenet.contracts.routerspec import (
    FloatingIp,
    Gateway,
    PortAddress,
    RouterPort,
    RouterSpec,
    RouterStatusReport,
    Scope,
    router_subject,
)
from scopenet.contracts.topology import RouterStatusAck
from scopenet.datapath import names
from scopenet.infra.embedded import nats_server
from scopenet.infra.processes import start_service, stop_async
from scopenet.services.topology.agents.heartbeats import agents_bucket
from scopenet.services.topology.app import routers_stream_config

AGENT = "bench-agent"
HOST = "host"
REPORT_SUBJECT = "scopenet.v1.topology.router_status.report.*"  # each agent reports on its own subject
SCOPE_A = Scope(id=uuid.UUID("a0000000-0000-4000-8000-00000000000a"), mark_id=1025)
SCOPE_A6 = Scope(id=uuid.UUID("a0000000-0000-4000-8000-0000000000a6"), mark_id=1026)


def _addr(ip: str, prefixlen: int, gateway: str | None = None) -> PortAddress:
    cidr = f"{ip}/{prefixlen}"
    net = str(ipaddress.ip_interface(cidr).network)
    return PortAddress(
        ip_address=ip, prefixlen=prefixlen, subnet_id=uuid.uuid5(uuid.NAMESPACE_URL, net), cidr=net, gateway_ip=gateway
    )


def router_spec(i: int, *, revision: int = 1, floating_ip: bool = False) -> RouterSpec:
    """Router ``i``: the seed's router1 on networks of its own (the external network is shared)."""
    rid = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-router-{i}")
    hi, lo = divmod(i, 256)
    gateway = Gateway(
        port_id=uuid.uuid5(rid, "gw"),
        mac_address=f"fa:16:3e:00:{hi:02x}:{lo:02x}",
        network_id=uuid.uuid5(uuid.NAMESPACE_URL, "bench-ext"),
        segmentation_id=1000,
        addresses=[
            _addr(f"100.64.{1 + hi}.{lo}", 16, "100.64.0.1"),
            _addr(f"2001:db8:ffff::{i + 2:x}", 64, "2001:db8:ffff::1"),
        ],
        scope_v4=SCOPE_A,
        scope_v6=SCOPE_A6,
    )
    net1 = RouterPort(
        port_id=uuid.uuid5(rid, "net1"),
        mac_address=f"fa:16:3e:01:{hi:02x}:{lo:02x}",
        network_id=uuid.uuid5(rid, "network1"),
        segmentation_id=2000 + 2 * i,
        addresses=[_addr(f"10.{1 + hi}.{lo}.1", 24), _addr(f"fd01:{i:x}::1", 64)],
    )
    net2 = RouterPort(
        port_id=uuid.uuid5(rid, "net2"),
        mac_address=f"fa:16:3e:02:{hi:02x}:{lo:02x}",
        network_id=uuid.uuid5(rid, "network2"),
        segmentation_id=2001 + 2 * i,
        addresses=[_addr(f"10.{101 + hi}.{lo}.1", 24), _addr(f"fd02:{i:x}::1", 64)],
        scope_v4=SCOPE_A,
        scope_v6=SCOPE_A6,
    )
    fips = [
        FloatingIp(
            id=uuid.uuid5(rid, "fip"),
            floating_ip_address=f"100.65.{hi}.{lo}",
            fixed_ip_address=f"10.{1 + hi}.{lo}.3",
            port_id=uuid.uuid5(rid, "inst1"),
        )
    ]
    return RouterSpec(
        router_id=rid,
        revision=revision,
        agent_id=AGENT,
        gateway=gateway,
        interfaces=[net1, net2],
        floating_ips=fips if floating_ip else [],
    )


class Topology:
    """The bench's stand-in for topology: records the agent's status reports and acks them."""

    def __init__(self) -> None:
        self.active: dict[tuple[str, int], float] = {}
        self.errors: list[str] = []
        self._waiters: dict[tuple[str, int], asyncio.Future[float]] = {}

    async def on_report(self, msg: Any) -> None:
        now = time.perf_counter()
        report = RouterStatusReport.model_validate_json(msg.data)
        key = (str(report.router_id), report.revision)
        if report.status == "ACTIVE":
            self.active.setdefault(key, now)
            waiter = self._waiters.pop(key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(now)
        elif report.status == "ERROR":
            self.errors.append(f"{report.router_id}@{report.revision}: {report.reason}")
        await msg.respond(RouterStatusAck(router_id=report.router_id, accepted=True).model_dump_json().encode())

    def applied(self, router_id: str, revision: int) -> asyncio.Future[float]:
        key = (router_id, revision)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if key in self.active:
            future.set_result(self.active[key])
        else:
            self._waiters[key] = future
        return future


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def _start_agent(box: AgentSandbox, nats_url: str, state: Path) -> subprocess.Popen[bytes]:
    env = {
        "SCOPENET_NATS_URL": nats_url,
        "SCOPENET_STATE_DIR": str(state),
        "SCOPENET_AGENT_ID": AGENT,
        "SCOPENET_AGENT_HOST_NETNS": box.host,
        "SCOPENET_HEALTH_PORT": "9697",  # on the sandbox's own loopback
        "SCOPENET_LOG_LEVEL": "warning",
    }
    return start_service("l3-agent", env=env, log=state / "agent.log", inherit_scopenet=False, spawn=box.spawn)


async def _stop(agent: subprocess.Popen[bytes]) -> None:
    await stop_async([agent], timeout=15)  # the loop keeps relaying its last messages meanwhile


async def _routers_in_kernel(box: AgentSandbox) -> int:
    return len(await box.ns.run(lambda: box.ns.names(names.NAMESPACE_PREFIX)))


async def run(*, routers: int, updates: int, seed: int = 5) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="scopenet-bench-agent-") as tmp, nats_server(Path(tmp) / "nats") as url:
        state = Path(tmp) / "agent"
        state.mkdir()
        async with AgentSandbox() as box:
            inside = await box.expose(url)
            nc = await nats.connect(url)
            topology = Topology()
            agent: subprocess.Popen[bytes] | None = None
            try:
                js = nc.jetstream()
                await js.add_stream(routers_stream_config())
                await agents_bucket(js, 10.0)
                await nc.subscribe(REPORT_SUBJECT, cb=topology.on_report)
                specs = {i: router_spec(i) for i in range(routers)}
                for spec in specs.values():
                    await _publish(js, spec)

                t0 = time.perf_counter()
                agent = _start_agent(box, inside, state)
                waits = [topology.applied(str(s.router_id), s.revision) for s in specs.values()]
                done = await asyncio.wait_for(asyncio.gather(*waits), timeout=max(60.0, routers * 0.5))
                cold = max(done) - t0
                in_kernel = await _routers_in_kernel(box)

                latencies: list[float] = []
                for _ in range(updates):
                    i = rng.randrange(routers)
                    old = specs[i]
                    spec = router_spec(i, revision=old.revision + 1, floating_ip=not old.floating_ips)
                    specs[i] = spec
                    waiter = topology.applied(str(spec.router_id), spec.revision)
                    sent = time.perf_counter()
                    await _publish(js, spec)
                    latencies.append(await asyncio.wait_for(waiter, timeout=10) - sent)
                rss = peak_rss_mb(agent.pid)

                t1 = time.perf_counter()
                for spec in specs.values():
                    gone = spec.model_copy(update={"present": False, "revision": spec.revision + 1})
                    await _publish(js, gone)
                while left := await _routers_in_kernel(box):
                    if time.perf_counter() - t1 > max(60.0, routers * 1.0):
                        raise TimeoutError(f"{left} routers still in the kernel")
                    await asyncio.sleep(0.05)
                teardown = time.perf_counter() - t1
            finally:
                if agent is not None:
                    await _stop(agent)
                await nc.close()
    return {
        "machine": machine(),
        "routers": routers,
        "cold_start": {
            "seconds_to_all_applied": round(cold, 3),
            "per_router_ms": round(cold / routers * 1000, 2) if routers else None,
            "router_namespaces": in_kernel,
            "target_seconds": 10,
        },
        "update": {
            "count": len(latencies),
            "what": "one router at a time: a floating IP added or removed (nft table + an address)",
            "p50_ms": _pct(latencies, 0.50) if latencies else None,
            "p99_ms": _pct(latencies, 0.99) if latencies else None,
            "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
            "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
            "target_p99_ms": 50,
        },
        "teardown_seconds": round(teardown, 3),
        "agent_peak_rss_mb": rss,
        "target_rss_mb": 150,
        "errors": topology.errors[:5],
    }


async def _publish(js: Any, spec: RouterSpec) -> None:
    await js.publish(
        router_subject(AGENT, spec.router_id),
        spec.model_dump_json().encode(),
        headers={"Nats-Msg-Id": f"{spec.router_id}-{spec.revision}"},
    )
