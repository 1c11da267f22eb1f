"""The reconciler's queueing and level-triggered behaviour, and what it applies for each kind of
RouterSpec change (a pool leaving or joining the scope, a floating IP, SNAT, the router removed),
against an in-memory datapath.

``FakeKernel`` applies plans to a model of the kernel (namespaces, veths on bridges, addresses,
routes, sysctls, the nft table), so these tests exercise the real ``plan``: what the reconciler
computes against the fake is what it computes against the kernel in tests/netns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import uuid
from dataclasses import dataclass, field

import pytest

from scopenet.contracts.routerspec import RouterSpec
from scopenet.datapath import names
from scopenet.datapath.example import ROUTER1, router1
from scopenet.datapath.model import (
    AddAddress,
    Announce,
    BridgeObs,
    CreateNamespace,
    CreateVeth,
    DeleteAddress,
    DeleteBridge,
    DeleteLink,
    DeleteLinks,
    DeleteNamespace,
    DeleteRoute,
    EnsureBridge,
    LinkObs,
    NftObs,
    ObservedRouter,
    PeerObs,
    Plan,
    ReplaceNftTable,
    ReplaceRoute,
    RouterState,
    SetLink,
    SetSysctl,
)
from scopenet.netlink.errors import KernelError
from scopenet.services.l3_agent.reconciler import Reconciler, RouterStatus

RID = str(ROUTER1)


@dataclass
class _Router:
    links: dict[str, LinkObs]
    addresses: set = field(default_factory=set)  # type: ignore[type-arg]
    routes: set = field(default_factory=set)  # type: ignore[type-arg]
    sysctls: dict[str, str] = field(default_factory=dict)
    nft: str | None = None


def _label(text: str) -> tuple[str | None, str | None]:
    m = re.search(r'comment "scopenet owner=(\S+) digest=(\S+)"', text)
    return (m.group(1), m.group(2)) if m else (None, None)


class FakeKernel:
    """``DatapathPort`` over a dictionary; ``fail`` makes the next N applies of a router fail."""

    def __init__(self) -> None:
        self.ns: dict[str, _Router] = {}
        self.bridges: dict[str, set[str]] = {}
        self.plans: list[Plan] = []
        self.announced: list[str] = []
        self.fail: dict[str, int] = {}
        self.gate: asyncio.Event | None = None
        self.running = 0
        self.max_running = 0

    async def observe(self, router_id: str, desired: RouterState | None) -> ObservedRouter:
        ns = names.namespace(router_id)
        bridges = {b: BridgeObs(True) for b in (desired.bridges if desired else ()) if b in self.bridges}
        r = self.ns.get(ns)
        if r is None:
            return ObservedRouter(router_id, ns, False, bridges=bridges)
        owner, digest = _label(r.nft) if r.nft else (None, None)
        nft = NftObs(digest, owner, hashlib.sha1(r.nft.encode()).hexdigest()) if r.nft else None
        return ObservedRouter(
            router_id,
            ns,
            True,
            dict(r.links),
            frozenset(r.addresses),
            frozenset(r.routes),
            dict(r.sysctls),
            nft,
            bridges=bridges,
        )

    async def apply(self, plan: Plan) -> str | None:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
            if self.fail.get(plan.router_id, 0) > 0:
                self.fail[plan.router_id] -= 1
                raise KernelError("injected failure")
            self.plans.append(plan)
            written = None
            for action in plan.actions:
                written = self._do(action) or written
            return hashlib.sha1(written.encode()).hexdigest() if written else None
        finally:
            self.running -= 1

    def _do(self, a: object) -> str | None:
        match a:
            case CreateNamespace(namespace=ns, sysctls=s, nft=text):
                self.ns[ns] = _Router({"lo": LinkObs("lo", "loopback", "", 65536, True)}, sysctls=dict(s), nft=text)
                return text
            case DeleteNamespace(namespace=ns):
                self.ns.pop(ns, None)
            case EnsureBridge(name=b):
                self.bridges.setdefault(b, set())
            case DeleteBridge(name=b):
                if not self.bridges.get(b, {"x"}):
                    del self.bridges[b]
            case CreateVeth(namespace=ns, veth=v):
                self.ns[ns].links[v.name] = LinkObs(
                    v.name, "veth", v.mac, v.mtu, True, PeerObs(v.peer, v.bridge, v.mtu, True)
                )
                self.bridges.setdefault(v.bridge, set()).add(v.peer)
            case DeleteLinks(namespace=ns, names=ifnames):
                for n in ifnames:
                    self._do(DeleteLink(ns, n))
            case DeleteLink(namespace=ns, name=n) if ns is not None:
                link = self.ns[ns].links.pop(n, None)
                if link and link.peer:
                    self.bridges.get(link.peer.master or "", set()).discard(link.peer.name)
            case SetLink(namespace=ns, name=n) if ns is not None:
                link = self.ns[ns].links[n]
                self.ns[ns].links[n] = dataclasses.replace(link, mac=a.mac or link.mac, up=a.up)
            case AddAddress(namespace=ns, address=x):
                self.ns[ns].addresses.add(x)
            case DeleteAddress(namespace=ns, address=x):
                self.ns[ns].addresses.discard(x)
            case ReplaceRoute(namespace=ns, route=r):
                self.ns[ns].routes.add(r)
            case DeleteRoute(namespace=ns, route=r):
                self.ns[ns].routes.discard(r)
            case SetSysctl(namespace=ns, key=k, value=v):
                self.ns[ns].sysctls[k] = v
            case ReplaceNftTable(namespace=ns, text=text):
                self.ns[ns].nft = text
                return text
            case Announce(namespace=ns, ifname=n):
                assert n in self.ns[ns].links  # announced from a port that exists
                self.announced.append(n)
            case _:
                raise AssertionError(a)
        return None

    async def routers(self) -> list[str]:
        return [str(names.router_id_of(n)) for n in self.ns]

    async def owner(self, router_id: str) -> str | None:
        r = self.ns.get(names.namespace(router_id))
        return _label(r.nft)[0] if r and r.nft else None


@pytest.fixture
async def fake() -> FakeKernel:
    return FakeKernel()


async def run(rec: Reconciler) -> None:
    await rec.wait_idle(5)


async def test_same_spec_twice_second_time_nothing_applied(fake: FakeKernel) -> None:
    async with Reconciler(fake, owner="agent-1") as rec:
        rec.desired(router1())
        await run(rec)
        assert len(fake.plans) == 1 and rec.status(RID).status == "ACTIVE"  # type: ignore[union-attr]
        rec.desired(router1())
        await rec.resync()
        await run(rec)
        assert len(fake.plans) == 1 and rec.status(RID).changes == 0  # type: ignore[union-attr]


async def test_events_for_a_busy_router_coalesce_into_one_more_reconcile(fake: FakeKernel) -> None:
    fake.gate = asyncio.Event()
    async with Reconciler(fake, owner="agent-1") as rec:
        rec.desired(router1(revision=1, floating_ip=False))
        await asyncio.sleep(0.01)  # the first reconcile is now blocked in apply
        for rev in range(2, 12):
            rec.desired(router1(revision=rev, network2_scoped=rev % 2 == 0, floating_ip=rev == 11))
        fake.gate.set()
        await run(rec)
    assert len(fake.plans) == 2  # the first, and one for all ten updates
    assert "203.0.113.80" in (fake.ns[names.namespace(ROUTER1)].nft or "")
    assert rec.status(RID).revision == 11  # type: ignore[union-attr]


async def test_routers_run_in_parallel_up_to_the_bound(fake: FakeKernel) -> None:
    fake.gate = asyncio.Event()
    async with Reconciler(fake, owner="agent-1", concurrency=3) as rec:
        for _ in range(8):
            rec.desired(router1(router_id=uuid.uuid4(), port_ids=(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())))
        await asyncio.sleep(0.01)
        assert fake.running == 3
        fake.gate.set()
        await run(rec)
    assert fake.max_running == 3 and len(fake.plans) == 8


async def test_older_revisions_are_ignored(fake: FakeKernel) -> None:
    async with Reconciler(fake, owner="agent-1") as rec:
        assert rec.desired(router1(revision=5, floating_ip=False))
        assert not rec.desired(router1(revision=4, floating_ip=True))
        await run(rec)
    assert "203.0.113.80" not in (fake.ns[names.namespace(ROUTER1)].nft or "")


async def test_present_false_and_forget_remove_everything(fake: FakeKernel) -> None:
    statuses: list[RouterStatus] = []

    async def report(s: RouterStatus) -> None:
        statuses.append(s)

    async with Reconciler(fake, owner="agent-1", on_status=report) as rec:
        rec.desired(router1(revision=1))
        await run(rec)
        rec.desired(router1(revision=2).model_copy(update={"present": False}))
        await run(rec)
        assert fake.ns == {} and fake.bridges == {} and rec.status(RID) is None
        assert not rec.desired(router1(revision=1))  # a late redelivery of the old spec
        rec.desired(router1(revision=3))  # moved back to this agent
        await run(rec)
        rec.forget(ROUTER1)
        await run(rec)
    assert [s.status for s in statuses] == ["ACTIVE", "REMOVED", "ACTIVE", "REMOVED"]
    assert fake.ns == {}


async def test_admin_down_removes_the_datapath_and_reports_down(fake: FakeKernel) -> None:
    async with Reconciler(fake, owner="agent-1") as rec:
        rec.desired(router1(revision=1))
        await run(rec)
        rec.desired(router1(revision=2).model_copy(update={"admin_state_up": False}))
        await run(rec)
        assert fake.ns == {} and rec.status(RID).status == "DOWN"  # type: ignore[union-attr]


async def test_failure_is_reported_and_retried(fake: FakeKernel) -> None:
    statuses: list[str] = []

    async def report(s: RouterStatus) -> None:
        statuses.append(s.status if s.reason is None else f"{s.status}: {s.reason}")

    fake.fail[RID] = 2
    async with Reconciler(fake, owner="agent-1", on_status=report, retry_delays=(0.01,)) as rec:
        rec.desired(router1())
        for _ in range(50):
            await asyncio.sleep(0.01)
            if statuses[-1:] == ["ACTIVE"]:
                break
    assert statuses == ["ERROR: injected failure", "ERROR: injected failure", "ACTIVE"]


async def test_resync_repairs_drift(fake: FakeKernel) -> None:
    async with Reconciler(fake, owner="agent-1") as rec:
        rec.desired(router1())
        await run(rec)
        r = fake.ns[names.namespace(ROUTER1)]
        r.nft = None
        r.sysctls["net/ipv4/ip_forward"] = "0"
        await rec.resync()
        await run(rec)
        assert fake.plans[-1].describe() == ["replace nft table", "sysctl net/ipv4/ip_forward=1"]


async def test_orphans_are_swept_once_caught_up_and_only_our_own(fake: FakeKernel) -> None:
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    async with Reconciler(fake, owner="agent-1") as before:
        before.desired(router1(router_id=ours))
        await run(before)
    async with Reconciler(fake, owner="agent-2") as other:
        other.desired(router1(router_id=theirs))
        await run(other)
    async with Reconciler(fake, owner="agent-1") as rec:  # restarted with no specs yet
        await rec.resync()
        await run(rec)
        assert len(fake.ns) == 2  # not caught up: nothing is removed
        rec.mark_caught_up()
        await rec.resync()
        await run(rec)
    assert sorted(fake.ns) == [names.namespace(theirs)]


async def test_a_resync_does_not_hold_up_a_router_that_just_arrived(fake: FakeKernel) -> None:
    """An agent taking over a dead one's routers must not wait behind its own periodic re-check of
    hundreds of routers that match: the resync goes one router at a time, after fresh work."""
    checked: list[str] = []
    observe = fake.observe

    async def slow_observe(router_id: str, desired: object) -> object:
        checked.append(router_id)
        await asyncio.sleep(0.005)
        return await observe(router_id, desired)  # type: ignore[arg-type]

    fake.observe = slow_observe  # type: ignore[method-assign,assignment]
    mine = [uuid.uuid4() for _ in range(40)]
    newcomer = uuid.uuid4()
    arrived = asyncio.Event()
    rechecked_first = -1

    async def on_status(status: RouterStatus) -> None:
        nonlocal rechecked_first
        if status.router_id == str(newcomer):
            rechecked_first = len([r for r in checked if r != str(newcomer)])
            arrived.set()

    async with Reconciler(fake, owner="agent-1", concurrency=8, resync_interval=3600, on_status=on_status) as rec:
        for rid in mine:
            rec.desired(router1(router_id=rid, port_ids=(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())))
        await run(rec)
        checked.clear()
        resync = asyncio.create_task(rec.resync())
        await asyncio.sleep(0.001)
        rec.desired(router1(router_id=newcomer, port_ids=(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())))
        await asyncio.wait_for(arrived.wait(), 5)
        await asyncio.wait_for(resync, 5)
    assert rec.status(newcomer).status == "ACTIVE"  # type: ignore[union-attr]
    assert rechecked_first <= 2  # not the 30-odd the queue would have put ahead of it
    assert sorted(set(checked) - {str(newcomer)}) == sorted(str(r) for r in mine)  # and every one re-checked


# ---------------------------------------------------------------- what a RouterSpec change applies


async def _applied(fake: FakeKernel, rec: Reconciler, spec: RouterSpec) -> list[str]:
    before = len(fake.plans)
    assert rec.desired(spec)
    await run(rec)
    return [line for p in fake.plans[before:] for line in p.describe()]


def _nft(fake: FakeKernel) -> str:
    return fake.ns[names.namespace(ROUTER1)].nft or ""


NET2_IN_A = 'meta nfproto ipv4 iifname "qr-2b3c4d5e-6f" meta mark set meta mark & 0x0401ffff | 0x04010000'
NET2_UNSCOPED = 'meta nfproto ipv4 iifname "qr-2b3c4d5e-6f" meta mark set meta mark & 0x0400ffff | 0x04000000'


async def test_a_subnet_pool_leaving_and_rejoining_its_scope_only_replaces_the_nft_table(fake: FakeKernel) -> None:
    async with Reconciler(fake, owner="agent-1", freeze_gc=False) as rec:
        await _applied(fake, rec, router1(revision=1))
        assert NET2_IN_A in _nft(fake)
        assert await _applied(fake, rec, router1(revision=2, network2_scoped=False)) == ["replace nft table"]
        assert NET2_UNSCOPED in _nft(fake) and NET2_IN_A not in _nft(fake)
        assert await _applied(fake, rec, router1(revision=3)) == ["replace nft table"]
        assert NET2_IN_A in _nft(fake)
        assert rec.status(RID).status == "ACTIVE"  # type: ignore[union-attr]


async def test_a_floating_ip_removed_and_added_again(fake: FakeKernel) -> None:
    async with Reconciler(fake, owner="agent-1", freeze_gc=False) as rec:
        await _applied(fake, rec, router1(revision=1))
        gone = await _applied(fake, rec, router1(revision=2, floating_ip=False))
        assert gone[:2] == ["replace nft table", "delete address 203.0.113.80/32 dev qg-9e3c1d2a-7b"]
        assert "203.0.113.80" not in _nft(fake)
        back = await _applied(fake, rec, router1(revision=3))
        assert back == [
            "replace nft table",
            "add address 203.0.113.80/32 dev qg-9e3c1d2a-7b",
            "announce 2001:db8::66 203.0.113.66 203.0.113.80 on qg-9e3c1d2a-7b",  # neighbours learn it at once
        ]
        assert "ip daddr 203.0.113.80 counter dnat ip to 198.51.100.3" in _nft(fake)


async def test_snat_off_changes_the_table_alone(fake: FakeKernel) -> None:
    async with Reconciler(fake, owner="agent-1", freeze_gc=False) as rec:
        await _applied(fake, rec, router1(revision=1))
        assert await _applied(fake, rec, router1(revision=2, enable_snat=False)) == ["replace nft table"]


async def test_a_removed_router_leaves_nothing_and_only_empty_bridges_go(fake: FakeKernel) -> None:
    async with Reconciler(fake, owner="agent-1", freeze_gc=False) as rec:
        await _applied(fake, rec, router1(revision=1))
        fake.bridges["brq-1000"].add("tap-an-instance")  # the external network still has a port
        removed = await _applied(fake, rec, router1(revision=2).model_copy(update={"present": False}))
        assert removed == [
            "delete links qg-9e3c1d2a-7b qr-1a2b3c4d-5e qr-2b3c4d5e-6f",
            f"delete namespace {names.namespace(ROUTER1)}",
            "delete bridge brq-1000 if empty",
            "delete bridge brq-1001 if empty",
            "delete bridge brq-1002 if empty",
        ]
    assert fake.ns == {} and fake.bridges == {"brq-1000": {"tap-an-instance"}}


async def test_the_fence_guards_the_host_ends_of_every_wanted_router(fake: FakeKernel) -> None:
    other = uuid.uuid4()
    async with Reconciler(fake, owner="agent-1", freeze_gc=False) as rec:
        rec.desired(router1())
        rec.desired(router1(router_id=other, port_ids=(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())))
        assert len(rec.router_ports()) == 6 and "tap9e3c1d2a-7b" in rec.router_ports()
        rec.forget(other)
        assert rec.router_ports() == {"tap9e3c1d2a-7b", "tap1a2b3c4d-5e", "tap2b3c4d5e-6f"}
        assert rec.routers == [RID]
        await run(rec)
