"""The AsyncAPI 3.0 document of scopenet's NATS interface, generated into ``proto/asyncapi.json``.

It is written from the same tables as the rest of ``proto/`` (``subjects``, ``routerspec``, ``bgp``),
so it cannot drift from the code: every command is a ``receive`` operation of the service that
serves it, with its reply (request/reply over a NATS inbox) and the NATS binding's queue group;
every event a ``send`` operation on its own channel, with its CloudEvents headers (``cloudevents``);
the RouterSpec and BGP speaker spec streams and the agents' heartbeats are ``send`` operations
too. Payloads are the JSON Schemas already in ``proto/``, referenced by relative path, so a
consumer of the document and a consumer of ``proto/index.json`` read the very same schemas.

The document describes the whole system (ipam, topology, the L3 agent) as one application:
``receive`` is what its services answer, ``send`` what they publish. Each operation is tagged
with the service that owns it (``x-scopenet-service``).
"""

from __future__ import annotations

from typing import Any

from scopenet.contracts import bgp, cloudevents, routerspec
from scopenet.contracts.endpoint import Endpoint
from scopenet.contracts.subjects import ALL_ENDPOINTS, ALL_EVENTS, EVENTS_STREAM, EventSpec

__all__ = ["ASYNCAPI_PATH", "QUEUE_GROUP", "document"]

ASYNCAPI_PATH = "asyncapi.json"
#: The queue group of every endpoint: nats.micro's default, which ``scopenet.bus.micro`` keeps, so
#: the replicas of a service share its requests.
QUEUE_GROUP = "q"
ERROR_SCHEMA = "schemas/error.json"
HEARTBEAT_SCHEMA = "schemas/kv/agent_heartbeat.json"
_NATS_BINDING = "0.1.0"

_SERVICES = {
    "ipam": "IP address management: address scopes, subnet pools, subnet and address allocation, RBAC.",
    "topology": "Networks, subnets, ports, routers, floating IPs, BGP speakers; schedules routers onto L3 agents.",
    "l3_agent": "Programs routers on its host from their RouterSpecs; reports their status.",
}


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)}


def _param_address(subject: str, names: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """``subject`` with each ``*`` turned into ``{name}`` (AsyncAPI's channel parameters), in order."""
    tokens, params = subject.split("."), {}
    keys = iter(names)
    for i, token in enumerate(tokens):
        if token == "*":
            name = next(keys)
            tokens[i] = "{" + name + "}"
            params[name] = {"description": names[name]}
    return ".".join(tokens), params


# ---------------------------------------------------------------- commands


def _command(ep: Endpoint[Any, Any], doc: dict[str, Any]) -> None:
    key = f"{ep.service}.{ep.resource}.{ep.verb}"
    base = f"schemas/{ep.service}/{ep.resource}.{ep.verb}"
    names = {ep.sender: f"the sender's own ``{ep.sender}`` (the request's field of that name)"} if ep.sender else {}
    address, params = _param_address(ep.pattern, names)
    channel: dict[str, Any] = {
        "address": address,
        "title": key,
        "description": f"Command: {ep.doc}.",
        "messages": {"request": _ref("components", "messages", f"{key}.request")},
    }
    if params:
        channel["parameters"] = params
    doc["channels"][key] = channel
    doc["channels"][f"{key}.reply"] = {
        "address": None,
        "description": f"The reply to {key}, on the requester's inbox (the request's NATS reply subject).",
        "messages": {
            "reply": _ref("components", "messages", f"{key}.reply"),
            "error": _ref("components", "messages", "error"),
        },
    }
    doc["components"]["messages"][f"{key}.request"] = {
        "name": f"{key}.request",
        "title": f"{key} request",
        "contentType": cloudevents.CONTENT_TYPE,
        "payload": {"$ref": f"{base}.request.json"},
    }
    doc["components"]["messages"][f"{key}.reply"] = {
        "name": f"{key}.reply",
        "title": f"{key} reply",
        "contentType": cloudevents.CONTENT_TYPE,
        "payload": {"$ref": f"{base}.reply.json"},
    }
    doc["operations"][key] = {
        "action": "receive",
        "channel": _ref("channels", key),
        "summary": ep.doc,
        "messages": [_ref("channels", key, "messages", "request")],
        "reply": {
            "channel": _ref("channels", f"{key}.reply"),
            "messages": [
                _ref("channels", f"{key}.reply", "messages", "reply"),
                _ref("channels", f"{key}.reply", "messages", "error"),
            ],
        },
        "bindings": {"nats": {"queue": QUEUE_GROUP, "bindingVersion": _NATS_BINDING}},
        "tags": [{"name": ep.service}],
        "x-scopenet-service": ep.service,
        "x-scopenet-endpoint": ep.name,
    }


def _error_message() -> dict[str, Any]:
    return {
        "name": "error",
        "title": "Error reply",
        "summary": "Any command's refusal or failure (ADR-32 service error headers, and the same in the body).",
        "contentType": cloudevents.CONTENT_TYPE,
        "headers": {
            "type": "object",
            "required": ["Nats-Service-Error-Code", "Nats-Service-Error"],
            "properties": {
                "Nats-Service-Error-Code": {"type": "string", "pattern": "^[0-9]{3}$", "examples": ["409"]},
                "Nats-Service-Error": {"type": "string", "description": "The error's message."},
            },
        },
        "payload": {"$ref": ERROR_SCHEMA},
    }


# ---------------------------------------------------------------- stream messages


def _ce_headers(*, service: str, ce_type: str, schema: str, subject: str) -> dict[str, Any]:
    """The headers schema of a CloudEvent of one type (binary mode, see ``cloudevents``)."""
    return {
        "type": "object",
        "required": [
            "Nats-Msg-Id",
            "ce-specversion",
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-time",
            "ce-subject",
            "ce-dataschema",
            "content-type",
        ],
        "properties": {
            "Nats-Msg-Id": {"type": "string", "description": "JetStream's deduplication id; equal to ce-id."},
            "ce-specversion": {"const": cloudevents.SPECVERSION},
            "ce-id": {"type": "string", "minLength": 1, "description": "Unique per message; equal to Nats-Msg-Id."},
            "ce-source": {"const": cloudevents.source(service)},
            "ce-type": {"const": ce_type},
            "ce-time": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC."},
            "ce-subject": {"type": "string", "minLength": 1, "description": subject},
            "ce-dataschema": {"const": cloudevents.dataschema(schema)},
            "content-type": {"const": cloudevents.CONTENT_TYPE},
            "traceparent": {"type": "string", "description": "W3C trace context of the change, when traced."},
        },
    }


def _event(ev: EventSpec, doc: dict[str, Any]) -> None:
    key = f"evt.{ev.resource}.{ev.action}"
    ce_type = cloudevents.event_ce_type(ev)
    doc["channels"][key] = {
        "address": ev.subject,
        "title": ev.type,
        "description": f"Event: a {ev.resource} was {ev.action} (stream {EVENTS_STREAM}).",
        "messages": {"event": _ref("components", "messages", key)},
        "x-scopenet-stream": EVENTS_STREAM,
    }
    doc["components"]["messages"][key] = {
        "name": ev.type,
        "title": ce_type,
        "summary": f"{ev.resource} {ev.action}: the resource after the change (and before it, for an update).",
        "contentType": cloudevents.CONTENT_TYPE,
        "headers": _ce_headers(
            service=ev.service,
            ce_type=ce_type,
            schema=ev.schema,
            subject=f"The {ev.resource}'s id"
            + (" (an address, which has none: <subnet_id>/<ip_address>)" if ev.resource == "ip_allocation" else ""),
        ),
        "payload": {"$ref": ev.schema},
        "correlationId": {"location": "$message.header#/ce-id"},
        "x-cloudevents-type": ce_type,
    }
    doc["operations"][key] = {
        "action": "send",
        "channel": _ref("channels", key),
        "summary": f"{ev.service} publishes {ev.type} through its outbox",
        "messages": [_ref("channels", key, "messages", "event")],
        "tags": [{"name": ev.service}, {"name": "events"}],
        "x-scopenet-service": ev.service,
    }


def _spec_stream(
    doc: dict[str, Any],
    *,
    key: str,
    subject: str,
    params: dict[str, str],
    stream: str,
    ce_type: str,
    schema: str,
    about: str,
    description: str,
) -> None:
    address, parameters = _param_address(subject, params)
    doc["channels"][key] = {
        "address": address,
        "title": key,
        "description": description,
        "parameters": parameters,
        "messages": {"spec": _ref("components", "messages", key)},
        "x-scopenet-stream": stream,
    }
    doc["components"]["messages"][key] = {
        "name": key,
        "title": ce_type,
        "contentType": cloudevents.CONTENT_TYPE,
        "headers": _ce_headers(service="topology", ce_type=ce_type, schema=schema, subject=about),
        "payload": {"$ref": schema},
        "x-cloudevents-type": ce_type,
    }
    doc["operations"][key] = {
        "action": "send",
        "channel": _ref("channels", key),
        "summary": f"topology publishes the desired state on {stream} (the last message per subject)",
        "messages": [_ref("channels", key, "messages", "spec")],
        "tags": [{"name": "topology"}, {"name": "specs"}],
        "x-scopenet-service": "topology",
    }


def _heartbeat(doc: dict[str, Any]) -> None:
    address, parameters = _param_address(
        f"$KV.{routerspec.AGENTS_BUCKET}.*", {"agent_id": "the agent's id (its key in the bucket)"}
    )
    doc["channels"]["agent.heartbeat"] = {
        "address": address,
        "title": "agent.heartbeat",
        "description": (
            f"An L3 agent's heartbeat: a put under its id in the {routerspec.AGENTS_BUCKET} KV bucket every few "
            "seconds; entries expire after the bucket's TTL, and topology schedules routers onto live agents only."
        ),
        "parameters": parameters,
        "messages": {"heartbeat": _ref("components", "messages", "agent.heartbeat")},
        "x-scopenet-kv-bucket": routerspec.AGENTS_BUCKET,
    }
    doc["components"]["messages"]["agent.heartbeat"] = {
        "name": "scopenet.v1.agent_heartbeat",
        "title": "Agent heartbeat",
        "contentType": cloudevents.CONTENT_TYPE,
        "payload": {"$ref": HEARTBEAT_SCHEMA},
    }
    doc["operations"]["agent.heartbeat"] = {
        "action": "send",
        "channel": _ref("channels", "agent.heartbeat"),
        "summary": "an L3 agent says it is alive (topology watches the bucket)",
        "messages": [_ref("channels", "agent.heartbeat", "messages", "heartbeat")],
        "tags": [{"name": "l3_agent"}],
        "x-scopenet-service": "l3_agent",
    }


def document(version: str = "1.0.0") -> dict[str, Any]:
    """The AsyncAPI 3.0 document (deterministic: the order of the contracts' tables)."""
    doc: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "id": "urn:scopenet:asyncapi",
        "info": {
            "title": "scopenet",
            "version": version,
            "description": (
                "scopenet's NATS interface: commands (request/reply, served by the services in queue group "
                f"'{QUEUE_GROUP}'), events on the {EVENTS_STREAM} JetStream stream (CloudEvents 1.0 in binary "
                "mode: ce-* headers, JSON body), the RouterSpec and BGP speaker spec streams, the L3 agents' "
                "heartbeats. Payload schemas are the JSON Schemas under proto/schemas. See docs/events.md."
            ),
            "tags": [{"name": name, "description": text} for name, text in _SERVICES.items()]
            + [{"name": "events"}, {"name": "specs"}],
        },
        "defaultContentType": cloudevents.CONTENT_TYPE,
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "The deployment's NATS server, with JetStream; each component has its own credentials.",
            }
        },
        "channels": {},
        "operations": {},
        "components": {"messages": {"error": _error_message()}},
    }
    for ep in ALL_ENDPOINTS:
        _command(ep, doc)
    for ev in ALL_EVENTS:
        _event(ev, doc)
    _spec_stream(
        doc,
        key="router_spec",
        subject=routerspec.router_subject("*", "*"),
        params={"agent_id": "the L3 agent the router is scheduled on", "router_id": "the router's id"},
        stream=routerspec.ROUTERS_STREAM,
        ce_type=cloudevents.ROUTER_SPEC_TYPE,
        schema=cloudevents.ROUTER_SPEC_SCHEMA,
        about="The router's id",
        description=(
            "A router's RouterSpec: everything its L3 agent needs to program it. The stream keeps the last one "
            "per subject, so it is the desired state; present=false removes the router from that agent."
        ),
    )
    _spec_stream(
        doc,
        key="bgp_speaker_spec",
        subject=bgp.speaker_subject("*"),
        params={"speaker_id": "the BGP speaker's id"},
        stream=bgp.BGP_STREAM,
        ce_type=cloudevents.BGP_SPEC_TYPE,
        schema=cloudevents.BGP_SPEC_SCHEMA,
        about="The speaker's id",
        description="A BGP speaker's desired state (peers, routes to announce); the last one per speaker is kept.",
    )
    _heartbeat(doc)
    return doc
