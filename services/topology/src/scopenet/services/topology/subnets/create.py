"""The create saga of subnets, group-committed: the subnet create's hot path.

The saga of each subnet is the one ``subnets.service`` describes (row ``allocating`` committed →
IPAM ``subnet.allocate``, idempotent on the subnet id → row completed with what IPAM chose, its
event and the RouterSpecs of routers on its network; or ``Subnets.abandon``). Each step runs as a
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

import uuid
from collections import Counter
from datetime import UTC, datetime

import asyncpg

from scopenet.contracts import ipam as im
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.contracts.subjects import event
from scopenet.policy.rules import not_found
from scopenet.services.topology.context import Deps
from scopenet.services.topology.networks.store import networks_access
from scopenet.services.topology.scopes import store as mirror
from scopenet.services.topology.subnets import rules, store
from scopenet.services.topology.subnets.rules import NewSubnet
from scopenet.store.batching import Item, Step
from scopenet.store.db import db_errors
from scopenet.store.outbox import event_row
from scopenet.store.quotas import over_quota_errors


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
                nets = await networks_access(conn, (it.request.body.network_id for it in items))
                for it in items:
                    try:
                        rules.check_create(it.request, nets.get(it.request.body.network_id))
                        outcome.append(None)
                    except DomainError as exc:
                        outcome.append(exc)
                outcome = await self._admit(conn, items, outcome)
                rows = [it.request for it, err in zip(items, outcome, strict=True) if err is None]
                if rows:
                    await store.insert_allocating(conn, rows)
        except asyncpg.ForeignKeyViolationError:  # a network deleted since it was read
            if len(items) > 1:
                raise  # the step runs each request alone: only the culprit gets this
            raise not_found("network", items[0].request.body.network_id, field="network_id") from None
        for it, err in zip(items, outcome, strict=True):
            it.fail(err) if err is not None else it.resolve(None)

    async def _admit(
        self, conn: asyncpg.Connection, items: list[Item[NewSubnet]], outcome: list[DomainError | None]
    ) -> list[DomainError | None]:
        """The quota (docs/neutron.md#quotas): as many of each project's valid requests as fit, in order."""
        valid = [it.request.owner for it, err in zip(items, outcome, strict=True) if err is None]
        granted = await self.d.quotas.admit(conn, "subnet", Counter(valid))
        verdicts = iter(over_quota_errors("subnet", valid, granted))
        return [err if err is not None else next(verdicts) for err in outcome]

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
            held = await store.mirrored_scopes(conn, list(new))
        for scope_id in new - held:
            scope = await self.d.ipam.scope(scope_id)
            async with db_errors(), self.d.db.acquire() as conn:
                await mirror.upsert_scope(conn, scope)
        self._known_scopes |= new

    # ------------------------------------------------------------ step 3: rows ``active``

    async def _complete(self, items: list[Item[tuple[NewSubnet, im.Subnet]]]) -> None:
        now = datetime.now(UTC)
        views = [new.view(alloc, now) for new, alloc in (it.request for it in items)]
        spec = event("topology_subnet", "created")
        events = [event_row(spec, v) for v in views]
        async with db_errors(), self.d.db.acquire() as conn, conn.transaction():
            done, routers = await store.complete(
                conn,
                [alloc for _, alloc in (it.request for it in items)],
                now=now,
                events=events,
                network_ids=list({v.network_id for v in views}),
            )
            if routers:
                await self.d.specs.publish_for_routers(conn, routers)
        completed = set(done)
        for it, view in zip(items, views, strict=True):
            if view.id in completed:
                it.resolve(view)
            else:  # the reconciler took the row for dead and rolled it back
                it.fail(TransientError("the subnet's creation was interrupted; try again"))
