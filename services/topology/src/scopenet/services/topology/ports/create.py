"""The create saga of stand-alone ports, group-committed: the port create's hot path.

The saga of each port is the one ``ports.saga`` describes (row ``allocating`` committed → addresses
from IPAM → row ``active`` with its addresses and its event, or ``abandon``), and each of its
three steps runs as a ``batching.Step``, one batch for every request waiting at that step:

1. ``_insert``: one transaction reads the batch's networks (access, subnets), plans each port's
   addresses and inserts every row ``allocating`` with one statement.
2. ``_allocate``: one IPAM ``ip.allocate_many`` for every address of the batch; ports whose first
   subnet is full go round again with their next candidate.
3. ``_activate``: one statement activates the rows, writes their addresses and their events; the
   replies are built here, so nothing is read back.

A request that fails at a step is compensated exactly as a lone one would be (``abandon``), and a
crash between steps leaves what the reconciler already repairs (rows ``allocating``, allocations
without a row). IPAM's idempotency on the port id makes every step repeatable.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from netaddr import IPAddress

from scopenet.contracts import ipam as m
from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import Conflict, DomainError, TransientError
from scopenet.contracts.subjects import event
from scopenet.policy.rules import not_found
from scopenet.services.topology.context import Deps
from scopenet.services.topology.ipam_client import ip_request
from scopenet.services.topology.networks.rules import NetAccess
from scopenet.services.topology.networks.store import networks_access
from scopenet.services.topology.ports import rules, saga, store
from scopenet.services.topology.ports.rules import NewPort, Plan, Want
from scopenet.services.topology.ports.store import Ip
from scopenet.services.topology.subnets.store import active_ids, network_subnets
from scopenet.store.batching import Item, Step
from scopenet.store.db import db_errors
from scopenet.store.outbox import event_row
from scopenet.store.quotas import over_quota_errors

Got = list[Ip]
"""(subnet id, address, held in IPAM) of one port"""


@dataclass(frozen=True)
class _Create:
    ctx: CallContext
    body: t.PortCreateBody
    new: NewPort


@dataclass(frozen=True)
class _Inserted:
    mac: str
    wants: list[Want]


class PortCreates:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self._insert_step = Step(self._insert, name="port-insert")
        self._allocate_step = Step(self._allocate, name="port-allocate", isolate=False, workers=2)
        self._activate_step = Step(self._activate, name="port-activate")

    async def create(self, ctx: CallContext, body: t.PortCreateBody, new: NewPort) -> t.Port:
        self.d.inflight.add(new.id)  # the reconciler leaves the row alone while its saga runs here
        try:
            inserted: _Inserted = await self._insert_step.submit(_Create(ctx, body, new))
            try:
                got: Got = await self._allocate_step.submit((ctx, new.id, inserted.wants))
                port: t.Port = await self._activate_step.submit((new, inserted.mac, got))
            except BaseException:
                await saga.abandon(self.d, new.id)
                raise
        finally:
            self.d.inflight.discard(new.id)
        return port

    # ------------------------------------------------------------ step 1: rows ``allocating``

    async def _insert(self, items: list[Item[_Create]]) -> None:
        outcome: dict[int, Any] = {}
        try:
            async with db_errors(), self.d.db.acquire() as conn, conn.transaction():
                nets = await networks_access(conn, (it.request.body.network_id for it in items))
                subnets: dict[uuid.UUID, list[asyncpg.Record]] = {n: [] for n in nets}
                for s in await network_subnets(conn, list(nets)):
                    subnets[s["network_id"]].append(s)
                planned: list[tuple[int, _Create, Plan]] = []
                for i, it in enumerate(items):
                    try:
                        planned.append((i, it.request, await self._plan(conn, it.request, nets, subnets)))
                    except DomainError as exc:
                        outcome[i] = exc
                planned = await self._admit(conn, planned, outcome)
                macs = await insert_rows(conn, [req.new for _, req, _ in planned])
        except asyncpg.ForeignKeyViolationError:  # a network deleted since it was read
            if len(items) > 1:
                raise  # the step runs each request alone: only the culprit gets this
            raise not_found("network", items[0].request.body.network_id, field="network_id") from None
        for i, req, plan in planned:
            mac = macs[req.new.id]
            if isinstance(mac, Exception):
                outcome[i] = mac
            else:
                by_id = {s["id"]: s for s in subnets[req.body.network_id]}
                outcome[i] = _Inserted(mac, plan.resolve(mac, by_id))
        for i, it in enumerate(items):
            it.fail(outcome[i]) if isinstance(outcome[i], Exception) else it.resolve(outcome[i])

    async def _admit(
        self, conn: asyncpg.Connection, planned: list[tuple[int, _Create, Plan]], outcome: dict[int, Any]
    ) -> list[tuple[int, _Create, Plan]]:
        """The quota (docs/neutron.md#quotas): as many of each project's planned ports as fit, in
        order; the others fail with ``OverQuota``."""
        owners = [req.new.project_id for _, req, _ in planned]
        granted = await self.d.quotas.admit(conn, "port", Counter(owners))
        admitted = []
        for entry, err in zip(planned, over_quota_errors("port", owners, granted), strict=True):
            if err is None:
                admitted.append(entry)
            else:
                outcome[entry[0]] = err
        return admitted

    @staticmethod
    async def _plan(
        conn: asyncpg.Connection,
        req: _Create,
        nets: dict[uuid.UUID, NetAccess],
        subnets: dict[uuid.UUID, list[asyncpg.Record]],
    ) -> Plan:
        body, ctx = req.body, req.ctx
        rules.check_create(ctx, body, nets.get(body.network_id), mac_given=req.new.mac_address is not None)
        router_port = body.device_owner in t.ROUTER_DEVICE_OWNERS
        mine = subnets.get(body.network_id, [])
        if body.fixed_ips is None:
            return rules.default_plan(mine, router_port=router_port)
        return rules.requested_plan(
            body.network_id,
            body.fixed_ips,
            mine,
            mac=req.new.mac_address,
            router_port=router_port,
            existing=await active_ids(conn, rules.foreign_subnets(body.fixed_ips, mine)),
        )

    # ------------------------------------------------------------ step 2: addresses from IPAM

    async def _allocate(self, items: list[Item[tuple[CallContext, uuid.UUID, list[Want]]]]) -> None:
        results = await allocate_all(self.d, [it.request for it in items])
        for it, res in zip(items, results, strict=True):
            it.fail(res) if isinstance(res, BaseException) else it.resolve(res)

    # ------------------------------------------------------------ step 3: rows ``active``

    async def _activate(self, items: list[Item[tuple[NewPort, str, Got]]]) -> None:
        now = datetime.now(UTC)
        views = [_view(new, mac, got, now) for new, mac, got in (it.request for it in items)]
        spec = event("port", "created")
        try:
            async with db_errors(), self.d.db.acquire() as conn:
                active = await store.activate_many(
                    conn,
                    [v.id for v in views],
                    now=now,
                    ips=[
                        (v.id, s, ip, held) for v, it in zip(views, items, strict=True) for s, ip, held in it.request[2]
                    ],
                    events=[event_row(spec, v) for v in views],
                )
        except asyncpg.ForeignKeyViolationError:
            raise Conflict("A subnet of the port was deleted meanwhile", type="SubnetNotFound") from None
        except Conflict:
            raise Conflict("IP address is already allocated", type="IpAddressAlreadyAllocated") from None
        for it, view in zip(items, views, strict=True):
            if view.id in active:
                it.resolve(view)
            else:  # the reconciler took the row for dead and rolled it back
                it.fail(TransientError("the port's creation was interrupted; try again"))


def _view(new: NewPort, mac: str, got: Got, now: datetime) -> t.Port:
    ordered = sorted(got, key=lambda i: (IPAddress(i[1]).version, IPAddress(i[1])))
    return t.Port(
        id=new.id,
        name=new.name,
        network_id=new.network_id,
        project_id=new.project_id,
        tenant_id=new.project_id,
        mac_address=mac,
        admin_state_up=new.admin_state_up,
        status=new.status,
        device_owner=new.device_owner,
        device_id=new.device_id,
        description=new.description,
        tags=list(new.tags),
        revision_number=0,
        created_at=now,
        updated_at=now,
        fixed_ips=[t.FixedIp(subnet_id=s, ip_address=ip) for s, ip, _ in ordered],
    )


async def insert_rows(
    conn: asyncpg.Connection, ports: list[NewPort]
) -> dict[uuid.UUID, str | DomainError | TransientError]:
    """``saga.insert`` for many ports in one statement per round: a port whose MAC is taken (by
    another port, or by one of the batch) gets a fresh random MAC next round, or a 409 when the
    caller chose it."""
    out: dict[uuid.UUID, str | DomainError | TransientError] = {}
    todo = list(ports)
    for _ in range(8):
        if not todo:
            return out
        macs = {p.id: p.mac_address or rules.random_mac() for p in todo}
        inserted = await store.insert_ports(conn, todo, macs)
        left = []
        for p in todo:
            if p.id in inserted:
                out[p.id] = macs[p.id]
            elif p.mac_address is not None:
                out[p.id] = saga.mac_in_use(p)
            else:
                left.append(p)
        todo = left
    for p in todo:
        out[p.id] = TransientError("could not find a free MAC address")
    return out


async def allocate_all(
    deps: Deps, jobs: list[tuple[CallContext, uuid.UUID, list[Want]]]
) -> list[Got | DomainError | TransientError]:
    """Every wanted address of every port, in IPAM messages of many requests each.

    A port's wants keep their order within a message (IPAM decides one subnet's requests in order).
    A want whose subnet is full (``IpAddressGenerationFailure``) is tried on its next candidate in the
    next round; any other error fails the port (its caller releases what it got). A failure of the
    call itself raises, for every port of the batch."""
    got: list[list[Ip | None]] = []
    tries: list[list[int]] = []
    failed: list[DomainError | TransientError | None] = [None] * len(jobs)
    for _, _, wants in jobs:
        got.append([None if w.ipam_held else (w.subnet_id, w.ip or "", False) for w in wants])
        tries.append([0] * len(wants))
    while True:
        refs: list[tuple[int, int]] = []
        requests: list[m.IpAllocate] = []
        for j, (ctx, port_id, wants) in enumerate(jobs):
            if failed[j] is not None:
                continue
            for k, w in enumerate(wants):
                if got[j][k] is None:
                    refs.append((j, k))
                    requests.append(ip_request(ctx, (w.subnet_id, *w.candidates)[tries[j][k]], port_id, w.ip))
        if not requests:
            break
        for (j, k), res in zip(refs, await deps.ipam.allocate_ips(requests), strict=True):
            if failed[j] is not None:
                continue
            if isinstance(res, m.IpAllocation):
                got[j][k] = (res.subnet_id, res.ip_address, True)
            elif (
                isinstance(res, DomainError)
                and res.type == "IpAddressGenerationFailure"
                and tries[j][k] < len(jobs[j][2][k].candidates)
            ):
                tries[j][k] += 1
            else:
                failed[j] = res
    return [failed[j] or [g for g in got[j] if g is not None] for j in range(len(jobs))]
