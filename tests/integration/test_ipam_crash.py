"""kill -9 an IPAM process under load: the database stays consistent and every committed change
has exactly one event in JetStream (the outbox re-publishes, Nats-Msg-Id drops the duplicates)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import asyncpg
import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, DeliverPolicy

from scopenet.bus.client import BusClient
from scopenet.bus.jetstream import publish
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.infra.select import Endpoints
from tests.helpers import eventually
from tests.integration.conftest import ADMIN, Ipam
from tests.integration.procs import ServiceProcess, service_stats


async def _events(js: Any, subject: str) -> list[dict[str, Any]]:
    sub = await js.pull_subscribe(
        subject, durable=None, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=30)
    )
    out: list[dict[str, Any]] = []
    while True:
        try:
            msgs = await sub.fetch(500, timeout=1)
        except NatsTimeout:
            break
        for msg in msgs:
            out.append(json.loads(msg.data))
            await msg.ack()
    await sub.unsubscribe()
    return out


@pytest.mark.timeout(180)
async def test_kill9_under_load_loses_and_doubles_nothing(ipam: Ipam, infra: Endpoints, nats_client: Any) -> None:
    pool = (
        await ipam(
            "subnetpool.create",
            ADMIN,
            subnetpool={"name": "crash", "prefixes": ["10.240.0.0/16"], "default_prefixlen": 28},
        )
    ).subnetpool
    fast = Ipam(BusClient(nats_client, timeout=1.0))  # a dead replica must not stall clients for long
    granted: dict[str, str] = {}
    victim = ServiceProcess("ipam", infra).start()
    before = {s["id"] for s in await service_stats(nats_client, "ipam")}

    async def victim_up() -> bool:
        return bool({s["id"] for s in await service_stats(nats_client, "ipam")} - before)

    await eventually(victim_up, timeout=60)
    stop_at = time.monotonic() + 4.0

    async def client() -> None:
        while time.monotonic() < stop_at:
            subnet_id, network_id = str(uuid.uuid4()), str(uuid.uuid4())
            for _ in range(100):  # retried with the very same request until answered: idempotent
                try:
                    reply = await fast(
                        "subnet.allocate",
                        ADMIN,
                        subnet_id=subnet_id,
                        network_id=network_id,
                        project_id=ADMIN.project_id,
                        ip_version=4,
                        subnetpool_id=str(pool.id),
                    )
                    granted[subnet_id] = str(reply.subnet.cidr)
                    break
                except TransientError:
                    await asyncio.sleep(0.05)
                except DomainError as exc:
                    raise AssertionError(f"unexpected refusal: {exc.type}: {exc.message}") from exc

    async def chaos() -> None:
        for _ in range(2):
            await asyncio.sleep(random.uniform(0.5, 1.2))
            victim.kill9()
            victim.start()

    try:
        await asyncio.gather(chaos(), *(client() for _ in range(16)))
    finally:
        victim.stop()
    assert len(granted) > 50, "the load did not run"

    conn = await asyncpg.connect(infra.database_url)
    try:

        async def drained() -> bool:
            return await conn.fetchval("SELECT count(*) FROM ipam.outbox") == 0

        await eventually(drained, timeout=30)
        rows = {
            str(r["id"]): str(r["cidr"])
            for r in await conn.fetch("SELECT id, cidr FROM ipam.subnets WHERE subnetpool_id = $1", pool.id)
        }
    finally:
        await conn.close()
    assert rows == granted, "every answered allocation is a row, and every row was answered"
    events = [
        e
        for e in await _events(nats_client.jetstream(), "scopenet.v1.evt.subnet.created")
        if e["resource"]["subnetpool_id"] == str(pool.id)
    ]
    ids = [e["resource"]["id"] for e in events]
    assert sorted(ids) == sorted(rows), "exactly one subnet.created event per committed allocation"


async def test_republished_event_is_dropped_as_duplicate(nats_client: Any) -> None:
    """The relay's crash window (published, not yet deleted): the second publish is a duplicate."""
    js = nats_client.jetstream()
    event_id = str(uuid.uuid4())
    subject = "scopenet.v1.evt.test.probe"  # no consumer listens here
    payload = json.dumps({"probe": event_id}).encode()
    assert await publish(js, subject, payload, msg_id=event_id) is True
    assert await publish(js, subject, payload, msg_id=event_id) is False
    seen = [e for e in await _events(js, subject) if e.get("probe") == event_id]
    assert len(seen) == 1
