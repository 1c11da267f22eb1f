"""The create saga of subnets, group-committed: the subnet create's hot path.

The saga of each subnet is the one ``subnets`` describes (row ``allocating`` committed → IPAM
``subnet.allocate``, idempotent on the subnet id → row completed with what IPAM chose, its event
and the RouterSpecs of routers on its network; or ``Subnets.abandon``). Each step runs as a
``batching.Step``, one batch for every request waiting at that step:

1. ``_insert``: one transaction checks the batch's networks and inserts every row ``allocating``.
2. ``_allocate``: one IPAM ``subnet.allocate_many`` (each request keeps its caller's context, so
   IPAM decides pool visibility per caller); address scopes new to the mirror are fetched.
3. ``_complete``: one transaction, one statement: rows ``active``, the pools mirrored, the networks'
   revisions bumped, the events written; then the RouterSpecs of any router on those networks.
   The replies are built here from what was written, so nothing is read back.

A request that fails at a step is compensated as a lone one would be; a crash between steps leaves
what the reconciler repairs (rows ``allocating``, allocations without a row).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import DomainError, NotAuthorized, TransientError
from scopenet.contracts.subjects import event
from scopenet.policy.rules import not_found
from scopenet.services.topology import store
from scopenet.services.topology.batching import Item, Step
from scopenet.services.topology.context import Deps
from scopenet.services.topology.networks import mtu_conflict
from scopenet.services.topology.specs import PORT_ROUTERS
from scopenet.store.db import db_errors
from scopenet.store.outbox import event_row


@dataclass(frozen=True)
class NewSubnet:
    """A subnet create, validated: what its row holds before IPAM has decided."""

    id: uuid.UUID
    ctx: CallContext
    body: t.SubnetCreateBody
    owner: str
    dns: list[str]
    routes: list[dict[str, str]]

    def allocate_request(self) -> im.SubnetAllocate:
        body = self.body
        fields: dict[str, Any] = {
            "context": self.ctx,
            "subnet_id": self.id,
            "network_id": body.network_id,
            "project_id": self.owner,
            "ip_version": body.ip_version,
            "enable_dhcp": body.enable_dhcp,
        }
        for key in ("subnetpool_id", "use_default_subnetpool", "cidr", "prefixlen", "gateway_ip", "allocation_pools"):
            if key in body.model_fields_set:
                fields[key] = getattr(body, key)
        return im.SubnetAllocate(**fields)

    def view(self, alloc: im.Subnet, now: datetime) -> t.Subnet:
        body = self.body
        return t.Subnet(
            id=self.id,
            name=body.name,
            network_id=body.network_id,
            project_id=self.owner,
            tenant_id=self.owner,
            ip_version=alloc.ip_version,
            cidr=alloc.cidr,
            subnetpool_id=alloc.subnetpool_id,
            gateway_ip=alloc.gateway_ip,
            allocation_pools=alloc.allocation_pools,
            enable_dhcp=body.enable_dhcp,
            ipv6_ra_mode=body.ipv6_ra_mode,
            ipv6_address_mode=body.ipv6_address_mode,
            dns_nameservers=self.dns,
            host_routes=[t.HostRoute(**r) for r in self.routes],
            service_types=list(body.service_types),
            description=body.description,
            tags=list(body.tags),
            revision_number=0,
            created_at=now,
            updated_at=now,
        )


class SubnetCreates:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.insert = Step(self._insert, name="subnet-insert")
        self.allocate = Step(self._allocate, name="subnet-allocate", isolate=False, workers=2)
        self.complete = Step(self._complete, name="subnet-complete")
        self._known_scopes: set[uuid.UUID] = set()
        """Address scopes the mirror holds (IPAM never deletes a scope a pool uses)."""

    def forget_scope(self, scope_id: uuid.UUID) -> None:
        self._known_scopes.discard(scope_id)

    # ------------------------------------------------------------ step 1: rows ``allocating``

    async def _insert(self, items: list[Item[NewSubnet]]) -> None:
        outcome: list[DomainError | None] = []
        try:
            async with db_errors(), self.d.db.acquire() as conn, conn.transaction():
                nets = await store.networks_access(conn, (it.request.body.network_id for it in items))
                for it in items:
                    try:
                        self._check(it.request, nets.get(it.request.body.network_id))
                        outcome.append(None)
                    except DomainError as exc:
                        outcome.append(exc)
                rows = [it.request for it, err in zip(items, outcome, strict=True) if err is None]
                if rows:
                    await conn.execute(_INSERT, *_columns(rows))
        except asyncpg.ForeignKeyViolationError:  # a network deleted since it was read
            if len(items) > 1:
                raise  # the step runs each request alone: only the culprit gets this
            raise not_found("network", items[0].request.body.network_id, field="network_id") from None
        for it, err in zip(items, outcome, strict=True):
            it.fail(err) if err is not None else it.resolve(None)

    @staticmethod
    def _check(new: NewSubnet, net: store.NetAccess | None) -> None:
        ctx = new.ctx
        if net is None or not net.visible(ctx.project_id, ctx.is_admin):
            raise not_found("network", new.body.network_id, field="network_id")
        if not ctx.is_admin and net.project_id != ctx.project_id:
            raise NotAuthorized("rule:create_subnet is disallowed by policy", field="network_id")
        if (err := mtu_conflict(net.mtu, {new.body.ip_version})) is not None:
            raise err

    # ------------------------------------------------------------ step 2: prefixes from IPAM

    async def _allocate(self, items: list[Item[NewSubnet]]) -> None:
        results = await self.d.ipam.allocate_subnets([it.request.allocate_request() for it in items])
        try:
            await self._learn_scopes([r for r in results if isinstance(r, im.Subnet)])
        except DomainError as exc:  # the prefixes are allocated: fail as "may exist", so they are released
            raise TransientError(f"address scope could not be mirrored: {exc.message}") from exc
        for it, res in zip(items, results, strict=True):
            it.resolve(res) if isinstance(res, im.Subnet) else it.fail(res)

    async def _learn_scopes(self, allocs: list[im.Subnet]) -> None:
        """Mirror address scopes whose events have not arrived yet (RouterSpecs need their marks)."""
        new = {a.address_scope_id for a in allocs if a.address_scope_id is not None} - self._known_scopes
        if not new:
            return
        async with db_errors(), self.d.db.acquire() as conn:
            held = {r["id"] for r in await conn.fetch("SELECT id FROM address_scopes WHERE id = ANY($1)", list(new))}
        for scope_id in new - held:
            scope = await self.d.ipam.scope(scope_id)
            async with db_errors(), self.d.db.acquire() as conn:
                await store.upsert_scope(conn, scope)
        self._known_scopes |= new

    # ------------------------------------------------------------ step 3: rows ``active``

    async def _complete(self, items: list[Item[tuple[NewSubnet, im.Subnet]]]) -> None:
        now = datetime.now(UTC)
        views = [new.view(alloc, now) for new, alloc in (it.request for it in items)]
        spec = event("topology_subnet", "created")
        events = [event_row(spec, v) for v in views]
        allocs = [alloc for _, alloc in (it.request for it in items)]
        pooled = [a for a in allocs if a.subnetpool_id is not None]
        async with db_errors(), self.d.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                _COMPLETE,
                [a.id for a in allocs],
                [a.cidr for a in allocs],
                [a.subnetpool_id for a in allocs],
                [a.gateway_ip for a in allocs],
                [json.dumps([p.model_dump() for p in a.allocation_pools]) for a in allocs],
                [a.ip_version for a in allocs],
                now,
                [a.subnetpool_id for a in pooled],
                [a.ip_version for a in pooled],
                [a.address_scope_id for a in pooled],
                [str(e[0]) for e in events],
                [e[1] for e in events],
                [e[2] for e in events],
                list({v.network_id for v in views}),
            )
            assert row is not None
            if row["routers"]:
                await self.d.specs.publish_for_routers(conn, row["routers"])
        done = set(row["done"])
        for it, view in zip(items, views, strict=True):
            if view.id in done:
                it.resolve(view)
            else:  # the reconciler took the row for dead and rolled it back
                it.fail(TransientError("the subnet's creation was interrupted; try again"))


_INSERT = """
INSERT INTO subnets (id, network_id, project_id, name, ip_version, enable_dhcp, ipv6_ra_mode, ipv6_address_mode,
    dns_nameservers, host_routes, service_types, description, tags, state)
SELECT x.id, x.network_id, x.project_id, x.name, x.ip_version, x.dhcp, x.ra, x.am,
    ARRAY(SELECT jsonb_array_elements_text(x.dns::jsonb)), x.routes::jsonb,
    ARRAY(SELECT jsonb_array_elements_text(x.st::jsonb)), x.descr,
    ARRAY(SELECT jsonb_array_elements_text(x.tags::jsonb)), 'allocating'
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::smallint[], $6::bool[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
     AS x(id, network_id, project_id, name, ip_version, dhcp, ra, am, dns, routes, st, descr, tags)"""


def _columns(rows: list[NewSubnet]) -> list[list[Any]]:
    return [
        [n.id for n in rows],
        [n.body.network_id for n in rows],
        [n.owner for n in rows],
        [n.body.name for n in rows],
        [n.body.ip_version for n in rows],
        [n.body.enable_dhcp for n in rows],
        [n.body.ipv6_ra_mode for n in rows],
        [n.body.ipv6_address_mode for n in rows],
        [json.dumps(n.dns) for n in rows],
        [json.dumps(n.routes) for n in rows],
        [json.dumps(list(n.body.service_types)) for n in rows],
        [n.body.description for n in rows],
        [json.dumps(list(n.body.tags)) for n in rows],
    ]


_COMPLETE = f"""
WITH x AS (
    SELECT * FROM unnest($1::uuid[], $2::cidr[], $3::uuid[], $4::inet[], $5::text[], $6::smallint[])
        AS x(id, cidr, pool, gw, pools, ip_version)
), up AS (
    UPDATE subnets s SET cidr = x.cidr, subnetpool_id = x.pool, gateway_ip = x.gw, allocation_pools = x.pools::jsonb,
        ip_version = x.ip_version, state = 'active', state_at = $7, created_at = $7, updated_at = $7
    FROM x WHERE s.id = x.id AND s.state = 'allocating' RETURNING s.id, s.network_id
), learn AS (
    -- a pool seen here before its event arrived (any event overrides it: revision -1)
    INSERT INTO subnetpools (id, ip_version, address_scope_id, revision_number)
    SELECT DISTINCT ON (p.id) p.id, p.v, p.scope, -1
    FROM unnest($8::uuid[], $9::smallint[], $10::uuid[]) AS p(id, v, scope)
    ON CONFLICT (id) DO NOTHING
), bump AS (
    -- subnet changes bump the parent network's revision (SPEC §1.4, §7.2)
    UPDATE networks n SET revision_number = n.revision_number + c.k, updated_at = $7
    FROM (SELECT network_id, count(*) AS k FROM up GROUP BY network_id) c WHERE n.id = c.network_id
), ev AS (
    INSERT INTO outbox (event_id, subject, payload)
    SELECT e.event_id, e.subject, e.payload::jsonb
    FROM unnest($11::text[], $12::text[], $13::text[], $1::uuid[]) WITH ORDINALITY
         AS e(event_id, subject, payload, id, n)
    JOIN up ON up.id = e.id ORDER BY e.n
)
SELECT ARRAY(SELECT id FROM up) AS done,
       ARRAY(SELECT DISTINCT r.router_id FROM ({PORT_ROUTERS.replace("$1", "$14")}) r) AS routers"""
