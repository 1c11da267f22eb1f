"""The agent's status reporter tells topology what changed, not what it already knows.

A periodic resync re-checks every router and almost always finds it as it was; with hundreds of
routers per agent, re-sending each unchanged status would be a stream of transactions in topology
competing with the reports that matter. Topology here is a plain NATS responder on the report
subject that counts what arrives.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from scopenet.bus.client import BusClient
from scopenet.contracts.routerspec import RouterStatusReport
from scopenet.contracts.topology import RouterStatusAck
from scopenet.services.l3_agent.reconciler import RouterStatus
from scopenet.services.l3_agent.status import REPORT_ENDPOINT, StatusReporter


async def test_an_unchanged_status_is_sent_once_a_new_one_again(nats_client: Any) -> None:
    heard: list[tuple[str, int, str]] = []

    async def topology(msg: Any) -> None:
        report = RouterStatusReport.model_validate_json(msg.data)
        heard.append((str(report.router_id), report.revision, report.status))
        await msg.respond(RouterStatusAck(router_id=report.router_id, accepted=True).model_dump_json().encode())

    sub = await nats_client.subscribe(REPORT_ENDPOINT.pattern, cb=topology)
    reporter = StatusReporter(BusClient(nats_client, timeout=5), agent_id=f"agent-{uuid.uuid4().hex[:6]}")
    task = asyncio.create_task(reporter.run())
    routers = [str(uuid.uuid4()) for _ in range(20)]
    try:
        for rid in routers:
            reporter.submit(RouterStatus(rid, 3, "ACTIVE"))
        assert await reporter.drained(5)
        assert sorted(heard) == sorted((rid, 3, "ACTIVE") for rid in routers)

        for _ in range(3):  # three resyncs: every router as it was
            for rid in routers:
                reporter.submit(RouterStatus(rid, 3, "ACTIVE"))
            assert await reporter.drained(5)
        assert len(heard) == 20

        reporter.submit(RouterStatus(routers[0], 4, "ACTIVE"))  # a new revision applied
        reporter.submit(RouterStatus(routers[1], 3, "ERROR", "nft: No such file"))  # the kernel lost something
        assert await reporter.drained(5)
        reporter.submit(RouterStatus(routers[1], 3, "ACTIVE"))  # repaired: topology must hear ACTIVE again
        assert await reporter.drained(5)
        assert heard[20:] == [(routers[0], 4, "ACTIVE"), (routers[1], 3, "ERROR"), (routers[1], 3, "ACTIVE")]
    finally:
        task.cancel()
        await sub.unsubscribe()
