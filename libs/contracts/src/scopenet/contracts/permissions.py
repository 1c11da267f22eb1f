"""Who may publish and subscribe to what on NATS: one user per service, one per L3 agent.

The table is data derived from the index of subjects (``subjects.py``) and the stream and bucket
names of the contracts, so a new endpoint or event is permitted to exactly the users that serve,
call or publish it, with no second list to keep in step. ``scopenet.bus.natsauth`` renders it as
a nats-server ``authorization`` block; the embedded and compose stacks run with it.

What each user may do (JetStream API subjects are requests to the server, ``$JS.API.<...>``):

- ``ipam`` serves its commands, publishes its events (outbox → ``SCOPENET_EVENTS``), creates and
  updates that stream; answers only the requests it received (``allow_responses``).
- ``topology`` serves its commands, calls IPAM's, publishes its events, RouterSpecs, BGP speaker
  specs and dead letters, owns the streams and bucket it creates (events consumers, the agents'
  heartbeat bucket, which it watches, the max-deliveries advisories it turns into dead letters).
- ``api`` sends commands and nothing else: no event, no stream subject, no JetStream API; the
  commands only agents send (router status reports) are not among them.
- ``l3-agent-<id>`` reads its own RouterSpecs through its own durable consumer (created with its
  filter in the subject, which the server checks against the consumer's configuration), acks
  them, puts its heartbeat under its own key, reports router statuses on its own subject
  (``router_status.report.<id>``; topology refuses a report naming another agent), dead-letters what it
  cannot read and reads the BGP speaker specs (for the speaker it may run). Nothing of another
  agent: no spec subject, no consumer, no stream message get.
- ``admin`` may do anything: operators, tests, ``scopenet`` commands that are not services.

Replies: each user receives replies on an inbox of its own, ``_INBOX.<user>.>`` (the client sets
it as its inbox prefix, see ``inbox``), so no user can read another's replies — which for JetStream
pull consumers are the messages themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scopenet.contracts.bgp import BGP_STREAM, BGP_SUBJECTS
from scopenet.contracts.routerspec import AGENTS_BUCKET, ROUTERS_STREAM, agent_durable, agent_filter
from scopenet.contracts.subjects import (
    AGENT_ENDPOINTS,
    ALL_ENDPOINTS,
    EVENTS_STREAM,
    IPAM_ENDPOINTS,
    IPAM_EVENTS,
    TOPOLOGY_ENDPOINTS,
    TOPOLOGY_EVENTS,
    Endpoint,
)
from scopenet.contracts.topology import ADVISORIES_STREAM, DLQ_STREAM, DLQ_SUBJECTS, dlq_subject

ADMIN = "admin"
IPAM = "ipam"
TOPOLOGY = "topology"
API = "api"
SERVICES = (IPAM, TOPOLOGY, API)
"""The users of the command services (``scopenet service <name>``); agents have one each."""

AGENT_PREFIX = "l3-agent-"
AGENT_DLQ = "l3-agent"
"""The dead-letter consumer name the agents use (``scopenet.v1.dlq.l3-agent``)."""

AGENT_COMMANDS: tuple[Endpoint[Any, Any], ...] = tuple(e for e in TOPOLOGY_ENDPOINTS if e.sender == "agent_id")
"""Commands only agents send, each on its own subject (an agent reports what it applied; the API never does)."""

KV_STREAM = f"KV_{AGENTS_BUCKET}"
JS = "$JS.API"
_USER = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False
    """Publishing to the reply subject of a request received is allowed (a service answering)."""


def inbox(user: str) -> str:
    """The inbox prefix of ``user``'s connections: its replies arrive on ``<prefix>.>`` only."""
    return f"_INBOX.{user}"


def agent_user(agent_id: str) -> str:
    return f"{AGENT_PREFIX}{agent_id}"


def valid_user(user: str) -> str:
    """``user`` if it can be a NATS user here (one subject token); ValueError otherwise."""
    if not _USER.match(user):
        raise ValueError(f"NATS user {user!r}: only letters, digits, '-' and '_' (it is a subject token)")
    return user


def _stream_admin(stream: str) -> list[str]:
    """Everything about one stream: create/update/info, its consumers, message get, acks, flow control."""
    return [
        f"{JS}.STREAM.*.{stream}",
        f"{JS}.STREAM.MSG.*.{stream}",
        f"{JS}.DIRECT.GET.{stream}",
        f"{JS}.DIRECT.GET.{stream}.>",
        f"{JS}.CONSUMER.*.{stream}",
        f"{JS}.CONSUMER.*.{stream}.>",
        f"{JS}.CONSUMER.DURABLE.CREATE.{stream}.*",
        f"{JS}.CONSUMER.MSG.NEXT.{stream}.*",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def _ensure_stream(stream: str) -> list[str]:
    """What ``ensure_stream`` sends: create, else update, and info."""
    return [f"{JS}.STREAM.CREATE.{stream}", f"{JS}.STREAM.UPDATE.{stream}", f"{JS}.STREAM.INFO.{stream}"]


def _subjects(items: Iterable[Endpoint[Any, Any]]) -> list[str]:
    """What serves (or, sender-less commands, calls) ``items``: a per-sender command's every subject."""
    return [e.pattern for e in items]


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def admin() -> Permissions:
    return Permissions(publish=(">",), subscribe=(">",), allow_responses=True)


def ipam() -> Permissions:
    return Permissions(
        publish=_dedupe([*(e.subject for e in IPAM_EVENTS), *_ensure_stream(EVENTS_STREAM), f"{JS}.INFO"]),
        subscribe=_dedupe([*_subjects(IPAM_ENDPOINTS), "$SRV.>", f"{inbox(IPAM)}.>"]),
        allow_responses=True,
    )


def topology() -> Permissions:
    owned = (EVENTS_STREAM, ROUTERS_STREAM, BGP_STREAM, DLQ_STREAM, ADVISORIES_STREAM, KV_STREAM)
    return Permissions(
        publish=_dedupe(
            [
                *_subjects(IPAM_ENDPOINTS),  # IPAM is topology's backend
                *(e.subject for e in TOPOLOGY_EVENTS),
                agent_filter("*"),  # RouterSpecs, to any agent
                *_subjects(AGENT_ENDPOINTS),  # what agents serve (kernel evidence), on any agent's subject
                BGP_SUBJECTS,
                DLQ_SUBJECTS,
                f"$KV.{AGENTS_BUCKET}.>",  # the liveness bucket is topology's (e.g. removing a dead agent)
                *(s for stream in owned for s in _stream_admin(stream)),
                f"{JS}.STREAM.NAMES",
                f"{JS}.INFO",
            ]
        ),
        subscribe=_dedupe([*_subjects(TOPOLOGY_ENDPOINTS), "$SRV.>", f"{inbox(TOPOLOGY)}.>"]),
        allow_responses=True,
    )


def api() -> Permissions:
    commands = [e for e in ALL_ENDPOINTS if e.sender is None]  # per-sender commands are their senders' (agents')
    return Permissions(publish=_dedupe(_subjects(commands)), subscribe=(f"{inbox(API)}.>",))


def agent(agent_id: str) -> Permissions:
    user = valid_user(agent_user(agent_id))
    durable = agent_durable(agent_id)
    return Permissions(
        publish=_dedupe(
            [
                *(e.sender_subject(agent_id) for e in AGENT_COMMANDS),  # its own subject: it reports as itself
                # heartbeat: its own key; the bucket may be created by whichever starts first
                f"$KV.{AGENTS_BUCKET}.{agent_id}",
                f"{JS}.STREAM.INFO.{KV_STREAM}",
                f"{JS}.STREAM.CREATE.{KV_STREAM}",
                # its RouterSpecs: its own durable consumer, the filter named in the create subject
                f"{JS}.STREAM.INFO.{ROUTERS_STREAM}",
                f"{JS}.CONSUMER.CREATE.{ROUTERS_STREAM}.{durable}.{agent_filter(agent_id)}",
                f"{JS}.CONSUMER.INFO.{ROUTERS_STREAM}.{durable}",
                f"{JS}.CONSUMER.DELETE.{ROUTERS_STREAM}.{durable}",
                f"{JS}.CONSUMER.MSG.NEXT.{ROUTERS_STREAM}.{durable}",
                f"$JS.ACK.{ROUTERS_STREAM}.{durable}.>",
                dlq_subject(AGENT_DLQ),
                # BGP speaker specs (every agent may run the speaker): an ordered consumer
                f"{JS}.STREAM.NAMES",
                f"{JS}.STREAM.INFO.{BGP_STREAM}",
                f"{JS}.CONSUMER.CREATE.{BGP_STREAM}",
                f"{JS}.CONSUMER.CREATE.{BGP_STREAM}.>",
                f"{JS}.CONSUMER.INFO.{BGP_STREAM}.*",
                f"{JS}.CONSUMER.DELETE.{BGP_STREAM}.*",
                f"$JS.FC.{BGP_STREAM}.>",
                f"{JS}.INFO",
            ]
        ),
        # what it serves, on its own subject only (answering is allow_responses)
        subscribe=(f"{inbox(user)}.>", *(e.sender_subject(agent_id) for e in AGENT_ENDPOINTS)),
        allow_responses=True,
    )


def for_user(user: str) -> Permissions:
    """The permissions of ``user``: a service's name, ``admin`` or ``l3-agent-<id>``."""
    fixed = {ADMIN: admin, IPAM: ipam, TOPOLOGY: topology, API: api}
    if user in fixed:
        return fixed[user]()
    if user.startswith(AGENT_PREFIX) and len(user) > len(AGENT_PREFIX):
        return agent(user[len(AGENT_PREFIX) :])
    raise ValueError(f"no NATS permissions for user {user!r}: admin, {', '.join(SERVICES)} or {AGENT_PREFIX}<agent id>")


def matches(pattern: str, subject: str) -> bool:
    """Does ``pattern`` cover ``subject`` (as nats-server checks a permission): ``*`` covers one
    token (a ``*`` too), ``>`` one or more at the end (a ``>`` too)."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or s[i] == ">" or (tok != "*" and tok != s[i]):
            return False  # a subject's ">" is covered by a pattern's ">" only
    return len(p) == len(s)


def may_publish(perms: Permissions, subject: str) -> bool:
    return any(matches(p, subject) for p in perms.publish)


def may_subscribe(perms: Permissions, subject: str) -> bool:
    return any(matches(p, subject) for p in perms.subscribe)
