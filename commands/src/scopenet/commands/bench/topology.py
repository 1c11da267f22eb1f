"""``scopenet bench topology``: port and subnet creations/s through the NATS command path, and the
latency from a pool changing scope in IPAM to the updated RouterSpec on the routers stream.

IPAM and topology run as their own processes (as in production); the clients share one NATS
connection in this process. Ports are all created on one network with one /16 (the contended case:
every address comes from one subnet); subnets come from one pool, spread over 64 networks.

The machine is shared, so besides rates and latencies the report carries what does not depend on
the neighbours: the CPU time the IPAM and topology processes spent per creation, and the load
average around the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import psutil

from scopenet.bus.client import BusClient
from scopenet.commands.bench.common import drive, machine, peak_rss_mb, scratch_database, start_service, stop
from scopenet.contracts import ipam as m
from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext, ListCommand
from scopenet.contracts.errors import TransientError
from scopenet.contracts.routerspec import AGENTS_BUCKET, AgentHeartbeat
from scopenet.contracts.subjects import ALL_ENDPOINTS, Endpoint
from scopenet.infra.select import Endpoints

ADMIN = CallContext(project_id="0" * 32, roles=["admin"])
AGENT = "bench-agent"


def _ep(service: str, tail: str) -> Endpoint[Any, Any]:
    return next(e for e in ALL_ENDPOINTS if e.service == service and e.subject.endswith("." + tail))


async def _wait_ready(bus: BusClient, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for service, tail in (("ipam", "address_scope.list"), ("topology", "network.list")):
        while True:
            try:
                await bus.call(_ep(service, tail), ListCommand(context=ADMIN))
                break
            except TransientError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def _network(bus: BusClient) -> t.Network:
    reply = await bus.call(_ep("topology", "network.create"), t.NetworkCreate(context=ADMIN, network={}))
    return reply.network  # type: ignore[no-any-return]


async def _subnet(bus: BusClient, network: t.Network, **body: Any) -> t.Subnet:
    cmd = t.SubnetCreate(context=ADMIN, subnet=t.SubnetCreateBody(network_id=network.id, **body))
    return (await bus.call(_ep("topology", "subnet.create"), cmd)).subnet  # type: ignore[no-any-return]


Services = dict[str, psutil.Process]


def _cpu(services: Services) -> dict[str, float]:
    out = {}
    for name, proc in services.items():
        times = proc.cpu_times()
        out[name] = times.user + times.system
    return out


async def _measured(
    services: Services, clients: int, total: int, op: Callable[[int], Awaitable[None]]
) -> dict[str, Any]:
    """``drive`` plus the CPU milliseconds each service process spent per operation."""
    before = _cpu(services)
    result = await drive(clients, total, op)
    after = _cpu(services)
    done = max(1, result["operations"])
    result["service_cpu_ms_per_op"] = {n: round((after[n] - before[n]) * 1000 / done, 3) for n in services}
    return result


async def _level(bus: BusClient, clients: int, per_level: int, index: int, services: Services) -> dict[str, Any]:
    net = await _network(bus)
    await _subnet(bus, net, ip_version=4, cidr=f"172.{16 + index}.0.0/16")
    port_ep = _ep("topology", "port.create")

    async def port(_: int) -> None:
        await bus.call(port_ep, t.PortCreate(context=ADMIN, port=t.PortCreateBody(network_id=net.id)))

    ports = await _measured(services, clients, per_level, port)
    pool = (
        await bus.call(
            _ep("ipam", "subnetpool.create"),
            m.SubnetPoolCreate(
                context=ADMIN,
                subnetpool=m.SubnetPoolCreateBody(
                    name=f"bench-{index}", prefixes=[f"{10 + index}.0.0.0/8"], default_prefixlen=28
                ),
            ),
        )
    ).subnetpool
    nets = [await _network(bus) for _ in range(64)]

    async def subnet(i: int) -> None:
        await _subnet(bus, nets[i % len(nets)], ip_version=4, subnetpool_id=pool.id)

    subnets = await _measured(services, clients, per_level, subnet)
    return {"clients": clients, "port_creations": ports, "subnet_creations": subnets}


async def _rescope_latency(bus: BusClient, nc: Any, changes: int) -> dict[str, Any]:
    """Pool moves between two scopes; time from the IPAM command to the spec on the stream."""
    js = nc.jetstream()
    kv = await js.key_value(AGENTS_BUCKET)
    beat = AgentHeartbeat(agent_id=AGENT, host="bench", routers=0, started_at="now").model_dump_json().encode()
    await kv.put(AGENT, beat)
    scopes = [
        (
            await bus.call(
                _ep("ipam", "address_scope.create"),
                m.AddressScopeCreate(context=ADMIN, address_scope=m.AddressScopeCreateBody(name=f"s{i}", ip_version=4)),
            )
        ).address_scope
        for i in range(2)
    ]
    pool = (
        await bus.call(
            _ep("ipam", "subnetpool.create"),
            m.SubnetPoolCreate(
                context=ADMIN,
                subnetpool=m.SubnetPoolCreateBody(
                    name="rescope", prefixes=["100.64.0.0/16"], default_prefixlen=24, address_scope_id=scopes[0].id
                ),
            ),
        )
    ).subnetpool
    net = await _network(bus)
    sub = await _subnet(bus, net, ip_version=4, subnetpool_id=pool.id)
    router = (
        await bus.call(_ep("topology", "router.create"), t.RouterCreate(context=ADMIN, router=t.RouterCreateBody()))
    ).router
    await bus.call(
        _ep("topology", "router.add_router_interface"),
        t.RouterInterface(context=ADMIN, id=router.id, subnet_id=sub.id),
    )
    arrived: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

    async def on_spec(msg: Any) -> None:
        await arrived.put((time.perf_counter(), json.loads(msg.data)))

    sub_ = await nc.subscribe(f"scopenet.v1.agent.*.router.{router.id}", cb=on_spec)
    lags: list[float] = []
    try:
        for i in range(changes):
            await kv.put(AGENT, beat)
            target = scopes[(i + 1) % 2]
            t0 = time.perf_counter()
            await bus.call(
                _ep("ipam", "subnetpool.update"),
                m.SubnetPoolUpdate(
                    context=ADMIN, id=pool.id, subnetpool=m.SubnetPoolUpdateBody(address_scope_id=target.id)
                ),
            )
            while True:
                when, spec = await asyncio.wait_for(arrived.get(), timeout=10)
                ifaces = spec.get("interfaces") or []
                if ifaces and ifaces[0]["scope_v4"]["id"] == str(target.id):
                    lags.append(when - t0)
                    break
    finally:
        await sub_.unsubscribe()
    lags.sort()

    def pct(p: float) -> float:
        return round(lags[min(len(lags) - 1, int(p * len(lags)))] * 1000, 2)

    return {"changes": len(lags), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(lags[-1] * 1000, 2)}


async def run(ep: Endpoints, *, levels: list[int], per_level: int, rescopes: int = 50) -> dict[str, Any]:
    async with scratch_database(ep) as db_url:
        ipam = start_service("ipam", database_url=db_url, nats_url=ep.nats_url)
        topo = start_service("topology", database_url=db_url, nats_url=ep.nats_url)
        nc = await nats.connect(ep.nats_url)
        load_before = os.getloadavg()
        try:
            bus = BusClient(nc, timeout=30)
            await _wait_ready(bus)
            services = {"ipam": psutil.Process(ipam.pid), "topology": psutil.Process(topo.pid)}
            results = [await _level(bus, c, per_level, i, services) for i, c in enumerate(levels)]
            rescope = await _rescope_latency(bus, nc, rescopes)
            rss = {"ipam": peak_rss_mb(ipam.pid), "topology": peak_rss_mb(topo.pid)}
            load_after = os.getloadavg()
        finally:
            await nc.drain()
            stop(topo)
            stop(ipam)
    return {
        "benchmark": "topology",
        "machine": machine(),
        "infrastructure": ep.source,
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
        "per_level": per_level,
        "levels": results,
        "pool_rescope_to_router_spec": rescope,
        "service_peak_rss_mb": rss,
        "targets": {"ports_per_s": 800, "subnets_per_s": 500, "p99_ms": 50, "rescope_to_spec_p99_ms": 100},
    }
