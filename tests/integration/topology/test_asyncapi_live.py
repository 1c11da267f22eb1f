"""proto/asyncapi.json against the running services: what IPAM and topology announce on ``$SRV.INFO``
is exactly the document's receive operations, and every message they publish on the streams while
a user builds a routed network (events, RouterSpecs, a BGP speaker spec) is on one of the
document's channels, with headers and body valid against that channel's message."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from nats.js.api import DeliverPolicy

from scopenet.contracts import cloudevents
from scopenet.contracts.subjects import ALL_EVENTS
from tests.integration.conftest import ADMIN, Ipam
from tests.integration.topology.conftest import AGENT, Build, Heartbeats, Topo, project

PROTO = Path(__file__).resolve().parents[3] / "proto"
DOC: dict[str, Any] = json.loads((PROTO / "asyncapi.json").read_text())


def _resolve(ref: dict[str, str]) -> Any:
    """What a local ``$ref`` points at (following a chain of them: operation → channel → component)."""
    node: Any = DOC
    for part in ref["$ref"].removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return _resolve(node) if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/") else node


def _subject_pattern(address: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^.]+", re.escape(address)) + "$")


def _announced_by_document(service: str) -> set[tuple[str, str, str, str, str]]:
    """(endpoint name, subject, queue group, request schema, reply schema) per receive operation."""
    out = set()
    for op in DOC["operations"].values():
        if op["action"] != "receive" or op["x-scopenet-service"] != service:
            continue
        address = re.sub(r"\{[^}]+\}", "*", _resolve(op["channel"])["address"])
        request = _resolve(op["messages"][0])["payload"]["$ref"]
        reply = _resolve(op["reply"]["messages"][0])["payload"]["$ref"]
        queue = op["bindings"]["nats"]["queue"]
        out.add((op["x-scopenet-endpoint"], address, queue, f"proto/{request}", f"proto/{reply}"))
    return out


@pytest.mark.parametrize("service", ["ipam", "topology"])
async def test_srv_info_is_the_documents_receive_operations(
    service: str, topology_running: Any, nats_client: Any
) -> None:
    reply = await nats_client.request(f"$SRV.INFO.{service}", b"", timeout=5)
    info = json.loads(reply.data)
    announced = {
        (
            ep["name"],
            ep["subject"],
            ep["queue_group"],
            ep["metadata"]["request_schema"],
            ep["metadata"]["reply_schema"],
        )
        for ep in info["endpoints"]
    }
    documented = _announced_by_document(service)
    assert len(announced) == len(info["endpoints"]) > 10
    assert announced == documented, {
        "announced, not documented": sorted(announced - documented),
        "documented, not announced": sorted(documented - announced),
    }


def test_event_channels_are_the_catalogue() -> None:
    """The code emits events only through ``subjects.event(resource, action)``, which refuses any
    type outside ``ALL_EVENTS``: that catalogue is what the document's event channels list."""
    documented = {
        (_resolve(op["channel"])["address"], _resolve(op["messages"][0])["name"])
        for op in DOC["operations"].values()
        if _resolve(op["channel"]).get("x-scopenet-stream") == "SCOPENET_EVENTS"
    }
    assert documented == {(ev.subject, ev.type) for ev in ALL_EVENTS}


class StreamTap:
    """Every message published on a stream from the moment the tap opens, with its headers."""

    def __init__(self, js: Any, stream: str, subjects: str) -> None:
        self.js, self.stream, self.subjects = js, stream, subjects
        self.messages: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self._sub: Any = None

    async def __aenter__(self) -> StreamTap:
        self._sub = await self.js.subscribe(
            self.subjects, stream=self.stream, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW, cb=self._on
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._sub.unsubscribe()

    async def _on(self, msg: Any) -> None:
        self.messages.append((msg.subject, dict(msg.headers or {}), msg.data))
        self.arrived.set()


def _check_against_document(subject: str, headers: dict[str, str], data: bytes) -> str:
    """The channel ``subject`` is on; its message's header and payload schemas hold. Returns the ce-type."""
    channels = [c for c in DOC["channels"].values() if c["address"] and _subject_pattern(c["address"]).match(subject)]
    assert len(channels) == 1, f"{subject}: on {len(channels)} channels of the document"
    message = _resolve(next(iter(channels[0]["messages"].values())))
    jsonschema.validate(headers, message["headers"], format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    payload_schema = json.loads((PROTO / message["payload"]["$ref"]).read_text())
    jsonschema.validate(json.loads(data), payload_schema)
    ce = cloudevents.parse(headers, data)
    assert ce.id == headers["Nats-Msg-Id"] and ce.type == message["x-cloudevents-type"]
    assert ce.schema_path == message["payload"]["$ref"]
    return ce.type


async def test_published_messages_are_on_the_documents_channels(
    mk: Build, topo: Topo, ipam: Ipam, agents: Heartbeats, nats_client: Any
) -> None:
    js = nats_client.jetstream()
    alice = project()
    async with (
        StreamTap(js, "SCOPENET_EVENTS", "scopenet.v1.evt.>") as events,
        StreamTap(js, "SCOPENET_ROUTERS", f"scopenet.v1.agent.{AGENT}.router.*") as specs,
        StreamTap(js, "SCOPENET_BGP", "scopenet.v1.bgp.speaker.*") as bgp,
    ):
        scope = await mk.scope(4)
        pool = await mk.pool(["100.96.0.0/16"], scope=scope, default_prefixlen=24)
        net = await mk.network(alice)
        subnet = await mk.subnet(alice, net, pool=pool)
        router = await mk.router(alice)
        await mk.attach(alice, router, subnet)
        await topo("router.update", alice, id=str(router.id), router={"name": "renamed"})
        await mk.port(alice, net)
        speaker = await topo("bgp_speaker.create", ADMIN, bgp_speaker={"local_as": 64512, "ip_version": 4})
        await topo("bgp_speaker.delete", ADMIN, id=str(speaker.bgp_speaker.id))
        await topo("network.update", alice, id=str(net.id), network={"description": "d"})

        def seen() -> bool:
            rid = str(router.id)
            return (
                any(json.loads(d)["router_id"] == rid and json.loads(d)["interfaces"] for _, _, d in specs.messages)
                and any(s.endswith(".network.updated") and str(net.id) in d.decode() for s, _, d in events.messages)
                and len(bgp.messages) >= 2
            )

        async with asyncio.timeout(20):
            while not seen():
                for tap in (events, specs, bgp):
                    tap.arrived.clear()
                waits = [asyncio.create_task(tap.arrived.wait()) for tap in (events, specs, bgp)]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()

    types = {_check_against_document(s, h, d) for tap in (events, specs, bgp) for s, h, d in tap.messages}
    expected = {
        "org.scopenet.ipam.address_scope.created.v1",
        "org.scopenet.ipam.subnetpool.created.v1",
        "org.scopenet.ipam.subnet.created.v1",
        "org.scopenet.ipam.ip_allocation.created.v1",
        "org.scopenet.topology.network.created.v1",
        "org.scopenet.topology.network.updated.v1",
        "org.scopenet.topology.topology_subnet.created.v1",
        "org.scopenet.topology.router.created.v1",
        "org.scopenet.topology.router.updated.v1",
        "org.scopenet.topology.port.created.v1",
        "org.scopenet.topology.router_spec.v1",
        "org.scopenet.topology.bgp_speaker_spec.v1",
    }
    assert expected <= types, sorted(expected - types)
