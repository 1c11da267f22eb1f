"""``scopenet bench ipam``: prefix and IP allocations/s through the NATS command path.

The IPAM service runs as its own process (as in production), the clients share one NATS
connection in this process. Each concurrency level allocates from one pool (prefixes) and one
subnet (addresses): the contended case, where every allocation must see every earlier one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import nats

from scopenet.bus.client import BusClient
from scopenet.commands.bench.common import drive, machine, peak_rss_mb, scratch_database, start_service, stop
from scopenet.contracts import ipam as m
from scopenet.contracts.base import CallContext, ListCommand
from scopenet.contracts.errors import TransientError
from scopenet.contracts.subjects import IPAM_ENDPOINTS, Endpoint
from scopenet.infra.select import Endpoints

ADMIN = CallContext(project_id="0" * 32, roles=["admin"])


def _ep(tail: str) -> Endpoint[Any, Any]:
    return next(e for e in IPAM_ENDPOINTS if e.subject.endswith("." + tail))


async def _wait_ready(bus: BusClient, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await bus.call(_ep("address_scope.list"), ListCommand(context=ADMIN))
            return
        except TransientError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _level(bus: BusClient, clients: int, per_level: int, index: int) -> dict[str, Any]:
    # A /8 pool handing out /28s: room for far more than any level asks for.
    pool = (
        await bus.call(
            _ep("subnetpool.create"),
            m.SubnetPoolCreate(
                context=ADMIN,
                subnetpool=m.SubnetPoolCreateBody(
                    name=f"bench-{index}", prefixes=[f"{10 + index}.0.0.0/8"], default_prefixlen=28
                ),
            ),
        )
    ).subnetpool
    alloc_ep = _ep("subnet.allocate")

    async def prefix(_: int) -> None:
        await bus.call(
            alloc_ep,
            m.SubnetAllocate(
                context=ADMIN,
                subnet_id=uuid.uuid4(),
                network_id=uuid.uuid4(),
                project_id=ADMIN.project_id,
                ip_version=4,
                subnetpool_id=pool.id,
            ),
        )

    prefixes = await drive(clients, per_level, prefix)

    subnet = (
        await bus.call(
            alloc_ep,
            m.SubnetAllocate(
                context=ADMIN,
                subnet_id=uuid.uuid4(),
                network_id=uuid.uuid4(),
                project_id=ADMIN.project_id,
                ip_version=4,
                cidr=f"172.{16 + index}.0.0/16",
            ),
        )
    ).subnet
    ip_ep = _ep("ip.allocate")

    async def address(_: int) -> None:
        await bus.call(ip_ep, m.IpAllocate(context=ADMIN, subnet_id=subnet.id, port_id=uuid.uuid4()))

    ips = await drive(clients, per_level, address)
    return {"clients": clients, "prefix_allocations": prefixes, "ip_allocations": ips}


async def run(ep: Endpoints, *, levels: list[int], per_level: int) -> dict[str, Any]:
    async with scratch_database(ep) as db_url:
        proc = start_service("ipam", database_url=db_url, nats_url=ep.nats_url)
        nc = await nats.connect(ep.nats_url)
        try:
            bus = BusClient(nc, timeout=30)
            await _wait_ready(bus)
            results = [await _level(bus, c, per_level, i) for i, c in enumerate(levels)]
            rss = peak_rss_mb(proc.pid)
        finally:
            await nc.drain()
            stop(proc)
    return {
        "benchmark": "ipam",
        "machine": machine(),
        "infrastructure": ep.source,
        "per_level": per_level,
        "levels": results,
        "service_peak_rss_mb": rss,
        "targets": {"prefix_allocations_per_s_at_32": 1000, "ip_allocations_per_s_at_32": 1500, "p99_ms": 50},
    }
