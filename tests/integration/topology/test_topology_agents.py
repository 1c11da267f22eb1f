"""Scheduling on live agents (KV heartbeats), status reports, and consumers that survive bad input."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from nats.js.api import ConsumerConfig, DeliverPolicy

from scopenet.bus.client import decode_error
from tests.helpers import eventually
from tests.integration.conftest import ADMIN, fails
from tests.integration.topology.conftest import AGENT, Build, Heartbeats, SpecWatch, Topo, last_spec, project


async def test_scheduling_failover_and_status(
    topo: Topo, mk: Build, agents: Heartbeats, spec_watch: SpecWatch, nats_client: Any
) -> None:
    alice = project()
    spare = f"spare-{uuid.uuid4().hex[:6]}"
    await agents.start(spare)
    await eventually(lambda: _alive(topo, spare))
    router = await mk.router(alice)
    assert router.status == "PENDING"
    spec = await spec_watch.wait_for(lambda s: s["router_id"] == str(router.id))
    host = spec["agent_id"]
    assert host == spare  # least loaded: the spare has no router yet
    report = {"router_id": str(router.id), "agent_id": host, "revision": spec["revision"], "status": "ACTIVE"}
    ack = await topo("router_status.report", ADMIN, **report)
    assert ack.accepted
    assert (await topo("router.get", alice, id=str(router.id))).router.status == "ACTIVE"
    await fails(topo("router_status.report", alice, **report), 403, "PolicyNotAuthorized")
    stranger = await topo("router_status.report", ADMIN, **{**report, "agent_id": "someone-else", "status": "ERROR"})
    assert not stranger.accepted
    err = await topo("router_status.report", ADMIN, **{**report, "status": "ERROR", "reason": "nft: syntax error"})
    assert err.accepted
    r = (await topo("router.get", alice, id=str(router.id))).router
    assert (r.status, r.status_reason) == ("ERROR", "nft: syntax error")
    # the spare dies: its router moves to the surviving agent, the old subject says "gone"
    seen = len(spec_watch.specs)
    agents.stop(spare)
    moved = await spec_watch.wait_for(
        lambda s: s["router_id"] == str(router.id) and s["agent_id"] == AGENT, timeout=15, since=seen
    )
    gone = await last_spec(nats_client.jetstream(), spare, router.id)
    assert gone is not None and gone["present"] is False and gone["revision"] >= spec["revision"]
    assert moved["revision"] > spec["revision"]
    assert (await topo("router.get", alice, id=str(router.id))).router.status == "PENDING"

    # Every topology replica judges liveness from the same heartbeats with its own TTL (the session runs
    # several, some with the default 10 s), so the listing converges rather than flipping at once.
    async def listing_converged() -> bool:
        listed = {a.agent_id: a for a in (await topo("agent.list", ADMIN)).agents}
        return listed[AGENT].alive and not listed[spare].alive

    await eventually(listing_converged, timeout=20)
    await fails(topo("agent.list", alice), 403, "PolicyNotAuthorized")
    # deleting the router tells its agent to drop it
    await topo("router.delete", alice, id=str(router.id))
    await spec_watch.wait_for(lambda s: s["router_id"] == str(router.id) and s["present"] is False)


async def _alive(topo: Topo, agent: str) -> bool:
    return any(a.agent_id == agent and a.alive for a in (await topo("agent.list", ADMIN)).agents)


async def test_malformed_and_unknown_events_are_dead_lettered(topo: Topo, mk: Build, nats_client: Any) -> None:
    js = nats_client.jetstream()
    dlq = await js.pull_subscribe(
        "scopenet.v1.dlq.topology-subnetpools",
        durable=None,
        stream="SCOPENET_DLQ",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, inactive_threshold=30),
    )
    await js.publish(
        "scopenet.v1.evt.subnetpool.updated", b'{"id": "not-a-uuid"}', headers={"Nats-Msg-Id": uuid.uuid4().hex}
    )
    await js.publish(
        "scopenet.v1.evt.subnetpool.exploded", b"\xff\xfe garbage", headers={"Nats-Msg-Id": uuid.uuid4().hex}
    )
    letters = []
    async with asyncio.timeout(10):
        while len(letters) < 2:
            for msg in await dlq.fetch(2, timeout=5):
                letters.append(json.loads(msg.data))
                await msg.ack()
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons[0].startswith("malformed event:") and "id" in reasons[0]
    assert reasons[1] == "unknown event subject scopenet.v1.evt.subnetpool.exploded"
    assert {letter["subject"] for letter in letters} == {
        "scopenet.v1.evt.subnetpool.updated",
        "scopenet.v1.evt.subnetpool.exploded",
    }
    # the consumer is still alive: a real rescope after the garbage still reaches topology
    alice = project()
    sa, sb = await mk.scope(4), await mk.scope(4)
    pool = await mk.pool(["100.90.0.0/16"], scope=sa, default_prefixlen=24)
    net = await mk.network(alice)
    await mk.subnet(alice, net, pool=pool)
    await mk.ipam("subnetpool.update", ADMIN, id=str(pool.id), subnetpool={"address_scope_id": str(sb.id)})

    async def rescoped() -> bool:
        return (await topo("network.get", alice, id=str(net.id))).network.ipv4_address_scope == sb.id

    await eventually(rescoped)


async def test_malformed_commands_get_error_replies(topo: Topo) -> None:
    await fails(topo.unchecked("network.create", None, network={}), 400, "HTTPBadRequest", "context")
    await fails(topo.unchecked("router.add_router_interface", project(), id="nope"), 400, "HTTPBadRequest", "id")
    _, headers = await topo.bus.call_raw("scopenet.v1.topology.port.create", b"{not json")
    assert headers["Nats-Service-Error-Code"] == "400"
    unknown = await topo(
        "router_status.report", ADMIN, router_id=str(uuid.uuid4()), agent_id="a", revision=1, status="ACTIVE"
    )
    assert unknown.accepted is False
    await fails(
        topo.unchecked(
            "router_status.report", ADMIN, router_id=str(uuid.uuid4()), agent_id="a", revision=1, status="HAPPY"
        ),
        400,
        "HTTPBadRequest",
        "status",
    )
    # A report is sent on its agent's own subject; one naming another agent is refused, not believed.
    forged = {"context": ADMIN.model_dump(), "router_id": str(uuid.uuid4()), "agent_id": "b", "revision": 1}
    data, headers = await topo.bus.call_raw(
        "scopenet.v1.topology.router_status.report.a", json.dumps({**forged, "status": "ACTIVE"}).encode()
    )
    err = decode_error(data, headers)
    assert (err.code, err.type, getattr(err, "field", None)) == (403, "PolicyNotAuthorized", "agent_id"), err
