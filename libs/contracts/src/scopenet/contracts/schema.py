"""Generate ``proto/``: one JSON Schema per command, reply, event and stream message, an index of
subjects, and the AsyncAPI 3.0 document of them all (``asyncapi``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scopenet.contracts import asyncapi, cloudevents
from scopenet.contracts.bgp import BgpSpeakerSpec
from scopenet.contracts.routerspec import AgentHeartbeat, RouterSpec
from scopenet.contracts.subjects import ALL_ENDPOINTS, ALL_EVENTS, ERROR_REPLY, EVENTS_STREAM


def _schema(model: Any) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(mode="validation")
    return schema


def render() -> dict[str, str]:
    """Relative path → file content, deterministic (sorted keys, trailing newline)."""
    files: dict[str, Any] = {}
    index: dict[str, Any] = {
        "commands": [],
        "events": [],
        "events_stream": EVENTS_STREAM,
        "error_reply": "schemas/error.json",
    }
    for ep in ALL_ENDPOINTS:
        req = f"schemas/{ep.service}/{ep.resource}.{ep.verb}.request.json"
        rep = f"schemas/{ep.service}/{ep.resource}.{ep.verb}.reply.json"
        files[req] = _schema(ep.request)
        files[rep] = _schema(ep.reply)
        command = {"subject": ep.pattern, "request": req, "reply": rep, "doc": ep.doc}
        if ep.sender:  # sent on the sender's own subject: the ``*`` is this request field
            command["sender"] = ep.sender
        index["commands"].append(command)
    for ev in ALL_EVENTS:
        path = ev.schema
        files[path] = _schema(ev.model)
        index["events"].append({"subject": ev.subject, "type": ev.type, "schema": path})
    files["schemas/error.json"] = _schema(ERROR_REPLY)
    files[cloudevents.ROUTER_SPEC_SCHEMA] = _schema(RouterSpec)
    files[cloudevents.BGP_SPEC_SCHEMA] = _schema(BgpSpeakerSpec)
    files[asyncapi.HEARTBEAT_SCHEMA] = _schema(AgentHeartbeat)
    files[asyncapi.ASYNCAPI_PATH] = asyncapi.document()
    files["index.json"] = index
    return {path: json.dumps(body, indent=2, sort_keys=True) + "\n" for path, body in files.items()}


def write(root: Path) -> list[Path]:
    written = []
    for rel, text in render().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
