"""Subnet (prefix) allocation: from a pool (any / specific / default pool) or an explicit cidr.

Requests on one pool go through the ``Batcher`` (group commit, see ``batching``). The pool's free
space is kept in memory as ``FreeBlocks`` and trusted only while the pool row's ``alloc_version``
is the one it was built at; any other writer (a replica, a release, a pool update) bumps the
version, and the next batch rebuilds from the database. The exclusion constraints still have the
final word on overlap.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import asyncpg
from netaddr import IPNetwork

from scopenet.contracts import ipam as m
from scopenet.contracts.base import ByIdCommand, DeleteCommand, Deleted, PagedListCommand
from scopenet.contracts.errors import BadRequest, Conflict, DomainError
from scopenet.contracts.filters import apply_filters, id_filter
from scopenet.policy.rules import not_found
from scopenet.runtime import tracing
from scopenet.services.ipam import history, store
from scopenet.services.ipam.events import emit, emit_many
from scopenet.services.ipam.outcomes import error_body
from scopenet.services.ipam.rules import addresses as addr
from scopenet.services.ipam.rules import alloc
from scopenet.services.ipam.rules import prefixes as pfx
from scopenet.services.ipam.rules.network_rules import NetSubnet, check_new_subnet
from scopenet.store.batching import Batcher, Item
from scopenet.store.db import db_errors

_OVERLAP = "The subnet overlaps another allocation of its address scope"


@dataclass(frozen=True)
class Plan:
    """What a request asks for once its pool is resolved (decided before taking any lock)."""

    cmd: m.SubnetAllocate
    pool_id: uuid.UUID | None
    cidr: IPNetwork | None  # specific request (or plain subnet)
    prefixlen: int  # any request


def _request_json(cmd: m.SubnetAllocate) -> dict[str, Any]:
    return cmd.model_dump(mode="json", exclude={"context", "type"}, exclude_unset=True)


def _gateway_arg(cmd: m.SubnetAllocate) -> Any:
    return cmd.gateway_ip if "gateway_ip" in cmd.model_fields_set else addr.UNSET


def _pools_arg(cmd: m.SubnetAllocate) -> list[dict[str, str]] | None:
    return [p.model_dump() for p in cmd.allocation_pools] if cmd.allocation_pools is not None else None


@functools.lru_cache(maxsize=65536)
def _network(cidr: str) -> IPNetwork:
    """A stored prefix, parsed (shared: the network rules only read it)."""
    return IPNetwork(cidr)


async def lock_networks(conn: asyncpg.Connection, network_ids: set[uuid.UUID]) -> dict[uuid.UUID, list[NetSubnet]]:
    """Serialise subnet creation per network (Neutron's network lock row) and load its subnets."""
    # One round trip for all of a batch's networks, taken in a fixed order so batches never deadlock.
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(n, 7)) FROM unnest($1::text[]) WITH ORDINALITY AS t(n, i) "
        "ORDER BY i",
        sorted(str(n) for n in network_ids),
    )
    # Only what the network rules look at: a network's subnets are read once per batch touching it,
    # so their prefixes come as text and are parsed once per process (``_network``).
    rows = await conn.fetch(
        """SELECT s.id, s.network_id, s.cidr::text AS cidr, s.subnetpool_id, p.address_scope_id
           FROM subnets s LEFT JOIN subnetpools p ON p.id = s.subnetpool_id
           WHERE s.network_id = ANY($1::uuid[]) ORDER BY s.created_at, s.id""",
        list(network_ids),
    )
    out: dict[uuid.UUID, list[NetSubnet]] = {n: [] for n in network_ids}
    for r in rows:
        out[r["network_id"]].append(NetSubnet(r["id"], _network(r["cidr"]), r["subnetpool_id"], r["address_scope_id"]))
    return out


class Subnets:
    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db
        self._batcher = Batcher(self._pool_batch, name="subnet-allocate")
        self._free: dict[uuid.UUID, tuple[int, alloc.FreeBlocks]] = {}

    # ------------------------------------------------------------ allocate

    async def allocate(self, cmd: m.SubnetAllocate) -> m.SubnetReply:
        # Everything that needs the pool row (visibility, bounds, idempotency) is decided inside the
        # pool's batch, under its lock: a request costs no database round trip of its own there.
        plan = self._static_checks(cmd)
        if cmd.use_default_subnetpool:
            plan = Plan(cmd, await self._default_pool(cmd), plan.cidr, plan.prefixlen)
        if plan.pool_id is None:
            return await self._plain(plan)
        result: m.SubnetReply = await self._batcher.submit(plan.pool_id, plan)
        return result

    async def allocate_many(self, cmd: m.SubnetAllocateMany) -> m.SubnetAllocateManyReply:
        """Requests on one pool land in that pool's batch together (one lock, one commit)."""
        outcomes = await asyncio.gather(*(self.allocate(r) for r in cmd.requests), return_exceptions=True)
        return m.SubnetAllocateManyReply(
            results=[
                m.SubnetAllocateResult(subnet=o.subnet)
                if isinstance(o, m.SubnetReply)
                else m.SubnetAllocateResult(error=error_body(o))
                for o in outcomes
            ]
        )

    def _replay(self, row: asyncpg.Record, cmd: m.SubnetAllocate) -> m.SubnetReply:
        """A retry of the same request gets the same allocation; another request is a conflict."""
        return _same_request(row["request"], store.subnet_view(row), cmd)

    @staticmethod
    def _static_checks(cmd: m.SubnetAllocate) -> Plan:
        """Rules 39 and 45 that need no database: the request's own consistency."""
        if cmd.cidr is not None and cmd.prefixlen is not None:
            raise BadRequest("cidr and prefixlen must not be supplied together", field="prefixlen")
        if cmd.subnetpool_id is not None and cmd.use_default_subnetpool:
            raise BadRequest(
                "subnetpool_id and use_default_subnetpool cannot both be specified", field="use_default_subnetpool"
            )
        cidr = addr.validate_cidr(cmd.cidr, cmd.ip_version, enable_dhcp=cmd.enable_dhcp) if cmd.cidr else None
        pooled = cmd.subnetpool_id is not None or cmd.use_default_subnetpool
        if not pooled and cidr is None:
            raise BadRequest("A cidr must be specified in the absence of a subnet pool", field="cidr")
        if pooled and cmd.allocation_pools is not None and cidr is None:
            raise BadRequest("allocation_pools allowed only for specific subnet requests.", field="allocation_pools")
        return Plan(cmd, cmd.subnetpool_id, cidr, cidr.prefixlen if cidr is not None else -1)

    async def _default_pool(self, cmd: m.SubnetAllocate) -> uuid.UUID:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn:
            rows = await store.pools(
                conn,
                project=ctx.project_id,
                admin=ctx.is_admin,
                where="p.is_default AND p.ip_version = $3",
                args=(cmd.ip_version,),
            )
        if not rows:
            raise BadRequest(f"No default subnetpool found for IPv{cmd.ip_version}", field="use_default_subnetpool")
        pool_id: uuid.UUID = rows[0]["id"]
        return pool_id

    @staticmethod
    def _against_pool(plan: Plan, pool: asyncpg.Record) -> Plan:
        """Rules 39-41 that need the pool: visibility, family, request kind and size bounds."""
        cmd = plan.cmd
        ctx = cmd.context
        targets = pool["rbac_targets"]
        if not (ctx.is_admin or pool["project_id"] == ctx.project_id or "*" in targets or ctx.project_id in targets):
            raise not_found("subnetpool", pool["id"])
        if pool["ip_version"] != cmd.ip_version:
            raise BadRequest(
                f"Cannot allocate IPv{cmd.ip_version} subnet from IPv{pool['ip_version']} subnet pool",
                field="ip_version",
            )
        cidr = plan.cidr
        prefixlen = cmd.prefixlen if cmd.prefixlen is not None else pool["default_prefixlen"]
        if cidr is None and cmd.gateway_ip is not None:
            # Rule 40: a gateway without a cidr makes the request specific.
            try:
                cidr = IPNetwork(f"{cmd.gateway_ip}/{prefixlen}").cidr
            except Exception:
                raise BadRequest(
                    f"Invalid input for gateway_ip. Reason: '{cmd.gateway_ip}' is not a valid IP address.",
                    field="gateway_ip",
                ) from None
        alloc.check_prefixlen(
            cidr.prefixlen if cidr is not None else prefixlen,
            min_prefixlen=pool["min_prefixlen"],
            max_prefixlen=pool["max_prefixlen"],
            ip_version=pool["ip_version"],
        )
        return Plan(cmd, pool["id"], cidr, cidr.prefixlen if cidr is not None else prefixlen)

    async def _plain(self, plan: Plan) -> m.SubnetReply:
        """A subnet with an explicit cidr and no pool: the unscoped space (docs/neutron.md#the-unscoped-space)."""
        cmd = plan.cmd
        assert plan.cidr is not None
        gw, ranges = addr.subnet_defaults(plan.cidr, gateway_ip=_gateway_arg(cmd), allocation_pools=_pools_arg(cmd))
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            nets = await lock_networks(conn, {cmd.network_id})
            if (row := await store.subnet(conn, cmd.subnet_id)) is not None:
                return self._replay(row, cmd)
            check_new_subnet(cmd.network_id, nets[cmd.network_id], NetSubnet(cmd.subnet_id, plan.cidr, None, None))
            view = self._view(cmd, plan.cidr, None, None, gw, ranges)
            await self._insert(conn, [(view, cmd, None)], [None])
        return m.SubnetReply(subnet=view)

    # ------------------------------------------------------------ one batch on one pool

    async def _pool_batch(self, key: Hashable, items: list[Item[Plan]]) -> None:
        pool_id = key
        assert isinstance(pool_id, uuid.UUID)
        results: list[tuple[Item[Plan], m.SubnetReply | DomainError]] = []
        try:
            async with (
                db_errors(_OVERLAP, conflict_type="SubnetAllocationError"),
                self.db.acquire() as conn,
                conn.transaction(),
            ):
                pool = await store.pool(conn, pool_id, project="", admin=True, lock=True)
                if pool is None:
                    for it in items:
                        it.fail(not_found("subnetpool", pool_id))
                    return
                free = await self._free_space(conn, pool)
                nets = await lock_networks(conn, {it.request.cmd.network_id for it in items})
                usage = await self._usage(conn, pool, {it.request.cmd.project_id for it in items})
                rows: list[tuple[m.Subnet, m.SubnetAllocate, int | None]] = []
                traces: list[str | None] = []
                key_ = pool["mark_id"] if pool["mark_id"] is not None else -pool["seq"]
                # Concurrent retries of one subnet_id all pass ``allocate``'s first look; settle them here,
                # under the pool's lock: the first decides, the others replay it (or conflict).
                decided = {
                    r["id"]: (r["request"], store.subnet_view(r))
                    for r in await store.subnets(
                        conn, "s.id = ANY($1::uuid[])", [it.request.cmd.subnet_id for it in items]
                    )
                }
                for it in items:
                    cmd = it.request.cmd
                    try:
                        if cmd.subnet_id in decided:
                            results.append((it, _same_request(*decided[cmd.subnet_id], cmd)))
                            continue
                        view = self._decide(self._against_pool(it.request, pool), pool, free, nets, usage)
                    except DomainError as exc:
                        results.append((it, exc))
                        continue
                    decided[cmd.subnet_id] = (_request_json(cmd), view)
                    rows.append((view, it.request.cmd, key_))
                    traces.append(tracing.trace_id_of(it.trace))
                    results.append((it, m.SubnetReply(subnet=view)))
                if rows:
                    await self._insert(conn, rows, traces)
                    version = await conn.fetchval(
                        "UPDATE subnetpools SET alloc_version = alloc_version + 1 WHERE id = $1 "
                        "RETURNING alloc_version",
                        pool_id,
                    )
            if rows:
                self._free[pool_id] = (version, free)
        except BaseException:
            self._free.pop(pool_id, None)  # in-memory state may hold allocations that never committed
            raise
        for it, res in results:
            if isinstance(res, DomainError):
                it.fail(res)
            else:
                it.resolve(res)

    def _decide(
        self,
        plan: Plan,
        pool: asyncpg.Record,
        free: alloc.FreeBlocks,
        nets: dict[uuid.UUID, list[NetSubnet]],
        usage: dict[str, Any],
    ) -> m.Subnet:
        cmd = plan.cmd
        pfx.check_quota(pool["default_quota"], usage.get(cmd.project_id, 0), plan.prefixlen, pool["ip_version"])
        cidr = free.allocate_specific(plan.cidr) if plan.cidr is not None else free.allocate(plan.prefixlen)
        try:
            new = NetSubnet(cmd.subnet_id, cidr, pool["id"], pool["address_scope_id"])
            check_new_subnet(cmd.network_id, nets[cmd.network_id], new)
            # No cidr from the caller (even one derived from gateway_ip) is a pool request: rule 46's 409.
            gw, ranges = addr.subnet_defaults(
                cidr, gateway_ip=_gateway_arg(cmd), allocation_pools=_pools_arg(cmd), from_pool_any=cmd.cidr is None
            )
        except DomainError:
            free.release(cidr)
            raise
        nets[cmd.network_id].append(new)
        usage[cmd.project_id] = usage.get(cmd.project_id, 0) + pfx.quota_units(cidr)
        return self._view(cmd, cidr, pool["id"], pool["address_scope_id"], gw, ranges)

    async def _free_space(self, conn: asyncpg.Connection, pool: asyncpg.Record) -> alloc.FreeBlocks:
        cached = self._free.get(pool["id"])
        if cached is not None and cached[0] == pool["alloc_version"]:
            return cached[1]
        used = [IPNetwork(c) for c in await store.pool_allocations(conn, pool["id"])]
        return alloc.FreeBlocks([IPNetwork(str(p)) for p in pool["prefixes"]], used)

    async def _usage(self, conn: asyncpg.Connection, pool: asyncpg.Record, projects: set[str]) -> dict[str, Any]:
        """Quota usage of the *requesting* projects (docs/neutron.md#quota-counts-the-requesting-project)."""
        if not pool["default_quota"]:
            return {}
        rows = await conn.fetch(
            "SELECT project_id, cidr FROM subnets WHERE subnetpool_id = $1 AND project_id = ANY($2::text[])",
            pool["id"],
            list(projects),
        )
        usage: dict[str, Any] = {}
        for r in rows:
            usage[r["project_id"]] = usage.get(r["project_id"], 0) + pfx.quota_units(IPNetwork(str(r["cidr"])))
        return usage

    @staticmethod
    def _view(
        cmd: m.SubnetAllocate,
        cidr: IPNetwork,
        pool_id: uuid.UUID | None,
        scope_id: uuid.UUID | None,
        gw: Any,
        ranges: list[Any],
    ) -> m.Subnet:
        return m.Subnet(
            id=cmd.subnet_id,
            network_id=cmd.network_id,
            project_id=cmd.project_id,
            ip_version=cidr.version,
            cidr=str(cidr),
            subnetpool_id=pool_id,
            address_scope_id=scope_id,
            gateway_ip=str(gw) if gw is not None else None,
            allocation_pools=[m.AllocationPool(start=str(r[0]), end=str(r[-1])) for r in ranges],
        )

    async def _insert(
        self,
        conn: asyncpg.Connection,
        rows: list[tuple[m.Subnet, m.SubnetAllocate, int | None]],
        traces: list[str | None],
    ) -> None:
        """The subnets, their events and, for pooled ones, their history entries (``traces``: each
        request's trace id), in the caller's transaction (which holds the pool's row lock)."""
        await conn.executemany(
            """INSERT INTO subnets (id, network_id, project_id, ip_version, cidr, subnetpool_id, overlap_key,
                   gateway_ip, allocation_pools, request)
               VALUES ($1, $2, $3, $4, $5::cidr, $6, $7, $8::inet, $9::text::jsonb, $10::text::jsonb)""",
            [
                (
                    v.id,
                    v.network_id,
                    v.project_id,
                    v.ip_version,
                    v.cidr,
                    v.subnetpool_id,
                    k,
                    v.gateway_ip,
                    _json([p.model_dump() for p in v.allocation_pools]),
                    _json(_request_json(c)),
                )
                for v, c, k in rows
            ],
        )
        events = await emit_many(conn, "subnet", "created", [v for v, _, _ in rows])
        await history.record(
            conn,
            [
                history.for_subnet(v, "allocated", c.context, trace, event_id)
                for (v, c, _), trace, event_id in zip(rows, traces, events, strict=True)
                if v.subnetpool_id is not None
            ],
        )

    # ------------------------------------------------------------ other verbs

    async def get(self, cmd: ByIdCommand) -> m.SubnetReply:
        async with db_errors(), self.db.acquire() as conn:
            row = await store.subnet(conn, cmd.id)
        if row is None:
            raise not_found("subnet", cmd.id)
        return m.SubnetReply(subnet=store.subnet_view(row))

    async def list_(self, cmd: PagedListCommand) -> m.SubnetList:
        """Filters on ``id``, ``network_id``, ``subnetpool_id`` and ``project_id`` (one value or a list)
        run in SQL; others on the rows read. With ``limit`` or ``marker`` the pages are in id order
        (a page filtered on other fields may hold fewer than ``limit``: read until no marker)."""
        filters = dict(cmd.filters)
        bad = "id, network_id and subnetpool_id filters must be UUIDs"
        ids, nets, pools = (id_filter(filters, k, bad) for k in ("id", "network_id", "subnetpool_id"))
        for key in ("id", "network_id", "subnetpool_id"):
            filters.pop(key, None)
        project = filters.pop("project_id", None)
        projects = [str(p) for p in (project if isinstance(project, list) else [project])] if project else None
        try:
            after = uuid.UUID(cmd.marker) if cmd.marker is not None else None
        except ValueError:
            raise BadRequest(f"Invalid marker {cmd.marker!r}", field="marker") from None
        paged = cmd.limit is not None or after is not None
        where = (
            "($1::uuid[] IS NULL OR s.id = ANY($1::uuid[])) AND ($2::uuid[] IS NULL OR s.network_id = ANY($2::uuid[])) "
            "AND ($3::uuid[] IS NULL OR s.subnetpool_id = ANY($3::uuid[])) "
            "AND ($4::text[] IS NULL OR s.project_id = ANY($4::text[])) AND ($5::uuid IS NULL OR s.id > $5::uuid)"
        )
        async with db_errors(), self.db.acquire() as conn:
            if paged:
                rows = await store.subnets_by_id(conn, where, ids, nets, pools, projects, after, limit=cmd.limit)
            else:
                rows = await store.subnets(conn, where, ids, nets, pools, projects, after)
        marker = str(rows[-1]["id"]) if cmd.limit is not None and len(rows) == cmd.limit else None
        return m.SubnetList(subnets=apply_filters([store.subnet_view(r) for r in rows], filters), next_marker=marker)

    async def update(self, cmd: m.SubnetUpdate) -> m.SubnetReply:
        given = cmd.model_fields_set
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.subnet(conn, cmd.id, lock=True)
            if row is None:
                raise not_found("subnet", cmd.id)
            before = store.subnet_view(row)
            cidr = IPNetwork(str(row["cidr"]))
            gateway = cmd.gateway_ip if "gateway_ip" in given else before.gateway_ip
            if "gateway_ip" in given and before.gateway_ip is not None and gateway != before.gateway_ip:
                holder = await conn.fetchval(
                    "SELECT port_id FROM ip_allocations WHERE subnet_id = $1 AND ip_address = $2::inet",
                    cmd.id,
                    before.gateway_ip,
                )
                if holder is not None:
                    raise Conflict(
                        f"Gateway ip {before.gateway_ip} is in use by port {holder}; it cannot be changed",
                        type="GatewayIpInUse",
                        field="gateway_ip",
                    )
            pools = (
                [p.model_dump() for p in cmd.allocation_pools]
                if cmd.allocation_pools is not None
                else [p.model_dump() for p in before.allocation_pools]
            )
            gw, ranges = addr.subnet_defaults(cidr, gateway_ip=gateway, allocation_pools=pools)
            await conn.execute(
                "UPDATE subnets SET gateway_ip = $2::inet, allocation_pools = $3::text::jsonb, "
                "alloc_version = alloc_version + 1 WHERE id = $1",
                cmd.id,
                str(gw) if gw is not None else None,
                _json([{"start": str(r[0]), "end": str(r[-1])} for r in ranges]),
            )
            after = store.subnet_view(store.must(await store.subnet(conn, cmd.id)))
            await emit(conn, "subnet", "updated", after, before)
        return m.SubnetReply(subnet=after)

    async def release(self, cmd: DeleteCommand) -> Deleted:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            # The pool's row first, then the subnet's: the order of a pool update (which re-keys
            # the pool's subnets) and of allocations; the other order deadlocks with a re-scope.
            await conn.execute(
                "SELECT 1 FROM subnetpools WHERE id = (SELECT subnetpool_id FROM subnets WHERE id = $1) FOR UPDATE",
                cmd.id,
            )
            row = await store.subnet(conn, cmd.id, lock=True)
            if row is None:
                return Deleted(id=cmd.id)  # idempotent: a retried release finds nothing to do
            held = await conn.fetchval("SELECT count(*) FROM ip_allocations WHERE subnet_id = $1", cmd.id)
            if held:
                raise Conflict(
                    f"Unable to complete operation on subnet {cmd.id}: One or more ports have an IP "
                    f"allocation from this subnet ({held} address(es)).",
                    type="SubnetInUse",
                )
            view = store.subnet_view(row)
            await conn.execute("DELETE FROM subnets WHERE id = $1", cmd.id)
            if row["subnetpool_id"] is not None:
                await conn.execute(
                    "UPDATE subnetpools SET alloc_version = alloc_version + 1 WHERE id = $1", row["subnetpool_id"]
                )
            event_id = await emit(conn, "subnet", "deleted", view)
            if view.subnetpool_id is not None:
                change = history.for_subnet(view, "released", cmd.context, tracing.trace_id_of(), event_id)
                await history.record(conn, [change])
        return Deleted(id=cmd.id)


def _same_request(request: Any, view: m.Subnet, cmd: m.SubnetAllocate) -> m.SubnetReply:
    if request != _request_json(cmd):
        raise Conflict(
            f"Subnet {cmd.subnet_id} already has an allocation ({view.cidr}) made by a different request",
            type="SubnetInUse",
        )
    return m.SubnetReply(subnet=view)


def _json(value: Any) -> str:
    return json.dumps(value)
