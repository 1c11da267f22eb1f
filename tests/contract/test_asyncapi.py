"""proto/asyncapi.json is a valid AsyncAPI 3.0 document to the real ``@asyncapi/parser`` (tests/node),
with its payloads resolved from proto/schemas, and it says what the contracts say: one receive
operation with a reply per command, one channel per event type, with its CloudEvents headers.

The parser must also refuse a broken document, or its "valid" would prove nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from scopenet.contracts import cloudevents
from scopenet.contracts.asyncapi import QUEUE_GROUP
from scopenet.contracts.subjects import ALL_ENDPOINTS, ALL_EVENTS
from tests.node_tools import NODE_DIR, node_with_packages

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"


def _parse(*paths: Path) -> tuple[int, list[dict[str, Any]]]:
    """The validator's exit code and its summary of each document (one Node.js process for all)."""
    proc = subprocess.run(
        [node_with_packages(), str(NODE_DIR / "validate-asyncapi.mjs"), "--strict", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SCARF_ANALYTICS": "false"},
    )
    assert proc.stdout, proc.stderr
    summaries = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert len(summaries) == len(paths), proc.stdout
    return proc.returncode, summaries


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((PROTO / "asyncapi.json").read_text())
    return doc


def test_the_real_parser_accepts_the_document() -> None:
    code, (got,) = _parse(PROTO / "asyncapi.json")
    assert code == 0 and got["valid"], got["errors"] or got["warnings"]
    assert (got["errors"], got["warnings"], got["asyncapi"]) == ([], [], "3.0.0")
    assert got["receive"] == sorted(f"{ep.service}.{ep.resource}.{ep.verb}" for ep in ALL_ENDPOINTS)
    assert got["with_reply"] == len(ALL_ENDPOINTS) and got["queues"] == [QUEUE_GROUP]
    assert {f"evt.{ev.resource}.{ev.action}" for ev in ALL_EVENTS} <= set(got["send"])
    assert {"router_spec", "bgp_speaker_spec", "agent.heartbeat"} <= set(got["send"])
    # the payloads were resolved from proto/schemas (their titles are the contracts' model names)
    assert got["sample"] == {"request": ["SubnetAllocate"], "reply": ["SubnetReply", "ErrorReply"]}


def _broken(doc: dict[str, Any], how: str) -> dict[str, Any]:
    if how == "unknown action":
        doc["operations"]["ipam.subnet.allocate"]["action"] = "shout"
    elif how == "dangling channel":
        doc["operations"]["ipam.subnet.allocate"]["channel"] = {"$ref": "#/channels/no.such.channel"}
    elif how == "missing schema file":
        doc["components"]["messages"]["evt.subnet.created"]["payload"] = {"$ref": "schemas/events/nothing.json"}
    elif how == "no info":
        del doc["info"]
    return doc


BROKEN = ("unknown action", "dangling channel", "missing schema file", "no info")


def test_the_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    (tmp_path / "schemas").symlink_to(PROTO / "schemas")  # the same relative $refs resolve
    paths = []
    for n, how in enumerate(BROKEN):
        paths.append(tmp_path / f"asyncapi-{n}.json")
        paths[-1].write_text(json.dumps(_broken(_doc(), how)))
    code, got = _parse(*paths)
    assert code == 1
    refused = {how: (not g["valid"] and bool(g["errors"])) for how, g in zip(BROKEN, got, strict=True)}
    assert refused == dict.fromkeys(BROKEN, True), got


def test_commands_are_receive_operations_with_their_reply_and_queue_group() -> None:
    doc = _doc()
    for ep in ALL_ENDPOINTS:
        key = f"{ep.service}.{ep.resource}.{ep.verb}"
        op, channel = doc["operations"][key], doc["channels"][key]
        assert (op["action"], op["x-scopenet-service"], op["x-scopenet-endpoint"]) == ("receive", ep.service, ep.name)
        assert op["bindings"]["nats"]["queue"] == QUEUE_GROUP
        assert channel["address"].replace("{" + str(ep.sender) + "}", "*") == ep.pattern
        base = f"schemas/{ep.service}/{ep.resource}.{ep.verb}"
        assert doc["components"]["messages"][f"{key}.request"]["payload"] == {"$ref": f"{base}.request.json"}
        assert doc["components"]["messages"][f"{key}.reply"]["payload"] == {"$ref": f"{base}.reply.json"}
        assert op["reply"]["channel"] == {"$ref": f"#/channels/{key}.reply"}


def test_each_event_type_is_a_channel_with_its_cloudevents_headers() -> None:
    doc = _doc()
    channels = {c["address"]: c for c in doc["channels"].values() if c.get("x-scopenet-stream") == "SCOPENET_EVENTS"}
    assert set(channels) == {ev.subject for ev in ALL_EVENTS}
    for ev in ALL_EVENTS:
        message = doc["components"]["messages"][f"evt.{ev.resource}.{ev.action}"]
        assert message["name"] == ev.type and message["payload"] == {"$ref": ev.schema}
        headers = message["headers"]["properties"]
        assert headers["ce-type"] == {"const": cloudevents.event_ce_type(ev)}
        assert headers["ce-source"] == {"const": f"/scopenet/{ev.service}"}
        assert headers["ce-dataschema"] == {"const": cloudevents.dataschema(ev.schema)}
        assert {"Nats-Msg-Id", "ce-id", "ce-time", "ce-subject"} <= set(message["headers"]["required"])


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_referenced_schema_file_exists() -> None:
    files = {r for r in _refs(_doc()) if not r.startswith("#")}
    assert files and all(f.startswith("schemas/") for f in files)
    assert not [f for f in sorted(files) if not (PROTO / f).is_file()]
