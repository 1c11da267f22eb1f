"""Project isolation and admin-only attributes, fuzzed with several identities (Neutron's default policy).

A hypothesis state machine drives the HTTP API as four callers at once: the admin, a member of
project A (alice), a member of project B (bob) and a reader of project A. Each step is one random
call: a create, update, delete, show, filtered list, tag change, router gateway/interface change,
floating IP association or RBAC entry, often with attributes only an admin may set
(``shared``, ``router:external``, ``provider:*``, ``is_default``, ``enable_snat``,
``external_fixed_ips``, ``floating_ip_address``, a port's ``mac_address``/``network:*`` owner/fixed
address, a subnet's ``service_types``, another project's ``project_id``) and attributes Neutron has
and this API does not (``binding:host_id``, ``distributed``, ``ha``).

The oracle needs no bookkeeping of who owns what: the admin sees everything, so the admin's lists
(resources and RBAC entries) are the ground truth, and Neutron's visibility rules applied to them
say exactly what each project must see. After every step:

* no call ever answered 5xx;
* every project lists exactly what Neutron lets it read, nothing more (a leak) and nothing less;
  the ``shared`` it is shown is relative to it; it never sees an admin-only attribute;
* every write by a project on something it may not touch was refused with Neutron's status (404
  when it cannot see the object, 403 when it can) and left the object as it was;
* a project's create with an admin-only attribute was refused (403, or 400 for what the API lacks),
  and whatever a project did create belongs to it.

``SCOPENET_API_FUZZ_EXAMPLES=N`` runs N random programs (seeded at random) instead of CI's ten
fixed ones.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from scopenet.services.api.app import RunningApi
from tests.integration.api.conftest import TOKENS

WHO = ("admin", "alice", "bob", "reader")
PROJECTS = ("admin", "alice", "bob")
PROJECT = {who: TOKENS[who][1] for who in WHO}

#: kind -> (URL collection, list key)
KINDS = {
    "address_scope": ("address-scopes", "address_scopes"),
    "subnetpool": ("subnetpools", "subnetpools"),
    "network": ("networks", "networks"),
    "subnet": ("subnets", "subnets"),
    "port": ("ports", "ports"),
    "router": ("routers", "routers"),
    "floatingip": ("floatingips", "floatingips"),
    "rbac_policy": ("rbac-policies", "rbac_policies"),
}
TAGGED = ("subnetpool", "network", "subnet", "port", "router", "floatingip")
SHARED_FLAG = ("address_scope", "subnetpool", "network")
ADMIN_VIEW = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
#: What else a change to a kind may make visible or invisible (RBAC rows, a network's flags).
READ_DEPENDS = {
    "rbac_policy": {"address_scope", "subnetpool", "network", "subnet"},
    "network": {"subnet", "port", "rbac_policy"},
    "address_scope": {"rbac_policy"},
    "subnetpool": {"rbac_policy"},
}
DONE = frozenset({200, 201, 204})
#: What a caller Neutron lets act may still get: the request can break a rule (in use, overlap, ...).
ALLOWED = DONE | {400, 409}

_counter = itertools.count(1)


def serial() -> int:
    """Unique across the whole session, so prefixes and names never collide between examples."""
    return next(_counter)


def cidr24() -> str:
    n = serial()
    return f"10.{100 + (n // 256) % 150}.{n % 256}.0/24"


def pool_prefix() -> str:
    n = serial()
    return f"172.{16 + (n // 16) % 16}.{(n % 16) * 16}.0/20"


# ---------------------------------------------------------------- HTTP


@dataclass
class Call:
    who: str
    method: str
    path: str
    body: Any
    status: int
    reply: Any

    def __str__(self) -> str:
        body = "" if self.body is None else " " + json.dumps(self.body)[:400]
        return f"{self.who}: {self.method} {self.path}{body} -> {self.status} {json.dumps(self.reply)[:400]}"


class Client:
    """Synchronous (the state machine runs in a thread while the stack serves on the event loop)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.recent: deque[Call] = deque(maxlen=12)
        self.count = 0
        self.first_failure: tuple[AssertionError, list[Call]] | None = None
        self.writes: Counter[tuple[str, int]] = Counter()

    def failed(self, exc: AssertionError) -> None:
        if self.first_failure is None:
            self.first_failure = (exc, list(self.recent))

    def __call__(
        self, method: str, path: str, who: str, body: Any = None, params: list[tuple[str, str]] | None = None
    ) -> Call:
        resp = self.session.request(
            method,
            self.base + path,
            data=None if body is None else json.dumps(body),
            params=params,
            headers={"X-Auth-Token": TOKENS[who][0], "Content-Type": "application/json"},
            timeout=30,
        )
        reply = resp.json() if resp.content else None
        shown = path + ("?" + "&".join(f"{k}={v}" for k, v in params) if params else "")
        call = Call(who, method, shown, body, resp.status_code, reply)
        self.recent.append(call)
        self.count += 1
        if method != "GET":
            self.writes[(who, call.status // 100 * 100 if call.status in DONE else call.status)] += 1
        assert resp.status_code < 500, f"server error: {call}"
        return call

    def listing(self, who: str, kind: str, params: list[tuple[str, str]] | None = None) -> dict[str, dict[str, Any]]:
        coll, key = KINDS[kind]
        call = self("GET", f"/v2.0/{coll}", who, params=params)
        assert call.status == 200, str(call)
        return {item["id"]: item for item in call.reply[key]}


def guarded(fn: Any) -> Any:
    """Keep the first failure with the calls that led to it: hypothesis replays a failing program
    to report it, and against a stack that has moved on the replay may fail differently."""

    @functools.wraps(fn)
    def run(self: Isolation, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except AssertionError as exc:
            self.api.failed(exc)
            raise

    return run


def expect(call: Call, allowed: frozenset[int] | set[int], why: str) -> None:
    assert call.status in allowed, f"{why}: expected one of {sorted(allowed)}, got {call}"


# ---------------------------------------------------------------- ground truth


@dataclass
class Truth:
    """Everything, as the admin sees it, and Neutron's read rules over it."""

    items: dict[str, dict[str, dict[str, Any]]]
    rbac: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """object id -> its RBAC entries"""

    @classmethod
    def read(cls, api: Client, kinds: tuple[str, ...] = tuple(KINDS)) -> Truth:
        items = {kind: api.listing("admin", kind) for kind in kinds}
        truth = cls(items)
        for entry in items.get("rbac_policy", {}).values():
            truth.rbac.setdefault(entry["object_id"], []).append(entry)
        return truth

    def get(self, kind: str, id_: str) -> dict[str, Any] | None:
        return self.items[kind].get(id_)

    def targets(self, object_id: str, action: str | None = None) -> set[str]:
        return {e["target_tenant"] for e in self.rbac.get(object_id, []) if action is None or e["action"] == action}

    def shared_to(self, object_id: str, project: str) -> bool:
        return bool(self.targets(object_id, "access_as_shared") & {"*", project})

    def owner(self, kind: str, id_: str) -> str | None:
        item = self.get(kind, id_)
        return None if item is None else str(item["project_id"])

    def net_owner(self, network_id: str) -> str | None:
        return self.owner("network", network_id)

    def visible(self, kind: str, item: dict[str, Any], project: str) -> bool:
        """Neutron 29's get_<kind> rules for a project member or reader."""
        if item.get("project_id") == project:
            return True
        if kind in ("address_scope", "subnetpool"):
            return self.shared_to(item["id"], project)
        if kind == "network":  # rule:shared or rule:external, for everyone or this project
            return bool(self.targets(item["id"]) & {"*", project})
        if kind == "subnet":
            # rule:shared or rule:external_network. (get_subnet also names the network's owner, but
            # Neutron's query never returns another project's subnet for that alone.)
            return bool(self.targets(item["network_id"]) & {"*", project})
        if kind == "port":  # the port's or the network's owner
            return self.net_owner(item["network_id"]) == project
        return False  # routers, floating IPs and RBAC entries: their owner only

    def sees(self, who: str, kind: str, id_: str) -> bool:
        item = self.get(kind, id_)
        return item is not None and (who == "admin" or self.visible(kind, item, PROJECT[who]))

    def may_change(self, who: str, kind: str, id_: str, action: str) -> bool:
        """Neutron 29's update_/delete_ rules (beyond visibility) for a member, or admin."""
        if who == "admin":
            return True
        if who == "reader":
            return False
        project, owner = PROJECT[who], self.owner(kind, id_)
        if kind == "subnet":
            return project in (owner, self.net_owner(self.items["subnet"][id_]["network_id"]))
        if kind == "port" and action == "delete":  # the network's owner too, but not an instance's port
            port = self.items["port"][id_]
            instance = str(port["device_owner"]).startswith(("compute:", "baremetal:", "manila:"))
            return project == owner or (project == self.net_owner(port["network_id"]) and not instance)
        return project == owner


def write_outcome(truth: Truth, who: str, kind: str, id_: str, action: str) -> frozenset[int]:
    """Rule 6/7: 404 for what the caller cannot see, 403 for what it sees and may not change."""
    if not truth.sees(who, kind, id_):
        return frozenset({404})
    if not truth.may_change(who, kind, id_, action):
        return frozenset({403})
    return ALLOWED


# ---------------------------------------------------------------- the machine


class Isolation(RuleBasedStateMachine):
    api: Client

    def __init__(self) -> None:
        super().__init__()
        self.mine: dict[str, set[str]] = {kind: set() for kind in KINDS}
        self.gone: list[str] = []
        self.refused: list[tuple[str, str, Call]] = []
        self.truth = Truth({kind: {} for kind in KINDS})
        self.touched: set[str] = set(KINDS)
        self.steps = 0
        self.forwardings: list[tuple[str, str]] = []
        """(floating IP, port forwarding) made by this run."""

    # ------------------------------------------------------------ helpers

    def call(self, method: str, path: str, who: str, body: Any = None, **kw: Any) -> Call:
        return self.api(method, path, who, body, **kw)

    def refresh(self) -> None:
        self.truth = Truth.read(self.api)
        for kind, label, call in self.refused:
            left = [i for i in self.truth.items[kind].values() if label in (i.get("name"), i.get("description"))]
            assert not left, f"a refused create left {kind} {left[0]['id']} behind: {call}"
        self.refused = []
        for net in self.truth.items["network"].values():
            assert set(ADMIN_VIEW) <= set(net), f"the admin does not see a network's provider attributes: {net}"
        for kind, ids in self.mine.items():
            vanished = ids - set(self.truth.items[kind])
            self.gone += sorted(vanished)
            ids -= vanished

    def targets(self, kind: str) -> list[str]:
        """This run's objects of a kind, with what the stack made for them (router ports, RBAC rows)."""
        items = self.truth.items[kind]
        out = set(self.mine[kind]) & set(items)
        if kind == "port":
            nets = self.mine["network"]
            out |= {i for i, p in items.items() if p["network_id"] in nets}
        if kind == "rbac_policy":
            objects = set().union(*(self.mine[k] for k in ("address_scope", "subnetpool", "network")))
            out |= {i for i, e in items.items() if e["object_id"] in objects}
        return sorted(out)

    def pick(self, data: st.DataObject, kind: str, *, stale: bool = True) -> str:
        """One of this run's objects, now and then a deleted or an unknown id. The draws never
        depend on the stack's state (hypothesis replays choice sequences and wants the same shape)."""
        choices = self.targets(kind)
        roll = data.draw(st.integers(0, 9), label="which")
        index = data.draw(st.integers(0, 1 << 16), label=f"{kind} index")
        if stale and roll == 0:
            return str(uuid.uuid4())
        if stale and roll == 1 and self.gone:
            return self.gone[index % len(self.gone)]
        if not choices:
            return str(uuid.uuid4())
        return choices[index % len(choices)]

    def created(self, call: Call, who: str, kind: str, key: str) -> dict[str, Any] | None:
        """After a create: what a project makes is its own (admin may name another project); what
        was refused left nothing behind (checked at the next step, by its unique name)."""
        if call.status != 201:
            sent = (call.body or {}).get(key) or {}
            label = sent.get("name") or sent.get("description")
            if label:
                self.refused.append((kind, label, call))
            return None
        item: dict[str, Any] = call.reply[key]
        if who != "admin":
            assert item["project_id"] == PROJECT[who], f"a project created for another one: {call}"
            assert not set(ADMIN_VIEW) & set(item), f"admin-only attributes shown to a project: {call}"
        self.mine[kind].add(item["id"])
        self.touched.add(kind)
        return item

    def owner_body(self, data: st.DataObject, who: str) -> tuple[dict[str, str], bool]:
        """Sometimes ``project_id``/``tenant_id`` of some project; True when it is not the caller's."""
        which = data.draw(st.sampled_from([None, *PROJECTS]), label="owner")
        if which is None:
            return {}, False
        key = data.draw(st.sampled_from(["project_id", "tenant_id"]), label="owner key")
        return {key: PROJECT[which]}, PROJECT[which] != PROJECT[who]

    def unchanged(self, kind: str, id_: str, before: dict[str, Any] | None, call: Call) -> None:
        """A refused write leaves the object as it was."""
        if before is None or call.status in DONE:
            return
        after = self.api("GET", f"/v2.0/{KINDS[kind][0]}/{id_}", "admin")
        assert after.status == 200, f"refused {call} yet the object is gone: {after}"
        now = after.reply[kind]
        for k in ("revision_number", "name", "shared", "router:external", "tags", "project_id"):
            assert now.get(k) == before.get(k), f"refused {call} yet {k} changed: {before.get(k)} -> {now.get(k)}"

    # ------------------------------------------------------------ seed

    @initialize()
    @guarded
    def seed(self) -> None:
        """An external network with a subnet (admin's), so gateways and floating IPs have somewhere to go."""
        net = self.call("POST", "/v2.0/networks", "admin", {"network": {"name": "fuzz-ext", "router:external": True}})
        expect(net, {201}, "admin creates an external network")
        self.mine["network"].add(net.reply["network"]["id"])
        n = serial()
        sub = self.call(
            "POST",
            "/v2.0/subnets",
            "admin",
            {
                "subnet": {
                    "network_id": net.reply["network"]["id"],
                    "ip_version": 4,
                    "cidr": f"100.{64 + (n // 256) % 64}.{n % 256}.0/24",
                }
            },
        )
        expect(sub, {201}, "admin creates the external subnet")
        self.mine["subnet"].add(sub.reply["subnet"]["id"])
        # Cross-project structures from the start, so random steps often land on them: a network
        # the admin shares with everyone, one alice shares with bob by name (with a port of bob's
        # on it), and a scope and pool the admin shares.
        shared = self._make("admin", "network", {"name": "fuzz-shared", "shared": True})
        self._make("admin", "subnet", {"network_id": shared, "ip_version": 4, "cidr": cidr24()})
        alices = self._make("alice", "network", {"name": "fuzz-alice"})
        self._make("alice", "subnet", {"network_id": alices, "ip_version": 4, "cidr": cidr24()})
        self._make(
            "alice",
            "rbac_policy",
            {
                "object_type": "network",
                "object_id": alices,
                "action": "access_as_shared",
                "target_tenant": PROJECT["bob"],
            },
        )
        self._make("bob", "port", {"network_id": alices})
        scope = self._make("admin", "address_scope", {"name": "fuzz-scope", "ip_version": 4, "shared": True})
        self._make(
            "admin",
            "subnetpool",
            {"name": "fuzz-pool", "prefixes": [pool_prefix()], "address_scope_id": scope, "shared": True},
        )

    def _make(self, who: str, kind: str, body: dict[str, Any]) -> str:
        call = self.call("POST", f"/v2.0/{KINDS[kind][0]}", who, {kind: body})
        expect(call, {201}, f"seed {kind}")
        item = self.created(call, who, kind, kind)
        assert item is not None
        return str(item["id"])

    # ------------------------------------------------------------ creates

    @rule(data=st.data(), who=st.sampled_from(WHO), shared=st.booleans())
    @guarded
    def create_address_scope(self, data: st.DataObject, who: str, shared: bool) -> None:
        owner, foreign = self.owner_body(data, who)
        body = {"name": f"fuzz-scope-{serial()}", "ip_version": 4, **owner}
        if shared:
            body["shared"] = True
        call = self.call("POST", "/v2.0/address-scopes", who, {"address_scope": body})
        if who != "admin" and foreign:  # checked before policy (neutron-lib populate_project_id)
            expect(call, {400}, "only admin names another project")
        elif who == "reader" or (who != "admin" and shared):
            expect(call, {403}, "only admin shares a scope; a reader creates nothing")
        else:
            expect(call, {201}, "a member or admin creates a scope")
        self.created(call, who, "address_scope", "address_scope")

    @rule(data=st.data(), who=st.sampled_from(WHO), shared=st.booleans(), is_default=st.booleans())
    @guarded
    def create_subnetpool(self, data: st.DataObject, who: str, shared: bool, is_default: bool) -> None:
        owner, foreign = self.owner_body(data, who)
        body: dict[str, Any] = {"name": f"fuzz-pool-{serial()}", "prefixes": [pool_prefix()], **owner}
        scope = None
        if data.draw(st.booleans(), label="scoped"):
            scope = self.pick(data, "address_scope")
            body["address_scope_id"] = scope
        if shared:
            body["shared"] = True
        if is_default and who != "admin":  # an admin's default pool would change other tests' subnets
            body["is_default"] = True
        call = self.call("POST", "/v2.0/subnetpools", who, {"subnetpool": body})
        if who != "admin" and foreign:  # checked before policy (neutron-lib populate_project_id)
            expect(call, {400}, "only admin names another project")
        elif who == "reader" or (who != "admin" and (shared or is_default)):
            expect(call, {403}, "shared/is_default pools are admin's; a reader creates nothing")
        elif scope is not None and not self.truth.sees(who, "address_scope", scope):
            expect(call, {404}, "a pool cannot join a scope its creator cannot see")
        else:
            expect(call, ALLOWED, "a pool")
        self.created(call, who, "subnetpool", "subnetpool")

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def create_network(self, data: st.DataObject, who: str) -> None:
        owner, foreign = self.owner_body(data, who)
        body: dict[str, Any] = {"name": f"fuzz-net-{serial()}", **owner}
        keys = ["shared", "router:external", "provider:network_type", "provider:segmentation_id"]
        admin_only = data.draw(st.sets(st.sampled_from(keys)), label="admin-only")
        for key in admin_only:
            body[key] = {"provider:network_type": "vxlan", "provider:segmentation_id": 1_000_000 + serial()}.get(
                key, True
            )
        odd = data.draw(st.sampled_from([None, "provider:physical_network", "is_default", "segments"]), label="odd")
        if odd is not None:
            body[odd] = "physnet1" if odd == "provider:physical_network" else True
        call = self.call("POST", "/v2.0/networks", who, {"network": body})
        if odd is not None:
            expect(call, {400}, f"{odd} cannot be given on POST here")
        elif who != "admin" and foreign:  # checked before policy (neutron-lib populate_project_id)
            expect(call, {400}, "only admin names another project")
        elif who == "reader" or (who != "admin" and admin_only):
            expect(call, {403}, "shared/router:external/provider:* are admin's")
        else:
            expect(call, {201, 409} if "provider:segmentation_id" in admin_only else {201}, "a network")
        item = self.created(call, who, "network", "network")
        if item is not None and who == "admin" and "provider:segmentation_id" in body:
            assert item["provider:segmentation_id"] == body["provider:segmentation_id"], str(call)

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def create_subnet(self, data: st.DataObject, who: str) -> None:
        net = self.pick(data, "network")
        owner, foreign = self.owner_body(data, who)
        body: dict[str, Any] = {"network_id": net, "ip_version": 4, "name": f"fuzz-subnet-{serial()}", **owner}
        pool = None
        if data.draw(st.booleans(), label="from a pool"):
            pool = self.pick(data, "subnetpool")
            body.update(subnetpool_id=pool, prefixlen=28)
        else:
            body["cidr"] = cidr24()
        service_types = data.draw(st.sampled_from([None, [], ["compute:nova"]]), label="service_types")
        if service_types is not None:
            body["service_types"] = service_types
        call = self.call("POST", "/v2.0/subnets", who, {"subnet": body})
        if who != "admin" and foreign:  # checked before policy (neutron-lib populate_project_id)
            expect(call, {400}, "only admin names another project")
        elif who == "reader":
            expect(call, {403}, "a reader creates nothing")
        elif who != "admin" and service_types is not None:
            expect(call, {403}, "service_types are admin's (create_subnet:service_types)")
        elif not self.truth.sees(who, "network", net):
            expect(call, {404}, "a subnet on a network the caller cannot see")
        elif who != "admin" and self.truth.net_owner(net) != PROJECT[who]:
            expect(call, {403}, "create_subnet: admin or the network's owner")
        elif pool is not None and not self.truth.sees(who, "subnetpool", pool):
            expect(call, {404}, "a subnet from a pool the caller cannot see")
        else:
            expect(call, ALLOWED, "a subnet")
        self.created(call, who, "subnet", "subnet")

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def create_port(self, data: st.DataObject, who: str) -> None:
        net = self.pick(data, "network")
        owner, foreign = self.owner_body(data, who)
        body: dict[str, Any] = {"network_id": net, "name": f"fuzz-port-{serial()}", **owner}
        net_owner_only = data.draw(
            st.sampled_from([None, "mac_address", "device_owner", "fixed_ips:ip_address"]), label="net-owner only"
        )
        if net_owner_only == "mac_address":
            n = serial()
            body["mac_address"] = f"fa:16:3f:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"
        elif net_owner_only == "device_owner":
            body["device_owner"] = "network:router_interface"
        elif net_owner_only == "fixed_ips:ip_address":
            subnets = [s for s in self.truth.items["subnet"].values() if s["network_id"] == net]
            body["fixed_ips"] = [{"ip_address": subnets[0]["cidr"].replace(".0/24", ".77")}] if subnets else []
        if data.draw(st.booleans(), label="an instance's port") and "device_owner" not in body:
            body["device_owner"] = "compute:nova"
        odd = data.draw(st.sampled_from([None, "binding:host_id", "binding:profile", "port_security_enabled"]))
        if odd is not None:
            body[odd] = {"binding:host_id": "host-1", "binding:profile": {}, "port_security_enabled": False}[odd]
        call = self.call("POST", "/v2.0/ports", who, {"port": body})
        sees = self.truth.sees(who, "network", net)
        net_owner = who == "admin" or self.truth.net_owner(net) == PROJECT[who]
        if odd is not None:
            expect(call, {400}, f"{odd} is not an attribute here")
        elif who != "admin" and foreign:  # checked before policy (neutron-lib populate_project_id)
            expect(call, {400}, "only admin names another project")
        elif who == "reader":
            expect(call, {403}, "a reader creates nothing")
        elif not sees:
            expect(call, {403, 404}, "a port on a network the caller cannot see")
        elif not net_owner and not self.truth.shared_to(net, PROJECT[who]):
            expect(call, {403}, "create_port: admin, the network's owner, or a shared network")
        elif not net_owner and net_owner_only is not None:
            expect(call, {403}, f"create_port:{net_owner_only} is the network owner's")
        else:
            expect(call, ALLOWED, "a port")
        self.created(call, who, "port", "port")

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def create_router(self, data: st.DataObject, who: str) -> None:
        owner, foreign = self.owner_body(data, who)
        body: dict[str, Any] = {"name": f"fuzz-router-{serial()}", **owner}
        gw_net, gw_admin = None, False
        if data.draw(st.booleans(), label="with a gateway"):
            gw_net = self.pick(data, "network")
            info: dict[str, Any] = {"network_id": gw_net}
            extra = data.draw(st.sampled_from([None, "enable_snat", "external_fixed_ips"]), label="gw admin-only")
            if extra == "enable_snat":
                info["enable_snat"] = data.draw(st.booleans())
            elif extra == "external_fixed_ips":
                info["external_fixed_ips"] = []
            gw_admin = extra is not None
            body["external_gateway_info"] = info
        odd = data.draw(st.sampled_from([None, "distributed", "ha", "routes"]), label="odd")
        if odd is not None:
            body[odd] = [] if odd == "routes" else True
        call = self.call("POST", "/v2.0/routers", who, {"router": body})
        if odd is not None:
            expect(call, {400}, f"{odd} cannot be given on POST here")
        elif who != "admin" and foreign:  # checked before policy (neutron-lib populate_project_id)
            expect(call, {400}, "only admin names another project")
        elif who == "reader":
            expect(call, {403}, "a reader creates nothing")
        elif who != "admin" and gw_admin:
            expect(call, {403}, "enable_snat/external_fixed_ips are admin's")
        elif gw_net is not None and not self.truth.sees(who, "network", gw_net):
            expect(call, {404}, "a gateway on a network the caller cannot see")
        else:
            expect(call, ALLOWED, "a router")
        item = self.created(call, who, "router", "router")
        if item is not None and gw_net is not None and who != "admin":
            assert item["external_gateway_info"]["enable_snat"] is True, str(call)

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def create_floatingip(self, data: st.DataObject, who: str) -> None:
        net = self.pick(data, "network")
        owner, foreign = self.owner_body(data, who)
        body: dict[str, Any] = {"floating_network_id": net, "description": f"fuzz-fip-{serial()}", **owner}
        port = None
        if data.draw(st.booleans(), label="associated"):
            port = self.pick(data, "port")
            body["port_id"] = port
        fixed_address = data.draw(st.booleans(), label="floating_ip_address")
        if fixed_address:
            subnets = [s for s in self.truth.items["subnet"].values() if s["network_id"] == net]
            body["floating_ip_address"] = subnets[0]["cidr"].replace(".0/24", ".99") if subnets else "100.64.0.99"
        call = self.call("POST", "/v2.0/floatingips", who, {"floatingip": body})
        if who != "admin" and foreign:  # checked before policy (neutron-lib populate_project_id)
            expect(call, {400}, "only admin names another project")
        elif who == "reader" or (who != "admin" and fixed_address):
            expect(call, {403}, "floating_ip_address is admin's; a reader creates nothing")
        elif not self.truth.sees(who, "network", net):
            expect(call, {404}, "a floating IP on a network the caller cannot see")
        else:
            expect(call, ALLOWED | {404}, "a floating IP")
        item = self.created(call, who, "floatingip", "floatingip")
        if item is not None and port is not None and who != "admin":
            assert self.truth.owner("port", port) == PROJECT[who], f"a floating IP on another's port: {call}"

    @rule(data=st.data(), who=st.sampled_from(WHO), share=st.sampled_from(["*", *PROJECTS]))
    @guarded
    def create_rbac_policy(self, data: st.DataObject, who: str, share: str) -> None:
        kind = data.draw(st.sampled_from(["address_scope", "subnetpool", "network"]), label="object kind")
        obj = self.pick(data, kind)
        action = "access_as_shared"
        if kind == "network" and data.draw(st.booleans(), label="external"):
            action = "access_as_external"
        tenant = "*" if share == "*" else PROJECT[share]
        owner, foreign = self.owner_body(data, who)
        body = {"object_type": kind, "object_id": obj, "action": action, "target_tenant": tenant, **owner}
        call = self.call("POST", "/v2.0/rbac-policies", who, {"rbac_policy": body})
        if who != "admin" and foreign:  # checked before policy (neutron-lib populate_project_id)
            expect(call, {400}, "only admin names another project")
        elif who == "reader" or (who != "admin" and tenant == "*"):
            expect(call, {403}, "only admin shares with everyone; a reader creates nothing")
        elif not self.truth.sees(who, kind, obj):
            expect(call, {404}, "an RBAC entry on an object the caller cannot see")
        elif who != "admin" and self.truth.owner(kind, obj) != PROJECT[who]:
            expect(call, {400}, "only admins manipulate policies on objects they do not own")
        else:
            expect(call, ALLOWED, "an RBAC entry")
        self.created(call, who, "rbac_policy", "rbac_policy")

    # ------------------------------------------------------------ updates, deletes, actions

    def _update_body(self, data: st.DataObject, kind: str) -> tuple[dict[str, Any], str]:
        """A PUT body and what Neutron makes of it: ``ok``, ``admin`` (admin-only key), ``ro`` (400),
        ``net owner`` (a port's key only the network's owner may change)."""
        name = {"name": f"fuzz-renamed-{serial()}"}
        choices: dict[str, list[tuple[dict[str, Any], str]]] = {
            "address_scope": [(name, "ok"), ({"shared": True}, "admin"), ({"shared": False}, "admin")],
            "subnetpool": [
                (name, "ok"),
                ({"description": "d"}, "ok"),
                ({"is_default": False}, "admin"),
                ({"shared": True}, "ro"),
            ],
            "network": [
                (name, "ok"),
                ({"mtu": 1400}, "ok"),
                ({"shared": data.draw(st.booleans())}, "admin"),
                ({"router:external": data.draw(st.booleans())}, "admin"),
                ({"provider:segmentation_id": 77}, "ro"),
            ],
            "subnet": [(name, "ok"), ({"description": "d"}, "ok"), ({"service_types": []}, "admin")],
            "port": [
                (name, "ok"),
                ({"device_id": "dev-1"}, "ok"),
                ({"fixed_ips": []}, "net owner"),
                ({"mac_address": "fa:16:3e:00:00:01"}, "ro"),
                ({"binding:host_id": "h"}, "ro"),
            ],
            "router": [(name, "ok"), ({"external_gateway_info": None}, "ok"), ({"distributed": True}, "ro")],
            "floatingip": [({"description": "d"}, "ok"), ({"port_id": None}, "ok"), ({"router_id": None}, "ro")],
            "rbac_policy": [
                ({"target_tenant": PROJECT[data.draw(st.sampled_from(PROJECTS))]}, "ok"),
                ({"target_tenant": "*"}, "admin"),
            ],
        }
        body, what = data.draw(st.sampled_from(choices[kind]), label="body")
        if kind != "rbac_policy" and data.draw(st.integers(0, 7), label="project_id too") == 0:
            body, what = {**body, "project_id": PROJECT["bob"]}, "ro"
        return body, what

    @rule(data=st.data(), who=st.sampled_from(WHO), kind=st.sampled_from(list(KINDS)))
    @guarded
    def update(self, data: st.DataObject, who: str, kind: str) -> None:
        id_ = self.pick(data, kind)
        body, what = self._update_body(data, kind)
        before = self.truth.get(kind, id_)
        call = self.call("PUT", f"/v2.0/{KINDS[kind][0]}/{id_}", who, {kind: body})
        if what == "ro":
            expect(call, {400}, "read-only attributes: 400 before anything else (rule 3)")
        elif what == "admin" and who != "admin":
            seen = self.truth.sees(who, kind, id_)
            expect(call, {403} if seen else {404}, "an admin-only attribute in a PUT (rule 6: 404 if unseen)")
        else:
            outcome = write_outcome(self.truth, who, kind, id_, "update")
            if what == "net owner" and outcome == ALLOWED and who != "admin":
                port = self.truth.items["port"][id_]
                if self.truth.net_owner(port["network_id"]) != PROJECT[who]:
                    outcome = frozenset({403})  # update_port:fixed_ips: admin or the network's owner
            expect(call, outcome, "update")
        self.unchanged(kind, id_, before, call)
        self.touched.add(kind)

    @rule(data=st.data(), who=st.sampled_from(WHO), kind=st.sampled_from(list(KINDS)))
    @guarded
    def delete(self, data: st.DataObject, who: str, kind: str) -> None:
        id_ = self.pick(data, kind)
        before = self.truth.get(kind, id_)
        call = self.call("DELETE", f"/v2.0/{KINDS[kind][0]}/{id_}", who)
        expect(call, write_outcome(self.truth, who, kind, id_, "delete"), "delete")
        self.unchanged(kind, id_, before, call)
        if call.status == 204:
            gone = self.call("GET", f"/v2.0/{KINDS[kind][0]}/{id_}", "admin")
            expect(gone, {404}, "a deleted object is gone")
        self.touched.update(KINDS)  # deletes cascade (a network's subnets, an object's RBAC rows)

    @rule(data=st.data(), who=st.sampled_from(WHO), kind=st.sampled_from(TAGGED))
    @guarded
    def set_tags(self, data: st.DataObject, who: str, kind: str) -> None:
        id_ = self.pick(data, kind)
        before = self.truth.get(kind, id_)
        path = f"/v2.0/{KINDS[kind][0]}/{id_}/tags"
        tags = list((before or {}).get("tags") or ["none"])
        method, path, body = data.draw(
            st.sampled_from(
                [
                    ("PUT", path, {"tags": [f"t{serial()}"]}),
                    ("PUT", f"{path}/t{serial()}", None),
                    ("DELETE", f"{path}/{tags[0]}", None),
                    ("DELETE", path, None),
                ]
            ),
            label="tag call",
        )
        call = self.call(method, path, who, body)
        outcome = write_outcome(self.truth, who, kind, id_, "update")
        if outcome == ALLOWED or path.endswith("/tags/none"):
            # no such tag: 404 TagNotFound (before the ownership check, unlike Neutron: nothing the
            # caller could not read anyway)
            outcome = outcome | {404}
        expect(call, outcome, "tags")
        self.unchanged(kind, id_, before, call)
        self.touched.add(kind)

    @rule(data=st.data(), who=st.sampled_from(WHO), bad=st.sampled_from([None, "shared", "project_id"]))
    @guarded
    def create_networks_in_bulk(self, data: st.DataObject, who: str, bad: str | None) -> None:
        """All or nothing: a bulk create with one item a project may not make creates none."""
        names = [f"fuzz-bulk-{serial()}" for _ in range(3)]
        items: list[dict[str, Any]] = [{"name": n} for n in names]
        if bad == "shared":
            items[2]["shared"] = True
        elif bad == "project_id":
            items[2]["project_id"] = PROJECT["bob" if who == "alice" else "alice"]
        call = self.call("POST", "/v2.0/networks", who, {"networks": items})
        foreign = items[2].get("project_id", PROJECT[who]) != PROJECT[who]
        if who != "admin" and foreign:
            expect(call, {400}, "a bulk create naming another project")
        elif who == "reader" or (who != "admin" and bad == "shared"):
            expect(call, {403}, "a bulk create with an admin-only attribute")
        else:
            expect(call, {201}, "a bulk create")
        if call.status == 201:
            for item in call.reply["networks"]:
                assert who == "admin" or item["project_id"] == PROJECT[who], str(call)
                self.mine["network"].add(item["id"])
        else:
            left = [n for n in self.api.listing("admin", "network").values() if n["name"] in names]
            assert not left, f"a refused bulk create left networks behind: {left}"
        self.touched.add("network")

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def prefixes(self, data: st.DataObject, who: str) -> None:
        id_ = self.pick(data, "subnetpool")
        before = self.truth.get("subnetpool", id_)
        verb = data.draw(st.sampled_from(["add_prefixes", "remove_prefixes"]), label="verb")
        held = (before or {}).get("prefixes") or ["172.31.255.0/24"]
        prefix = pool_prefix() if verb == "add_prefixes" else held[-1]
        call = self.call("PUT", f"/v2.0/subnetpools/{id_}/{verb}", who, {"prefixes": [prefix]})
        expect(call, write_outcome(self.truth, who, "subnetpool", id_, "update"), verb)
        self.unchanged("subnetpool", id_, before, call)
        self.touched.add("subnetpool")

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def onboard(self, data: st.DataObject, who: str) -> None:
        """``onboard_network_subnets``: any caller, any pool and network (its own, another's, gone).
        The pool's rules first (404 unseen, 403 not its owner), then the network's (the same); a
        project never moves another project's network's subnets."""
        pool, net = self.pick(data, "subnetpool"), self.pick(data, "network")
        before = self.truth.get("subnetpool", pool)
        call = self.call("PUT", f"/v2.0/subnetpools/{pool}/onboard_network_subnets", who, {"network_id": net})
        outcome = write_outcome(self.truth, who, "subnetpool", pool, "update")
        if outcome == ALLOWED and who != "admin":
            if not self.truth.sees(who, "network", net):
                outcome = frozenset({404})
            elif self.truth.net_owner(net) != PROJECT[who]:
                outcome = frozenset({403})
        if outcome == ALLOWED:
            outcome = ALLOWED | {404}  # the network may be unknown
        expect(call, outcome, "onboard_network_subnets")
        if call.status == 200:
            assert isinstance(call.reply, list), str(call)
            assert who == "admin" or self.truth.net_owner(net) == PROJECT[who], f"another's network: {call}"
        self.unchanged("subnetpool", pool, before, call)
        self.touched.update({"subnetpool", "subnet", "network"})

    @rule(data=st.data(), who=st.sampled_from(WHO), add=st.booleans())
    @guarded
    def router_interface(self, data: st.DataObject, who: str, add: bool) -> None:
        router = self.pick(data, "router")
        by_port = data.draw(st.integers(0, 3), label="by port") == 0
        ref = self.pick(data, "port" if by_port else "subnet")
        verb = "add_router_interface" if add else "remove_router_interface"
        before = self.truth.get("router", router)
        call = self.call("PUT", f"/v2.0/routers/{router}/{verb}", who, {"port_id" if by_port else "subnet_id": ref})
        outcome = write_outcome(self.truth, who, "router", router, "update")
        if outcome == ALLOWED:
            outcome = ALLOWED | {404}  # the subnet or port may be unknown or invisible
        expect(call, outcome, verb)
        if call.status == 200 and add and who != "admin":
            project = PROJECT[who]
            if by_port:
                assert (
                    self.truth.owner("port", ref) == project
                    or self.truth.net_owner(self.truth.items["port"][ref]["network_id"]) == project
                ), f"another project's port on my router: {call}"
            else:
                s = self.truth.items["subnet"][ref]
                assert s["project_id"] == project or project in self.truth.targets(
                    s["network_id"], "access_as_shared"
                ), f"a subnet neither mine nor shared with me by name: {call}"
        self.unchanged("router", router, before, call)
        self.touched.update({"router", "port", "subnet"})

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def router_routes(self, data: st.DataObject, who: str) -> None:
        """Extra routes: ``routes`` on PUT, ``add_extraroutes``/``remove_extraroutes``; next hops on
        one of the router's subnets or anywhere, destinations good or not as Neutron takes them."""
        router = self.pick(data, "router")
        subnet = self.truth.get("subnet", self.pick(data, "subnet")) or {}
        base = str(subnet.get("cidr") or "10.99.0.0/24").split("/")[0]
        hop = data.draw(
            st.sampled_from([base[:-1] + "10" if base.endswith(".0") else base + "10", "10.99.0.10", "nope", ""]),
            label="nexthop",
        )
        dst = data.draw(
            st.sampled_from(["172.30.0.0/16", "0.0.0.0/0", "172.30.0.1/16", "127.0.0.0/8", "x"]), label="dst"
        )
        routes: Any = [{"destination": dst, "nexthop": hop}] * data.draw(st.integers(0, 2), label="copies")
        malformed = data.draw(st.integers(0, 9), label="malformed") == 0
        if malformed:
            routes = data.draw(st.sampled_from([None, "r", [{"destination": dst}], [1]]), label="shape")
        verb = data.draw(st.sampled_from(["set", "add_extraroutes", "remove_extraroutes"]), label="verb")
        before = self.truth.get("router", router)
        outcome = write_outcome(self.truth, who, "router", router, "update")
        if verb == "set":
            call = self.call("PUT", f"/v2.0/routers/{router}", who, {"router": {"routes": routes}})
            if malformed:  # a PUT body's attributes are checked before the object is looked up (Neutron)
                outcome = outcome | {400}
        else:
            call = self.call("PUT", f"/v2.0/routers/{router}/{verb}", who, {"router": {"routes": routes}})
        expect(call, outcome, f"routes ({verb})")
        if call.status == 200:
            assert isinstance(call.reply["router"]["routes"], list), str(call)
        self.unchanged("router", router, before, call)
        self.touched.add("router")

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def set_gateway(self, data: st.DataObject, who: str) -> None:
        router = self.pick(data, "router")
        net = self.pick(data, "network")
        info: dict[str, Any] = {"network_id": net}
        extra = data.draw(st.sampled_from([None, "enable_snat", "external_fixed_ips"]), label="gw admin-only")
        if extra == "enable_snat":
            info["enable_snat"] = False
        elif extra == "external_fixed_ips":
            info["external_fixed_ips"] = []
        before = self.truth.get("router", router)
        call = self.call("PUT", f"/v2.0/routers/{router}", who, {"router": {"external_gateway_info": info}})
        outcome = write_outcome(self.truth, who, "router", router, "update")
        if extra is not None and who != "admin":
            outcome = frozenset({403} if self.truth.sees(who, "router", router) else {404})
        elif outcome == ALLOWED and not self.truth.sees(who, "network", net):
            outcome = frozenset({404})
        expect(call, outcome, "router gateway")
        self.unchanged("router", router, before, call)
        self.touched.update({"router", "port"})

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def associate_floatingip(self, data: st.DataObject, who: str) -> None:
        fip = self.pick(data, "floatingip")
        port = self.pick(data, "port")
        before = self.truth.get("floatingip", fip)
        call = self.call("PUT", f"/v2.0/floatingips/{fip}", who, {"floatingip": {"port_id": port}})
        outcome = write_outcome(self.truth, who, "floatingip", fip, "update")
        if outcome == ALLOWED:
            outcome = ALLOWED | {404}
        expect(call, outcome, "floating IP association")
        if call.status == 200 and who != "admin":
            assert self.truth.owner("port", port) == PROJECT[who], f"a floating IP on another's port: {call}"
        self.unchanged("floatingip", fip, before, call)
        self.touched.add("floatingip")

    # ------------------------------------------------------------ quotas (docs/neutron.md#quotas)

    @rule(data=st.data(), who=st.sampled_from(WHO))
    @guarded
    def port_forwarding(self, data: st.DataObject, who: str) -> None:
        """A floating IP's port forwardings (a sub-resource): any caller, any floating IP (its own,
        another's, gone) and internal port; a project reaches only its own floating IPs'
        forwardings, and forwards only to its own ports."""
        fip = self.pick(data, "floatingip")
        verb = data.draw(st.sampled_from(["create", "list", "show", "update", "delete"]), label="pf verb")
        index = data.draw(st.integers(0, 1 << 16), label="pf index")
        known = [pf for f, pf in self.forwardings if f == fip]
        pf = known[index % len(known)] if known and index % 8 else str(uuid.uuid4())
        base = f"/v2.0/floatingips/{fip}/port_forwardings"
        sees = self.truth.sees(who, "floatingip", fip)
        owner = self.truth.owner("floatingip", fip)
        if verb == "create":
            port = self.pick(data, "port")
            fixed = (self.truth.get("port", port) or {}).get("fixed_ips") or [{"ip_address": "10.99.0.7"}]
            ext = data.draw(st.sampled_from([22, 80, 8080, "5000:5009", 0, "9:1"]), label="external")
            inner: dict[str, Any] = {"external_port_range" if isinstance(ext, str) else "external_port": ext}
            body = {
                "protocol": data.draw(st.sampled_from(["tcp", "udp", "icmp", "bogus"]), label="protocol"),
                "internal_port_id": port,
                "internal_ip_address": fixed[0]["ip_address"],
                "internal_port": data.draw(st.sampled_from([22, 80]), label="internal"),
                **inner,
            }
            call = self.call("POST", base, who, {"port_forwarding": body})
            if who == "reader":
                expect(call, {400, 403}, "a reader creates nothing")
            elif not sees:
                expect(call, {400, 404}, "a port forwarding on a floating IP the caller cannot see")
            else:
                expect(call, ALLOWED | {404}, "port forwarding create")
            if call.status == 201:
                self.forwardings.append((fip, call.reply["port_forwarding"]["id"]))
                if who != "admin":
                    assert owner == PROJECT[who], f"a port forwarding on another's floating IP: {call}"
                    assert self.truth.owner("port", port) == PROJECT[who], f"forwarded to another's port: {call}"
        elif verb == "list":
            call = self.call("GET", base, who)
            expect(call, {200} if sees else {404}, "port forwardings of a floating IP")
            if call.status == 200 and who != "admin":
                assert owner == PROJECT[who], f"another's port forwardings listed: {call}"
        elif verb == "show":
            call = self.call("GET", f"{base}/{pf}", who)
            expect(call, {200, 404} if sees else {404}, "one port forwarding")
        else:
            before = self.call("GET", f"{base}/{pf}", "admin").status
            if verb == "update":
                change = {"description": f"fuzz-pf-{serial()}", "external_port": data.draw(st.sampled_from([23, 0]))}
                call = self.call("PUT", f"{base}/{pf}", who, {"port_forwarding": change})
            else:
                call = self.call("DELETE", f"{base}/{pf}", who)
            if not sees or before == 404:
                expect(call, {400, 404}, f"port forwarding {verb} out of reach")
            elif who == "reader":
                expect(call, {400, 403}, f"a reader's port forwarding {verb}")
            else:
                expect(call, ALLOWED | {404}, f"port forwarding {verb}")
            if call.status in (403, 404) and before == 200:
                after = self.call("GET", f"{base}/{pf}", "admin").status
                assert after == 200, f"a refused {verb} changed a port forwarding: {call}"
        self.touched.add("floatingip")

    @rule(
        who=st.sampled_from(WHO),
        of=st.sampled_from(PROJECTS),
        path=st.sampled_from(["", "/default", "/details"]),
    )
    @guarded
    def read_quotas(self, who: str, of: str, path: str) -> None:
        """Only one's own project's, and its usage counts exactly what the project owns."""
        call = self.call("GET", f"/v2.0/quotas/{PROJECT[of]}{path}", who)
        if who != "admin" and PROJECT[of] != PROJECT[who]:
            expect(call, {403}, "another project's quotas")
            return
        expect(call, {200}, "quotas the caller may read")
        if path == "/details":
            used = {k: v["used"] + v["reserved"] for k, v in call.reply["quota"].items()}
            for kind in KINDS:
                want = sum(1 for i in self.truth.items[kind].values() if i.get("project_id") == PROJECT[of])
                assert used[kind] == want, f"{of} is said to use {used[kind]} {kind} and owns {want}: {call}"

    @rule(data=st.data(), who=st.sampled_from(WHO), of=st.sampled_from(PROJECTS), reset=st.booleans())
    @guarded
    def write_quotas(self, data: st.DataObject, who: str, of: str, reset: bool) -> None:
        """Limits that never bite (-1, far above usage), malformed ones and resets; a project may do none."""
        target = PROJECT[of] if data.draw(st.booleans(), label="known project") else uuid.uuid4().hex
        if reset:
            call = self.call("DELETE", f"/v2.0/quotas/{target}", who)
            expect(call, {204, 404} if who == "admin" else {403}, "quota reset")
            return
        name = data.draw(st.sampled_from([*KINDS, "security_group"]), label="resource")
        value = data.draw(st.sampled_from([-1, 100000, "5000", -2, "x", None]), label="limit")
        call = self.call("PUT", f"/v2.0/quotas/{target}", who, {"quota": {name: value}})
        if who != "admin":
            expect(call, {403}, "a project sets quotas")
        elif name not in KINDS or value in (-2, "x", None):
            expect(call, {400}, "a malformed limit")
        else:
            expect(call, {200}, "a limit that never bites")
            assert call.reply["quota"][name] == int(value), str(call)

    # ------------------------------------------------------------ reads

    @rule(data=st.data(), who=st.sampled_from(WHO), kind=st.sampled_from(list(KINDS)))
    @guarded
    def show(self, data: st.DataObject, who: str, kind: str) -> None:
        id_ = self.pick(data, kind)
        fields = data.draw(st.sampled_from([[], ["id", "project_id"], ["provider:segmentation_id", "id"]]))
        call = self.call("GET", f"/v2.0/{KINDS[kind][0]}/{id_}", who, params=[("fields", f) for f in fields])
        if self.truth.sees(who, kind, id_):
            expect(call, {200}, "show what the caller can see")
            item = call.reply[kind]
            if fields:
                assert set(item) <= set(fields), f"fields= not honoured: {call}"
            if who != "admin":
                assert not set(ADMIN_VIEW) & set(item), f"admin-only attributes shown to a project: {call}"
        else:
            expect(call, {404}, "show what the caller cannot see (rule 7)")

    @rule(data=st.data(), who=st.sampled_from(WHO), kind=st.sampled_from(list(KINDS)))
    @guarded
    def list_filtered(self, data: st.DataObject, who: str, kind: str) -> None:
        params: list[tuple[str, str]] = []
        other = PROJECT[data.draw(st.sampled_from(PROJECTS), label="filter project")]
        choice = data.draw(st.sampled_from(["project_id", "tenant_id", "shared", "fields", "sort", "limit"]))
        if choice in ("project_id", "tenant_id") and kind != "rbac_policy":
            params.append((choice, other))
        elif choice == "shared" and kind in SHARED_FLAG:
            params.append(("shared", data.draw(st.sampled_from(["true", "false"]))))
        elif choice == "fields":
            params += [("fields", "id"), ("fields", "provider:segmentation_id"), ("fields", "project_id")]
        elif choice == "sort" and kind != "rbac_policy":
            params += [("sort_key", "id"), ("sort_dir", data.draw(st.sampled_from(["asc", "desc"])))]
        elif choice == "limit" and kind != "rbac_policy":
            params.append(("limit", "2"))
        got = self.api.listing(who, kind, params)
        for id_, item in got.items():
            assert self.truth.sees(who, kind, id_), f"{who} listed {kind} {id_} it may not see ({params})"
            if who != "admin":
                assert not set(ADMIN_VIEW) & set(item), f"admin-only attributes listed for a project: {item}"
            for key, value in params:
                if key in ("project_id", "tenant_id"):
                    assert item.get("project_id", value) == value, f"filter {key}={value} ignored: {item}"
                if key == "shared":
                    assert item["shared"] == (value == "true"), f"filter shared={value} ignored: {item}"
                if key == "fields":
                    assert set(item) <= {"id", "provider:segmentation_id", "project_id"}, str(item)

    @rule(who=st.sampled_from(WHO), kind=st.sampled_from(list(KINDS)), id_=st.sampled_from(["x", "1", "%20"]))
    @guarded
    def show_malformed_id(self, who: str, kind: str, id_: str) -> None:
        call = self.call("GET", f"/v2.0/{KINDS[kind][0]}/{id_}", who)
        expect(call, {404}, "an id that is not a UUID is not found")

    # ------------------------------------------------------------ invariants

    @invariant()
    @guarded
    def isolated(self) -> None:
        """After every step (every collection touched, all of them every 8th step)."""
        self.steps += 1
        full = self.steps % 8 == 1
        self.refresh()
        self.projects_see_exactly_what_neutron_lets_them(full)
        if full:
            self.pool_usage_covers_exactly_the_visible_pools()

    def projects_see_exactly_what_neutron_lets_them(self, full: bool) -> None:
        touched = set(self.touched)
        for kind in self.touched:
            touched |= READ_DEPENDS.get(kind, set())
        kinds = [k for k in KINDS if full or k in touched]
        self.touched = set()
        for who in ("alice", "bob", "reader"):
            project = PROJECT[who]
            for kind in kinds:
                got = self.api.listing(who, kind)
                truth = self.truth.items[kind]
                want = {i for i, item in truth.items() if self.truth.visible(kind, item, project)}
                leaked = set(got) - want
                missing = want - set(got)
                assert not leaked, f"{who} sees {kind} it may not: {[got[i] for i in sorted(leaked)][:3]}"
                assert not missing, f"{who} does not see {kind} it may: {[truth[i] for i in sorted(missing)][:3]}"
                for id_, item in got.items():
                    assert not set(ADMIN_VIEW) & set(item), f"admin-only attributes listed for {who}: {item}"
                    if kind in SHARED_FLAG:
                        assert item["shared"] == self.truth.shared_to(id_, project), (
                            f"{who} is shown shared={item['shared']} on {kind} {id_} "
                            f"(entries {self.truth.rbac.get(id_)})"
                        )

    def pool_usage_covers_exactly_the_visible_pools(self) -> None:
        for who in ("alice", "bob", "reader"):
            call = self.api("GET", "/v2.0/subnetpool-ip-availabilities", who)
            expect(call, {200}, "pool usage")
            got = {u["subnetpool_id"] for u in call.reply["subnetpool_ip_availabilities"]}
            pools = self.truth.items["subnetpool"]
            want = {i for i, p in pools.items() if self.truth.visible("subnetpool", p, PROJECT[who])}
            assert got == want, f"{who}'s pool usage: extra {got - want}, missing {want - got}"

    def teardown(self) -> None:
        """Delete what this run made, dependants first, as admin (best effort: other tests share the stack)."""
        try:
            truth = Truth.read(self.api)
        except AssertionError:
            return
        mine = {k: set(v) & set(truth.items[k]) for k, v in self.mine.items()}
        for fip, pf in self.forwardings:
            self.api("DELETE", f"/v2.0/floatingips/{fip}/port_forwardings/{pf}", "admin")
        for fip in mine["floatingip"]:
            self.api("DELETE", f"/v2.0/floatingips/{fip}", "admin")
        for router in mine["router"]:
            self.api("PUT", f"/v2.0/routers/{router}", "admin", {"router": {"external_gateway_info": None}})
        for port in truth.items["port"].values():
            if port["device_owner"] == "network:router_interface" and port["device_id"] in truth.items["router"]:
                path = f"/v2.0/routers/{port['device_id']}/remove_router_interface"
                self.api("PUT", path, "admin", {"port_id": port["id"]})
        for router in mine["router"]:
            self.api("DELETE", f"/v2.0/routers/{router}", "admin")
        nets = mine["network"]
        for port in truth.items["port"].values():
            if port["network_id"] in nets or port["id"] in mine["port"]:
                self.api("DELETE", f"/v2.0/ports/{port['id']}", "admin")
        for kind in ("subnet", "network", "subnetpool", "address_scope"):
            for id_ in mine[kind]:
                self.api("DELETE", f"/v2.0/{KINDS[kind][0]}/{id_}", "admin")


def fuzz_settings() -> settings:
    examples = os.environ.get("SCOPENET_API_FUZZ_EXAMPLES")
    common: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
        "stateful_step_count": 30,
    }
    # Never shrunk: shrinking replays programs against a stack whose state has moved on, for
    # minutes; the failing program is printed whole, with the last calls and their answers.
    phases = [Phase.explicit, Phase.generate]
    if examples:
        return settings(max_examples=int(examples), phases=phases, **common)
    return settings(max_examples=10, derandomize=True, phases=phases, **common)  # CI: fixed programs


async def test_projects_are_isolated_under_fuzzing(api_server: RunningApi) -> None:
    client = Client(api_server.url)

    class Machine(Isolation):
        api = client

    started = time.monotonic()

    def run() -> None:
        try:
            run_state_machine_as_test(Machine, settings=fuzz_settings())
        except BaseException as exc:
            first, calls = client.first_failure or (exc, list(client.recent))
            recent = "\n".join(str(c) for c in calls)
            raise AssertionError(f"{first}\n--- the calls before it ---\n{recent}") from exc

    await asyncio.to_thread(run)
    elapsed = time.monotonic() - started
    writes = ", ".join(f"{who} {status}: {n}" for (who, status), n in sorted(client.writes.items()))
    print(f"isolation fuzz: {client.count} calls in {elapsed:.1f}s; writes by caller and status: {writes}")
    done = {who for (who, status), n in client.writes.items() if status == 200}
    assert {"admin", "alice", "bob"} <= done, f"some caller never got a write through: {writes}"
