"""The create saga of stand-alone ports, group-committed: the port create's hot path.

The saga of each port is the one ``portsaga`` describes (row ``allocating`` committed → addresses
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

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from netaddr import IPAddress

from scopenet.contracts import ipam as m
from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import Conflict, DomainError, NotAuthorized, TransientError
from scopenet.contracts.subjects import event
from scopenet.policy.rules import not_found
from scopenet.services.topology import fixedips, portsaga, store, validate
from scopenet.services.topology.batching import Item, Step
from scopenet.services.topology.context import Deps
from scopenet.services.topology.ipam_client import ip_request
from scopenet.store.db import db_errors
from scopenet.store.outbox import event_row

Got = list[tuple[uuid.UUID, str, bool]]
"""(subnet id, address, held in IPAM) of one port"""


@dataclass(frozen=True)
class _Create:
    ctx: CallContext
    body: t.PortCreateBody
    new: portsaga.NewPort


@dataclass(frozen=True)
class _Inserted:
    mac: str
    wants: list[portsaga.Want]


class PortCreates:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self._insert_step = Step(self._insert, name="port-insert")
        self._allocate_step = Step(self._allocate, name="port-allocate", isolate=False, workers=2)
        self._activate_step = Step(self._activate, name="port-activate")

    async def create(self, ctx: CallContext, body: t.PortCreateBody, new: portsaga.NewPort) -> t.Port:
        self.d.inflight.add(new.id)  # the reconciler leaves the row alone while its saga runs here
        try:
            inserted: _Inserted = await self._insert_step.submit(_Create(ctx, body, new))
            try:
                got: Got = await self._allocate_step.submit((ctx, new.id, inserted.wants))
                port: t.Port = await self._activate_step.submit((new, inserted.mac, got))
            except BaseException:
                await portsaga.abandon(self.d, new.id)
                raise
        finally:
            self.d.inflight.discard(new.id)
        return port

    # ------------------------------------------------------------ step 1: rows ``allocating``

    async def _insert(self, items: list[Item[_Create]]) -> None:
        outcome: dict[int, Any] = {}
        try:
            async with db_errors(), self.d.db.acquire() as conn, conn.transaction():
                nets = await store.networks_access(conn, (it.request.body.network_id for it in items))
                subnets: dict[uuid.UUID, list[asyncpg.Record]] = {n: [] for n in nets}
                for s in await store.network_subnets(conn, list(nets)):
                    subnets[s["network_id"]].append(s)
                planned: list[tuple[int, _Create, fixedips.Plan]] = []
                for i, it in enumerate(items):
                    try:
                        planned.append((i, it.request, await self._plan(conn, it.request, nets, subnets)))
                    except DomainError as exc:
                        outcome[i] = exc
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

    @staticmethod
    async def _plan(
        conn: asyncpg.Connection,
        req: _Create,
        nets: dict[uuid.UUID, store.NetAccess],
        subnets: dict[uuid.UUID, list[asyncpg.Record]],
    ) -> fixedips.Plan:
        body, ctx = req.body, req.ctx
        net = nets.get(body.network_id)
        if net is None or not net.visible(ctx.project_id, ctx.is_admin):
            raise not_found("network", body.network_id, field="network_id")
        net_owner = ctx.is_admin or net.project_id == ctx.project_id
        if not net_owner and not net.shared(ctx.project_id):
            raise NotAuthorized("rule:create_port is disallowed by policy", field="network_id")
        if not net_owner:
            for attr, bad in (
                ("device_owner", body.device_owner.startswith("network:")),
                ("mac_address", req.new.mac_address is not None),
                ("fixed_ips", any(r.ip_address for r in body.fixed_ips or ())),
            ):
                if bad:
                    raise NotAuthorized(f"(rule:create_port:{attr}) is disallowed by policy", field=attr)
        router_port = body.device_owner in t.ROUTER_DEVICE_OWNERS
        mine = subnets.get(body.network_id, [])
        if body.fixed_ips is None:
            return fixedips.default_plan(mine, router_port=router_port)
        return await fixedips.requested_plan(
            conn, body.network_id, body.fixed_ips, mine, mac=req.new.mac_address, router_port=router_port
        )

    # ------------------------------------------------------------ step 2: addresses from IPAM

    async def _allocate(self, items: list[Item[tuple[CallContext, uuid.UUID, list[portsaga.Want]]]]) -> None:
        results = await allocate_all(self.d, [it.request for it in items])
        for it, res in zip(items, results, strict=True):
            it.fail(res) if isinstance(res, BaseException) else it.resolve(res)

    # ------------------------------------------------------------ step 3: rows ``active``

    async def _activate(self, items: list[Item[tuple[portsaga.NewPort, str, Got]]]) -> None:
        now = datetime.now(UTC)
        views = [_view(new, mac, got, now) for new, mac, got in (it.request for it in items)]
        spec = event("port", "created")
        events = [event_row(spec, v) for v in views]
        ips = [(v.id, s, ip, held) for v, it in zip(views, items, strict=True) for s, ip, held in it.request[2]]
        try:
            async with db_errors(), self.d.db.acquire() as conn:
                done = await conn.fetchval(
                    _ACTIVATE,
                    [v.id for v in views],
                    now,
                    [p for p, _, _, _ in ips],
                    [s for _, s, _, _ in ips],
                    [ip for _, _, ip, _ in ips],
                    [h for _, _, _, h in ips],
                    [str(e[0]) for e in events],
                    [e[1] for e in events],
                    [e[2] for e in events],
                )
        except asyncpg.ForeignKeyViolationError:
            raise Conflict("A subnet of the port was deleted meanwhile", type="SubnetNotFound") from None
        except Conflict:
            raise Conflict("IP address is already allocated", type="IpAddressAlreadyAllocated") from None
        active = set(done or ())
        for it, view in zip(items, views, strict=True):
            if view.id in active:
                it.resolve(view)
            else:  # the reconciler took the row for dead and rolled it back
                it.fail(TransientError("the port's creation was interrupted; try again"))


_ACTIVATE = """
WITH up AS (
    UPDATE ports SET state = 'active', state_at = $2, created_at = $2, updated_at = $2
    WHERE id = ANY($1::uuid[]) AND state = 'allocating' RETURNING id
), ips AS (
    INSERT INTO port_ips (port_id, subnet_id, ip_address, ipam_held)
    SELECT x.port_id, x.subnet_id, x.ip, x.held
    FROM unnest($3::uuid[], $4::uuid[], $5::inet[], $6::bool[]) AS x(port_id, subnet_id, ip, held)
    JOIN up ON up.id = x.port_id
), ev AS (
    INSERT INTO outbox (event_id, subject, payload)
    SELECT e.event_id, e.subject, e.payload::jsonb
    FROM unnest($7::text[], $8::text[], $9::text[], $1::uuid[]) WITH ORDINALITY
         AS e(event_id, subject, payload, port_id, n)
    JOIN up ON up.id = e.port_id ORDER BY e.n
)
SELECT array_agg(id) FROM up"""


def _view(new: portsaga.NewPort, mac: str, got: Got, now: datetime) -> t.Port:
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


_INSERT = """
INSERT INTO ports (id, network_id, project_id, name, mac_address, admin_state_up, status,
    device_owner, device_id, description, tags, state)
SELECT x.id, x.network_id, x.project_id, x.name, x.mac, x.up, x.status, x.owner, x.device, x.descr,
    ARRAY(SELECT jsonb_array_elements_text(x.tags::jsonb)), 'allocating'
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::macaddr[], $6::bool[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::text[])
     AS x(id, network_id, project_id, name, mac, up, status, owner, device, descr, tags)
ON CONFLICT (mac_address) DO NOTHING RETURNING id"""


async def insert_rows(
    conn: asyncpg.Connection, ports: list[portsaga.NewPort]
) -> dict[uuid.UUID, str | DomainError | TransientError]:
    """``portsaga.insert`` for many ports in one statement per round: a port whose MAC is taken (by
    another port, or by one of the batch) gets a fresh random MAC next round, or a 409 when the
    caller chose it."""
    out: dict[uuid.UUID, str | DomainError | TransientError] = {}
    todo = list(ports)
    for _ in range(8):
        if not todo:
            return out
        macs = {p.id: p.mac_address or validate.random_mac() for p in todo}
        inserted = {
            r["id"]
            for r in await conn.fetch(
                _INSERT,
                [p.id for p in todo],
                [p.network_id for p in todo],
                [p.project_id for p in todo],
                [p.name for p in todo],
                [macs[p.id] for p in todo],
                [p.admin_state_up for p in todo],
                [p.status for p in todo],
                [p.device_owner for p in todo],
                [p.device_id for p in todo],
                [p.description for p in todo],
                [json.dumps(list(p.tags)) for p in todo],
            )
        }
        left = []
        for p in todo:
            if p.id in inserted:
                out[p.id] = macs[p.id]
            elif p.mac_address is not None:
                out[p.id] = Conflict(
                    f"Unable to complete operation for network {p.network_id}. The mac address "
                    f"{p.mac_address} is in use.",
                    type="MacAddressInUse",
                    field="mac_address",
                )
            else:
                left.append(p)
        todo = left
    for p in todo:
        out[p.id] = TransientError("could not find a free MAC address")
    return out


async def allocate_all(
    deps: Deps, jobs: list[tuple[CallContext, uuid.UUID, list[portsaga.Want]]]
) -> list[Got | DomainError | TransientError]:
    """Every wanted address of every port, in IPAM messages of many requests each.

    A port's wants keep their order within a message (IPAM decides one subnet's requests in order).
    A want whose subnet is full (``IpAddressGenerationFailure``) is tried on its next candidate in the
    next round; any other error fails the port (its caller releases what it got). A failure of the
    call itself raises, for every port of the batch."""
    got: list[list[tuple[uuid.UUID, str, bool] | None]] = []
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
