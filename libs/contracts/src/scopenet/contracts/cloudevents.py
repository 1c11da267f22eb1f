"""CloudEvents 1.0 in binary mode on NATS: the ``ce-*`` headers of every message on a stream.

The body of a message stays what it always was (the JSON of the contract: an ``Event`` envelope,
a ``RouterSpec``, a ``BgpSpeakerSpec``); the CloudEvents attributes ride beside it as NATS headers,
so any CloudEvents SDK reads our messages without a scopenet-specific decoder, and scopenet's own
consumers, which read only the body, are unaffected. The headers are computed once, when the
outbox row is written, and stored with it: a re-published (or replayed) message carries exactly
the same attributes, and ``ce-id`` is the ``Nats-Msg-Id`` that JetStream deduplicates on.

The mapping (docs/events.md#cloudevents):

- ``ce-specversion``: ``1.0``;
- ``ce-id``: the ``Nats-Msg-Id`` (an event's uuid, ``<router_id>-<revision>`` for a RouterSpec);
- ``ce-source``: ``/scopenet/<service>``, the service that wrote the change;
- ``ce-type``: ``org.scopenet.<service>.<resource>.<action>.v1`` (``org.scopenet.<service>.<name>.v1``
  for a spec), reverse-DNS as CloudEvents recommends; the body's ``type`` says the same thing in
  scopenet's older spelling (``scopenet.v1.<resource>.<action>``);
- ``ce-time``: RFC 3339, UTC (an event's ``occurred_at``);
- ``ce-subject``: the id of the resource the message is about;
- ``ce-dataschema``: ``urn:scopenet:proto:<path>``, ``<path>`` being the JSON Schema's file under
  ``proto/`` (an absolute URI, as CloudEvents requires, that names the file without claiming a
  web address the project may not keep);
- ``content-type``: ``application/json`` (the ``datacontenttype`` attribute).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scopenet.contracts.bgp import BgpSpeakerSpec
from scopenet.contracts.routerspec import RouterSpec
from scopenet.contracts.subjects import EventSpec

__all__ = [
    "CONTENT_TYPE",
    "SCHEMA_URN",
    "SPECVERSION",
    "CloudEvent",
    "NotACloudEvent",
    "bgp_spec_headers",
    "ce_type",
    "dataschema",
    "event_headers",
    "headers",
    "parse",
    "router_spec_headers",
    "schema_path",
    "source",
]

#: The specs' JSON Schemas under ``proto/`` (the events' are ``EventSpec.schema``).
ROUTER_SPEC_SCHEMA = "schemas/streams/router_spec.json"
BGP_SPEC_SCHEMA = "schemas/streams/bgp_speaker_spec.json"
ROUTER_SPEC_TYPE = "org.scopenet.topology.router_spec.v1"
BGP_SPEC_TYPE = "org.scopenet.topology.bgp_speaker_spec.v1"

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
#: ``ce-dataschema`` = this prefix + the schema's path under ``proto/``.
SCHEMA_URN = "urn:scopenet:proto:"

#: Header of each attribute (binary mode: ``ce-`` + the attribute's name; the content type is the
#: message's own ``content-type`` header, as in the HTTP binding that the SDKs all implement).
_PREFIX = "ce-"
_CONTENT_TYPE_HEADER = "content-type"
_REQUIRED = ("id", "source", "type", "specversion")
_KNOWN = ("id", "source", "type", "specversion", "time", "subject", "dataschema")


def source(service: str) -> str:
    """``ce-source`` of what ``service`` (``ipam``, ``topology``) publishes."""
    return f"/scopenet/{service}"


def ce_type(service: str, *names: str, version: int = 1) -> str:
    """``ce-type``: ``ce_type("ipam", "subnet", "created")`` is ``org.scopenet.ipam.subnet.created.v1``."""
    return ".".join(("org.scopenet", service, *names, f"v{version}"))


def dataschema(path: str) -> str:
    """``ce-dataschema`` of the JSON Schema at ``proto/<path>``."""
    return SCHEMA_URN + path


def schema_path(uri: str) -> str | None:
    """The path under ``proto/`` that a ``ce-dataschema`` names (None: not one of ours)."""
    return uri.removeprefix(SCHEMA_URN) if uri.startswith(SCHEMA_URN) else None


def rfc3339(when: datetime) -> str:
    """UTC with a ``Z``, microseconds kept (what RFC 3339 and every SDK's parser accept)."""
    if when.tzinfo is None:
        raise ValueError("ce-time needs an aware datetime")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def headers(
    *,
    id: str,
    service: str,
    type: str,
    subject: str,
    schema: str,
    time: datetime | None = None,
) -> dict[str, str]:
    """The binary-mode headers of one message. ``id`` must be the message's ``Nats-Msg-Id``,
    ``type`` a ``ce_type``, ``schema`` the payload's schema path under ``proto/``."""
    if not id:
        raise ValueError("ce-id must not be empty")
    return {
        "ce-specversion": SPECVERSION,
        "ce-id": id,
        "ce-source": source(service),
        "ce-type": type,
        "ce-time": rfc3339(time or datetime.now(UTC)),
        "ce-subject": subject,
        "ce-dataschema": dataschema(schema),
        _CONTENT_TYPE_HEADER: CONTENT_TYPE,
    }


def event_ce_type(spec: EventSpec) -> str:
    return ce_type(spec.service, spec.resource, spec.action)


def resource_subject(resource: BaseModel) -> str:
    """``ce-subject``: the resource's id; an IP allocation, which has none, is ``<subnet_id>/<address>``."""
    rid = getattr(resource, "id", None)
    if rid is not None:
        return str(rid)
    subnet, address = getattr(resource, "subnet_id", None), getattr(resource, "ip_address", None)
    if subnet is None or address is None:
        raise ValueError(f"{type(resource).__name__} has no id to make a ce-subject of")
    return f"{subnet}/{address}"


def event_headers(spec: EventSpec, *, id: str, occurred_at: datetime, resource: BaseModel) -> dict[str, str]:
    """The headers of one event on ``SCOPENET_EVENTS`` (``id``: its uuid, also its ``Nats-Msg-Id``)."""
    return headers(
        id=id,
        service=spec.service,
        type=event_ce_type(spec),
        subject=resource_subject(resource),
        schema=spec.schema,
        time=occurred_at,
    )


def router_spec_headers(spec: RouterSpec, *, id: str, time: datetime | None = None) -> dict[str, str]:
    """The headers of a RouterSpec on ``SCOPENET_ROUTERS`` (``id``: its ``Nats-Msg-Id``)."""
    return headers(
        id=id,
        service="topology",
        type=ROUTER_SPEC_TYPE,
        subject=str(spec.router_id),
        schema=ROUTER_SPEC_SCHEMA,
        time=time,
    )


def bgp_spec_headers(spec: BgpSpeakerSpec, *, id: str, time: datetime | None = None) -> dict[str, str]:
    """The headers of a speaker spec on ``SCOPENET_BGP`` (``id``: its ``Nats-Msg-Id``)."""
    return headers(
        id=id,
        service="topology",
        type=BGP_SPEC_TYPE,
        subject=str(spec.speaker_id),
        schema=BGP_SPEC_SCHEMA,
        time=time,
    )


class NotACloudEvent(ValueError):
    """The message has no (or incomplete, or another version's) CloudEvents headers."""


class CloudEvent(BaseModel):
    """A message read back: its CloudEvents attributes and its decoded body."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    source: str
    type: str
    specversion: str = SPECVERSION
    time: datetime | None = None
    subject: str | None = None
    dataschema: str | None = None
    datacontenttype: str | None = None
    data: Any = None
    """The body: parsed JSON when the content type is JSON, else the raw bytes."""
    extensions: dict[str, str] = Field(default_factory=dict)
    """Any other ``ce-*`` header (``traceparent`` is a header of its own, not an extension here)."""

    @property
    def schema_path(self) -> str | None:
        return schema_path(self.dataschema) if self.dataschema else None


def parse(msg_headers: Mapping[str, str] | None, data: bytes) -> CloudEvent:
    """Read a binary-mode message (header names compared case-insensitively)."""
    lowered = {k.lower(): v for k, v in (msg_headers or {}).items()}
    attrs = {k[len(_PREFIX) :]: v for k, v in lowered.items() if k.startswith(_PREFIX)}
    missing = [name for name in _REQUIRED if not attrs.get(name)]
    if missing:
        raise NotACloudEvent(f"missing CloudEvents header(s): {', '.join(_PREFIX + m for m in missing)}")
    if attrs["specversion"] != SPECVERSION:
        raise NotACloudEvent(f"unsupported ce-specversion {attrs['specversion']!r} (want {SPECVERSION})")
    content_type = lowered.get(_CONTENT_TYPE_HEADER)
    body: Any = data
    if content_type is not None and content_type.split(";")[0].strip() in (CONTENT_TYPE, "text/json"):
        try:
            body = json.loads(data) if data else None
        except ValueError as exc:
            raise NotACloudEvent(f"body is not the JSON its content-type says: {exc}") from exc
    return CloudEvent(
        id=attrs["id"],
        source=attrs["source"],
        type=attrs["type"],
        specversion=attrs["specversion"],
        time=datetime.fromisoformat(attrs["time"].replace("Z", "+00:00")) if attrs.get("time") else None,
        subject=attrs.get("subject"),
        dataschema=attrs.get("dataschema"),
        datacontenttype=content_type,
        data=body,
        extensions={k: v for k, v in attrs.items() if k not in _KNOWN},
    )
