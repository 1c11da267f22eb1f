"""Two IPAM processes and 64 concurrent clients on one pool: Postgres keeps allocations disjoint."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from netaddr import IPNetwork, IPSet

from scopenet.contracts.errors import DomainError, TransientError
from scopenet.infra.select import Endpoints
from tests.helpers import eventually
from tests.integration.conftest import ADMIN, Ipam
from tests.integration.procs import requests_handled, service_stats, services


async def _allocate(ipam: Ipam, pool_id: str) -> str | DomainError:
    subnet_id = str(uuid.uuid4())
    while True:  # a 503 (no replica answered in time) is retried with the same id: idempotent
        try:
            reply = await ipam(
                "subnet.allocate",
                ADMIN,
                subnet_id=subnet_id,
                network_id=str(uuid.uuid4()),
                project_id=ADMIN.project_id,
                ip_version=4,
                subnetpool_id=pool_id,
            )
            return str(reply.subnet.cidr)
        except DomainError as exc:
            return exc
        except TransientError:
            await asyncio.sleep(0.05)


@pytest.mark.timeout(120)
async def test_two_replicas_64_clients_exhaust_a_pool(ipam: Ipam, infra: Endpoints, nats_client: object) -> None:
    pool = (
        await ipam(
            "subnetpool.create",
            ADMIN,
            subnetpool={"name": "race", "prefixes": ["10.250.0.0/22"], "default_prefixlen": 28},
        )
    ).subnetpool
    capacity, asked = 64, 100  # a /22 holds 64 /28s
    with services("ipam", infra, 2) as procs:
        # Wait until both processes answer discovery, then let them (and the in-process replica,
        # in the same queue group) race for the pool.
        before = {s["id"] for s in await service_stats(nats_client, "ipam")}

        async def both_up() -> bool:
            return len({s["id"] for s in await service_stats(nats_client, "ipam")} - before) >= len(procs)

        await eventually(both_up, timeout=60)
        sem = asyncio.Semaphore(64)

        async def client() -> str | DomainError:
            async with sem:
                return await _allocate(ipam, str(pool.id))

        results = await asyncio.gather(*(client() for _ in range(asked)))
        stats = [s for s in await service_stats(nats_client, "ipam") if s["id"] not in before]
    assert len(stats) == 2 and all(requests_handled(s, "subnet-allocate") > 0 for s in stats), (
        "both replicas must have served allocations"
    )
    granted = [IPNetwork(r) for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(granted) == capacity
    assert len(refused) == asked - capacity
    assert {(e.code, e.type) for e in refused} == {(409, "SubnetAllocationError")}
    assert IPSet(granted).size == sum(n.size for n in granted), "two allocations overlap"
    assert all(n in IPNetwork("10.250.0.0/22") for n in granted)
    conn = await asyncpg.connect(infra.database_url)
    try:
        rows = await conn.fetch("SELECT cidr FROM ipam.subnets WHERE subnetpool_id = $1", pool.id)
    finally:
        await conn.close()
    assert sorted(IPNetwork(str(r["cidr"])) for r in rows) == sorted(granted)
