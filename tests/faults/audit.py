"""After the faults: what the clients were told, against what both databases and the streams hold.

``settled`` says whether the stack has finished recovering (outboxes drained, no saga half-way,
every router applied by its agent at its current revision); ``problems`` lists every difference
between the acknowledged history and the final state, each one a lost or duplicated change:

- an acknowledged create whose resource is missing, or present under another id (lost);
- an acknowledged delete whose resource is still there (lost);
- a resource nobody asked for (its name is not one the load sent), a name present twice (duplicated);
- the two databases disagreeing: a topology subnet without its IPAM allocation or the reverse, a
  port's addresses not exactly its IPAM allocations, an allocation without an owner (half-applied);
- events: an event id twice in the stream (duplicated), a resource without its ``created`` event or
  with two (lost / duplicated), a deleted one without its ``deleted`` event;
- the RouterSpec stream's last spec per router differing from the spec topology builds from its
  database, or a deleted router whose last spec is not a removal.

A create answered 503 (or not at all) may or may not have committed: either is accepted, never half.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from scopenet.bus.client import BusClient
from scopenet.contracts import routerspec as rs
from scopenet.contracts.base import ByIdCommand, CallContext
from scopenet.contracts.subjects import EVENTS_STREAM, TOPOLOGY_ENDPOINTS
from tests.faults.cluster import AGENT_ID, PROJECT
from tests.faults.load import GONE, OK, Call

SPEC = next(e for e in TOPOLOGY_ENDPOINTS if e.resource == "router" and e.verb == "spec")
ADMIN = CallContext(project_id=PROJECT, roles=["admin"])
KINDS = ("network", "subnet", "port", "router")


@dataclass
class Findings:
    pending: list[str] = field(default_factory=list)
    """Recovery still under way (not an error yet)."""
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    half: list[str] = field(default_factory=list)
    """The two databases (or a database and a stream) disagree."""
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        return self.lost + self.duplicated + self.half

    @property
    def settled(self) -> bool:
        return not self.pending


@dataclass
class Expected:
    """What the acknowledged history says must (and may) exist, per kind."""

    acked: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    """kind -> name -> id: creates answered 201."""
    maybe: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    """kind -> names whose create got no definite answer (503, no reply)."""
    deleted: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    """kind -> ids whose delete was acknowledged (204) or found gone (404)."""
    interfaces: dict[tuple[str, str], str] = field(default_factory=dict)
    """(router, subnet) -> "acked" | "maybe" | "removed": the last word on each interface."""


def expected(calls: list[Call]) -> Expected:
    exp = Expected()
    for c in calls:
        kind = c.op.split("_", 1)[1]
        if c.op.startswith("create_"):
            assert c.name is not None
            if c.status == 201 and c.id is not None:
                exp.acked[kind][c.name] = c.id
            elif c.status in (0, 500, 502, 503, 504):
                exp.maybe[kind].add(c.name)
        elif c.op.startswith("delete_") and c.status in GONE:
            assert c.target is not None
            exp.deleted[kind].add(c.target)
        elif c.op == "add_interface":
            key = (c.target or "", c.subnet or "")
            if c.status in OK:
                exp.interfaces[key] = "acked"
            elif c.status in (0, 500, 502, 503, 504):
                exp.interfaces.setdefault(key, "maybe")
        elif c.op == "remove_interface" and c.status in GONE:
            exp.interfaces[(c.target or "", c.subnet or "")] = "removed"
    return exp


async def audit(database_url: str, nats_url: str, calls: list[Call], *, prefix: str, streams: bool) -> Findings:
    """Compare the history with the state; ``streams`` also reads the event and RouterSpec streams
    (done once the database side has settled: an empty outbox means everything was published)."""
    f = Findings()
    exp = expected(calls)
    conn = await asyncpg.connect(database_url)
    try:
        state = await _read(conn, prefix)
    finally:
        await conn.close()
    _settled(f, state)
    _resources(f, exp, state)
    _interfaces(f, exp, state)
    _ipam(f, state)
    if streams and f.settled:
        nc = await nats.connect(nats_url, max_reconnect_attempts=2)
        try:
            await _events(f, nc, state)
            await _specs(f, nc, state, exp.deleted["router"])
        finally:
            await nc.close()
    return f


async def _read(conn: asyncpg.Connection, prefix: str) -> dict[str, Any]:
    """Both schemas, everything the load could have touched (one snapshot)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return {
            "outbox": {s: await conn.fetchval(f"SELECT count(*) FROM {s}.outbox") for s in ("ipam", "topology")},
            "unsettled": await conn.fetch(
                """SELECT 'subnet' AS kind, id, state FROM topology.subnets WHERE state <> 'active'
                   UNION ALL SELECT 'port', id, state FROM topology.ports WHERE state <> 'active'
                   UNION ALL SELECT 'router', id, state FROM topology.routers WHERE state <> 'active'"""
            ),
            "network": await conn.fetch("SELECT id, name FROM topology.networks"),
            "subnet": await conn.fetch("SELECT id, name, network_id, cidr, state FROM topology.subnets"),
            "port": await conn.fetch("SELECT id, name, network_id, device_owner, device_id, state FROM topology.ports"),
            "router": await conn.fetch(
                "SELECT id, name, agent_id, status, status_revision, spec_revision, state FROM topology.routers"
            ),
            "router_ports": await conn.fetch(
                """SELECT rp.router_id, rp.port_id, i.subnet_id FROM topology.router_ports rp
                   JOIN topology.port_ips i ON i.port_id = rp.port_id"""
            ),
            "port_ips": await conn.fetch("SELECT port_id, subnet_id, ip_address, ipam_held FROM topology.port_ips"),
            "ipam_subnets": await conn.fetch("SELECT id, network_id, cidr FROM ipam.subnets"),
            "ipam_ips": await conn.fetch("SELECT port_id, subnet_id, ip_address FROM ipam.ip_allocations"),
            "prefix": prefix,
        }


def _settled(f: Findings, s: dict[str, Any]) -> None:
    for schema, n in s["outbox"].items():
        if n:
            f.pending.append(f"{schema}.outbox holds {n} event(s)")
    for r in s["unsettled"]:
        f.pending.append(f"{r['kind']} {r['id']} is {r['state']}")
    for r in s["router"]:
        if r["state"] == "active" and r["agent_id"] != AGENT_ID:
            f.pending.append(f"router {r['id']} scheduled on {r['agent_id']!r}")
        elif r["status"] != "ACTIVE" or r["status_revision"] != r["spec_revision"]:
            f.pending.append(
                f"router {r['id']} {r['status']} at revision {r['status_revision']} (spec {r['spec_revision']})"
            )


def _resources(f: Findings, exp: Expected, s: dict[str, Any]) -> None:
    prefix = s["prefix"]
    for kind in KINDS:
        rows = [r for r in s[kind] if r["name"].startswith(prefix + "-")]
        names = Counter(r["name"] for r in rows)
        for name, n in names.items():
            if n > 1:
                f.duplicated.append(f"{kind} {name} exists {n} times")
        present = {r["name"]: str(r["id"]) for r in rows}
        ids = set(present.values())
        gone = exp.deleted[kind] | (_cascaded(exp, s) if kind == "subnet" else set())
        for name, id_ in exp.acked[kind].items():
            if id_ in gone:
                if id_ in ids:
                    f.lost.append(f"{kind} {name} ({id_}): delete acknowledged, still there")
            elif present.get(name) != id_:
                f.lost.append(f"{kind} {name} ({id_}): create acknowledged, found {present.get(name)}")
        for name, id_ in present.items():
            if name not in exp.acked[kind] and name not in exp.maybe[kind]:
                f.duplicated.append(f"{kind} {name} ({id_}) exists, nobody asked for it")
        f.figures[f"{kind}s"] = len(rows)


def _cascaded(exp: Expected, s: dict[str, Any]) -> set[str]:
    """Subnets deleted with their network (Neutron deletes a network's subnets with it). A subnet
    and its network are named after their cycle: ``<cycle>-sub``, ``<cycle>-net``."""
    nets = exp.deleted["network"]
    return {
        id_
        for name, id_ in exp.acked["subnet"].items()
        if exp.acked["network"].get(name.removesuffix("-sub") + "-net") in nets
    }


def _interfaces(f: Findings, exp: Expected, s: dict[str, Any]) -> None:
    routers = {str(r["id"]) for r in s["router"]}
    ours = {str(r["id"]) for r in s["router"] if r["name"].startswith(s["prefix"] + "-")}
    have = {(str(r["router_id"]), str(r["subnet_id"])) for r in s["router_ports"] if str(r["router_id"]) in ours}
    for key, word in exp.interfaces.items():
        router, _subnet = key
        if word == "acked" and router in routers and key not in have:
            f.lost.append(f"interface {key}: add acknowledged, missing")
        if word == "removed" and key in have:
            f.lost.append(f"interface {key}: remove acknowledged, still there")
    for key in have - set(exp.interfaces):
        f.duplicated.append(f"interface {key}: nobody asked for it")
    attached = {str(r["port_id"]) for r in s["router_ports"]}
    for p in s["port"]:
        if p["device_owner"] == "network:router_interface" and str(p["id"]) not in attached:
            f.half.append(f"interface port {p['id']} of router {p['device_id']} is attached to no router")
        if p["device_owner"] == "network:router_interface" and p["device_id"] not in routers:
            f.half.append(f"interface port {p['id']}: its router {p['device_id']} is gone")


def _ipam(f: Findings, s: dict[str, Any]) -> None:
    """Both databases tell the same story: subnets and addresses, nothing half-made."""
    topo = {str(r["id"]): (str(r["network_id"]), str(r["cidr"])) for r in s["subnet"] if r["state"] == "active"}
    ipam = {str(r["id"]): (str(r["network_id"]), str(r["cidr"])) for r in s["ipam_subnets"]}
    for id_ in topo.keys() - ipam.keys():
        f.half.append(f"subnet {id_} {topo[id_][1]}: in topology, not in IPAM")
    for id_ in ipam.keys() - topo.keys():
        f.half.append(f"subnet {id_} {ipam[id_][1]}: in IPAM, not in topology")
    for id_ in topo.keys() & ipam.keys():
        if topo[id_] != ipam[id_]:
            f.half.append(f"subnet {id_}: topology has {topo[id_]}, IPAM {ipam[id_]}")
    active_ports = {str(p["id"]) for p in s["port"] if p["state"] == "active"}
    held = {
        (str(r["port_id"]), str(r["subnet_id"]), str(r["ip_address"]))
        for r in s["port_ips"]
        if r["ipam_held"] and str(r["port_id"]) in active_ports
    }
    have = {(str(r["port_id"]), str(r["subnet_id"]), str(r["ip_address"])) for r in s["ipam_ips"]}
    for key in held - have:
        f.half.append(f"address {key}: the port holds it, IPAM has no allocation")
    for key in have - held:
        f.half.append(f"address {key}: allocated in IPAM, no port holds it")
    per_port = Counter(str(r["port_id"]) for r in s["port_ips"])
    for p in s["port"]:
        if p["name"].startswith(s["prefix"] + "-") and per_port[str(p["id"])] != 1:
            f.duplicated.append(f"port {p['name']} holds {per_port[str(p['id'])]} addresses (asked for one)")
    f.figures["ip_allocations"] = len(have)


async def _events(f: Findings, nc: Any, s: dict[str, Any]) -> None:
    """Every event of the run, read back from the stream: each change published exactly once."""
    js = nc.jetstream()
    info = await js.stream_info(EVENTS_STREAM)
    total = info.state.messages
    sub = await js.pull_subscribe(
        "scopenet.v1.evt.>",
        stream=EVENTS_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=60),
    )
    seen_ids: Counter[str] = Counter()
    history: dict[tuple[str, str], list[str]] = defaultdict(list)
    read = 0
    try:
        while read < total:
            for msg in await sub.fetch(min(500, total - read), timeout=10):
                read += 1
                event = json.loads(msg.data)
                seen_ids[str(event["id"])] += 1
                _, resource, action = event["type"].rsplit(".", 2)
                history[(resource, _key(resource, event["resource"]))].append(action)
    finally:
        await sub.unsubscribe()
    f.figures["events"] = read
    for id_, n in seen_ids.items():
        if n > 1:
            f.duplicated.append(f"event {id_} published {n} times")
    # The state each resource must be in after its history of created/deleted events.
    exists = (
        {("network", str(r["id"])) for r in s["network"]}
        | {("topology_subnet", str(r["id"])) for r in s["subnet"] if r["state"] == "active"}
        | {("port", str(r["id"])) for r in s["port"] if r["state"] == "active"}
        | {("router", str(r["id"])) for r in s["router"] if r["state"] == "active"}
        | {("subnet", str(r["id"])) for r in s["ipam_subnets"]}
        | {("ip_allocation", f"{r['port_id']}/{r['subnet_id']}/{r['ip_address']}") for r in s["ipam_ips"]}
    )
    watched = {"network", "topology_subnet", "port", "router", "subnet", "ip_allocation"}
    for key, actions in history.items():
        if key[0] not in watched:
            continue
        life = [a for a in actions if a != "updated"]
        created, deleted = life.count("created"), life.count("deleted")
        if created > 1 and key[0] != "ip_allocation":
            f.duplicated.append(f"{key[0]} {key[1]}: {created} created events")
        if deleted > created or (life and life[0] != "created"):
            f.half.append(f"{key[0]} {key[1]}: events {life} (deleted without being created)")
        if (key in exists) != (created > deleted):
            f.lost.append(f"{key[0]} {key[1]}: events {life}, {'in' if key in exists else 'not in'} the database")
    for key in exists - set(history):
        f.lost.append(f"{key[0]} {key[1]}: in the database, no created event")


def _key(resource: str, body: dict[str, Any]) -> str:
    if resource == "ip_allocation":
        return f"{body['port_id']}/{body['subnet_id']}/{body['ip_address']}"
    return str(body["id"])


async def _specs(f: Findings, nc: Any, s: dict[str, Any], deleted: set[str]) -> None:
    """The RouterSpec stream's last word per router is what topology builds from its database."""
    js = nc.jetstream()
    bus = BusClient(nc, timeout=10)
    checked = 0
    for r in s["router"]:
        if r["state"] != "active":
            continue
        msg = await _last(js, rs.router_subject(AGENT_ID, r["id"]))
        want = await bus.call(SPEC, ByIdCommand(context=ADMIN, id=r["id"]))
        if msg is None:
            f.lost.append(f"router {r['id']}: no RouterSpec in the stream")
            continue
        got = rs.RouterSpec.model_validate_json(msg.data)
        if got != want:
            f.half.append(f"router {r['id']}: stream has revision {got.revision}, database builds {want.revision}")
        checked += 1
    present = {str(r["id"]) for r in s["router"]}
    for gone in deleted - present:
        msg = await _last(js, rs.router_subject(AGENT_ID, gone))
        if msg is not None and rs.RouterSpec.model_validate_json(msg.data).present:
            f.half.append(f"router {gone} was deleted, its agent's last spec still has it present")
        checked += 1
    f.figures["router_specs_checked"] = checked


async def _last(js: Any, subject: str) -> Any:
    try:
        return await js.get_last_msg(rs.ROUTERS_STREAM, subject)
    except NotFoundError:
        return None
