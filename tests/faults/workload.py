"""The client side of the kill -9 loop: projects that build and tear down subnets, ports, routers
(interfaces, gateways) and floating IPs through the HTTP API, and remember only what was answered.

Each client owns one network and keeps ``Owned``: exactly what the API acknowledged, nothing
assumed. It picks its next operation at random among those valid for what it owns (a subnet is
deleted only when nothing uses it, an interface removed only when no floating IP goes through it,
...), so any refusal is the system disagreeing with what it acknowledged earlier: a finding.

Retrying when the answer is lost (503, timeout, broken connection — see ``http_api``):

- creates (no client-chosen ids in Neutron's API) carry a unique name; after a lost answer the
  client looks for that name (floating IPs: for the port) until the API has answered "none" for
  ``settle`` seconds, then sends the create again: one name, at most one object;
- deletes are repeated until 204, and a 404 *after a lost answer* means done (the first try
  finding nothing would mean an acknowledged object was lost: a finding);
- ``add_router_interface`` after a lost answer is done when the router "already has a port on
  subnet"; ``remove_router_interface`` when the interface is not found; gateway updates (PUT of
  the whole ``external_gateway_info``) are idempotent as they are.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.faults.http_api import Api, Reply

LIMITS = {"subnets": 3, "ports": 6, "routers": 2, "fips": 3}


@dataclass
class Router:
    name: str
    gateway: bool
    interfaces: set[str] = field(default_factory=set)
    """subnet ids"""


@dataclass
class Owned:
    """What one project has, as the API acknowledged it."""

    project: str
    network: str
    subnets: dict[str, str] = field(default_factory=dict)
    """id → name"""
    ports: dict[str, tuple[str, str]] = field(default_factory=dict)
    """id → (name, subnet id)"""
    routers: dict[str, Router] = field(default_factory=dict)
    fips: dict[str, str | None] = field(default_factory=dict)
    """id → the port it is associated with (None: unassociated)"""

    def router_of(self, subnet: str) -> str | None:
        return next((r for r, x in self.routers.items() if subnet in x.interfaces), None)

    def fip_of(self, port: str) -> str | None:
        return next((f for f, p in self.fips.items() if p == port), None)

    def fip_behind(self, router: str, subnet: str | None = None) -> bool:
        """A floating IP goes through ``router`` (through its interface on ``subnet``, if given)."""
        for port in self.fips.values():
            if port is None:
                continue
            s = self.ports[port][1]
            if (subnet is None or s == subnet) and self.router_of(s) == router:
                return True
        return False


@dataclass
class Ledger:
    ops: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        return sum(n for k, n in self.ops.items() if k.endswith((" ok", " resolved")))


Op = tuple[int, Callable[..., Awaitable[None]], tuple[Any, ...]]


class Client:
    def __init__(
        self, api: Api, owned: Owned, rng: random.Random, *, tag: str, external: str, pool: str, ledger: Ledger
    ) -> None:
        self.api, self.o, self.rng, self.tag = api, owned, rng, tag
        self.external, self.pool, self.ledger = external, pool, ledger
        self.settle = 2.0
        self._n = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            weights, ops = zip(*[(w, (fn, args)) for w, fn, args in self.choices()], strict=True)
            fn, args = self.rng.choices(ops, weights)[0]
            await fn(*args)

    def choices(self) -> list[Op]:
        o, out = self.o, []
        if len(o.subnets) < LIMITS["subnets"]:
            out.append((3, self.create_subnet, ()))
        for s in o.subnets:
            if o.router_of(s) is None and all(p[1] != s for p in o.ports.values()):
                out.append((1, self.delete_subnet, (s,)))
        if o.subnets and len(o.ports) < LIMITS["ports"]:
            out.append((4, self.create_port, (self.rng.choice(sorted(o.subnets)),)))
        for p in o.ports:  # one with a floating IP too: the floating IP stays, unassociated
            out.append((1, self.delete_port, (p,)))
        if len(o.routers) < LIMITS["routers"]:
            out.append((2, self.create_router, ()))
        for rid, r in o.routers.items():
            if not r.interfaces:
                out.append((1, self.delete_router, (rid,)))
            if r.gateway and not o.fip_behind(rid):
                out.append((1, self.set_gateway, (rid, False)))
            if not r.gateway:
                out.append((2, self.set_gateway, (rid, True)))
            for s in o.subnets:
                if o.router_of(s) is None:
                    out.append((2, self.add_interface, (rid, s)))
            for s in r.interfaces:
                if not o.fip_behind(rid, s):
                    out.append((1, self.remove_interface, (rid, s)))
        reachable = [p for p, (_, s) in o.ports.items() if o.fip_of(p) is None and self._routed(s)]
        if len(o.fips) < LIMITS["fips"]:
            out += [(1, self.create_fip, (p,)) for p in reachable]
        for f, port in o.fips.items():
            out.append((1, self.delete_fip, (f,)))
            if port is not None:
                out.append((1, self.associate_fip, (f, None)))
            out += [(1, self.associate_fip, (f, p)) for p in reachable[:1]]
        return out

    def _routed(self, subnet: str) -> bool:
        """The subnet reaches the external network (a floating IP on one of its ports is valid)."""
        router = self.o.router_of(subnet)
        return router is not None and self.o.routers[router].gateway

    def _name(self, kind: str) -> str:
        self._n += 1
        return f"{self.tag}-{kind}-{self._n}"

    # ------------------------------------------------------------ operations

    async def create_subnet(self) -> None:
        name = self._name("subnet")
        body = {"network_id": self.o.network, "ip_version": 4, "subnetpool_id": self.pool, "name": name}
        item = await self._create("subnet", body, f"/v2.0/subnets?name={name}")
        if item is not None:
            self.o.subnets[item["id"]] = name

    async def delete_subnet(self, subnet: str) -> None:
        if await self._delete("subnet", f"/v2.0/subnets/{subnet}"):
            del self.o.subnets[subnet]

    async def create_port(self, subnet: str) -> None:
        name = self._name("port")
        body = {"network_id": self.o.network, "name": name, "fixed_ips": [{"subnet_id": subnet}]}
        item = await self._create("port", body, f"/v2.0/ports?name={name}")
        if item is not None:
            self.o.ports[item["id"]] = (name, subnet)

    async def delete_port(self, port: str) -> None:
        if await self._delete("port", f"/v2.0/ports/{port}"):
            del self.o.ports[port]
            if (fip := self.o.fip_of(port)) is not None:
                self.o.fips[fip] = None  # Neutron: deleting a port disassociates its floating IP

    async def create_router(self) -> None:
        name = self._name("router")
        gateway = self.rng.random() < 0.8
        body: dict[str, Any] = {"name": name}
        if gateway:
            body["external_gateway_info"] = {"network_id": self.external}
        item = await self._create("router", body, f"/v2.0/routers?name={name}")
        if item is not None:
            self.o.routers[item["id"]] = Router(name, gateway)

    async def delete_router(self, router: str) -> None:
        if await self._delete("router", f"/v2.0/routers/{router}"):
            del self.o.routers[router]

    async def set_gateway(self, router: str, on: bool) -> None:
        info = {"network_id": self.external} if on else None
        body = {"router": {"external_gateway_info": info}}
        if await self._action("router.gateway", "PUT", f"/v2.0/routers/{router}", body, lambda r: False):
            self.o.routers[router].gateway = on

    async def add_interface(self, router: str, subnet: str) -> None:
        def done(r: Reply) -> bool:
            return "already has a port on subnet" in r.message

        path = f"/v2.0/routers/{router}/add_router_interface"
        if await self._action("router.add_interface", "PUT", path, {"subnet_id": subnet}, done):
            self.o.routers[router].interfaces.add(subnet)

    async def remove_interface(self, router: str, subnet: str) -> None:
        path = f"/v2.0/routers/{router}/remove_router_interface"
        if await self._action("router.remove_interface", "PUT", path, {"subnet_id": subnet}, lambda r: r.status == 404):
            self.o.routers[router].interfaces.discard(subnet)

    async def create_fip(self, port: str) -> None:
        body = {"floating_network_id": self.external, "port_id": port}
        item = await self._create("floatingip", body, f"/v2.0/floatingips?port_id={port}")
        if item is not None:
            self.o.fips[item["id"]] = port

    async def associate_fip(self, fip: str, port: str | None) -> None:
        body = {"floatingip": {"port_id": port}}
        if await self._action("floatingip.associate", "PUT", f"/v2.0/floatingips/{fip}", body, lambda r: False):
            self.o.fips[fip] = port

    async def delete_fip(self, fip: str) -> None:
        if await self._delete("floatingip", f"/v2.0/floatingips/{fip}"):
            del self.o.fips[fip]

    # ------------------------------------------------------------ retry rules (module docstring)

    async def _create(self, kind: str, body: dict[str, Any], lookup: str) -> dict[str, Any] | None:
        op = f"{kind}.create"
        while True:
            reply = await self.api.call("POST", f"/v2.0/{kind}s", {kind: body})
            if reply.kind == "ok":
                self.ledger.ops[f"{op} ok"] += 1
                return dict(reply.body[kind])
            if reply.kind == "refused":
                self._refused(op, reply)
                return None
            if reply.kind == "unsent":
                await asyncio.sleep(0.1)
                continue
            self.ledger.ops[f"{op} lost answer"] += 1
            found = await self._look(kind, lookup)
            if found is not None:
                self.ledger.ops[f"{op} resolved"] += 1  # done, though the answer was lost
                return found
            self.ledger.ops[f"{op} not done, sent again"] += 1

    async def _look(self, kind: str, lookup: str) -> dict[str, Any] | None:
        answered: float | None = None
        while True:
            reply = await self.api.call("GET", lookup)
            if reply.kind == "ok":
                items = reply.body[f"{kind}s"]
                if len(items) > 1:
                    self.ledger.findings.append(f"{lookup}: {len(items)} objects for one create")
                if items:
                    return dict(items[0])
                answered = answered or time.monotonic()
                if time.monotonic() - answered >= self.settle:
                    return None
            await asyncio.sleep(0.2)

    async def _delete(self, kind: str, path: str) -> bool:
        op, sent = f"{kind}.delete", False
        while True:
            reply = await self.api.call("DELETE", path)
            if reply.kind == "ok":
                self.ledger.ops[f"{op} ok"] += 1
                return True
            if reply.kind == "refused" and reply.status == 404:
                if sent:
                    self.ledger.ops[f"{op} resolved"] += 1
                else:
                    self.ledger.findings.append(f"DELETE {path}: acknowledged object already gone (404)")
                return True
            if reply.kind == "refused":
                self._refused(op, reply)
                return False
            if reply.kind == "unknown" and not sent:
                self.ledger.ops[f"{op} lost answer"] += 1
                sent = True
            await asyncio.sleep(0.1)

    async def _action(self, op: str, method: str, path: str, body: Any, done: Callable[[Reply], bool]) -> bool:
        sent = False
        while True:
            reply = await self.api.call(method, path, body)
            if reply.kind == "ok":
                self.ledger.ops[f"{op} ok"] += 1
                return True
            if reply.kind == "refused":
                if sent and done(reply):
                    self.ledger.ops[f"{op} resolved"] += 1
                    return True
                self._refused(op, reply)
                return False
            if reply.kind == "unknown" and not sent:
                self.ledger.ops[f"{op} lost answer"] += 1
                sent = True
            await asyncio.sleep(0.1)

    def _refused(self, op: str, reply: Reply) -> None:
        """Every operation was valid for what was acknowledged: a refusal contradicts the past."""
        self.ledger.ops[f"{op} refused"] += 1
        self.ledger.findings.append(f"{op} refused: {reply.status} {reply.error_type}: {reply.message}")


async def differences(admin: Api, clients: list[Owned], external: str) -> dict[str, list[Any]]:
    """What the API shows now against what the clients were told: ``lost`` (acknowledged, absent or
    different) and ``extra`` (present, never acknowledged: a duplicate or a ghost of a lost answer)."""
    want: dict[str, set[Any]] = {k: set() for k in ("subnets", "ports", "interfaces", "routers", "fips")}
    have: dict[str, set[Any]] = {k: set() for k in want}
    for o in clients:
        want["subnets"] |= {(i, n) for i, n in o.subnets.items()}
        want["ports"] |= {(i, n, s) for i, (n, s) in o.ports.items()}
        want["interfaces"] |= {(r, s) for r, x in o.routers.items() for s in x.interfaces}
        want["routers"] |= {(i, x.name, x.gateway) for i, x in o.routers.items()}
        want["fips"] |= {(i, p) for i, p in o.fips.items()}
        subnets = (await admin.get(f"/v2.0/subnets?network_id={o.network}"))["subnets"]
        have["subnets"] |= {(s["id"], s["name"]) for s in subnets}
        for p in (await admin.get(f"/v2.0/ports?network_id={o.network}"))["ports"]:
            subnet = p["fixed_ips"][0]["subnet_id"] if p["fixed_ips"] else None
            if p["device_owner"] == "network:router_interface":
                have["interfaces"].add((p["device_id"], subnet))
            else:
                have["ports"].add((p["id"], p["name"], subnet))
        routers = (await admin.get(f"/v2.0/routers?project_id={o.project}"))["routers"]
        have["routers"] |= {(r["id"], r["name"], r["external_gateway_info"] is not None) for r in routers}
        fips = (await admin.get(f"/v2.0/floatingips?project_id={o.project}"))["floatingips"]
        have["fips"] |= {(f["id"], f["port_id"]) for f in fips}
    # The external network's side: one gateway port per router with a gateway, one per floating IP.
    on_external = (await admin.get(f"/v2.0/ports?network_id={external}"))["ports"]
    want["gateway_ports"] = {r for o in clients for r, x in o.routers.items() if x.gateway}
    have["gateway_ports"] = {p["device_id"] for p in on_external if p["device_owner"] == "network:router_gateway"}
    want["fip_ports"] = {f for o in clients for f in o.fips}
    have["fip_ports"] = {p["device_id"] for p in on_external if p["device_owner"] == "network:floatingip"}
    out: dict[str, list[Any]] = {}
    for kind in want:
        if lost := sorted(want[kind] - have[kind], key=str):
            out[f"lost {kind}"] = lost
        if extra := sorted(have[kind] - want[kind], key=str):
            out[f"extra {kind}"] = extra
    return out
