"""Topology's mirror of IPAM's pools and scopes, so reads and RouterSpecs never call IPAM.

Fed by IPAM's events (``subnetpool.*`` and ``address_scope.*`` through two durable consumers) and
filled from IPAM's list commands at start: the consumers are bound first (deliver "new"), then the
lists are read, then the consumers run, so nothing falls between the fill and the stream. Pool rows
carry IPAM's revision and an older event never overwrites a newer state.

A pool moving to another scope (``openstack subnet pool set --address-scope``) changes the scope of
every network with a subnet from it: in the same transaction that records the move, the routers
with a port on such a network are republished, and each network whose derived
``ipv4_address_scope``/``ipv6_address_scope`` changed gets a new revision and a ``network.updated``
event (its representation changed, even though nobody updated it).

Each committed change wakes the read-your-writes waits (``waits.py``): a writer that got IPAM's
reply can wait for the mirror to hold that pool revision before it reads from topology.
"""

from __future__ import annotations

import time
from uuid import UUID

import asyncpg
import structlog
from prometheus_client import Histogram

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.runtime.supervise import retry
from scopenet.services.topology.consumers import consumed
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.scopes import rules, store
from scopenet.store.db import db_errors

log = structlog.get_logger("topology.scopes")

SPEC_LAG = Histogram(
    "scopenet_topology_pool_event_to_spec_seconds",
    "From an IPAM pool event's commit to its RouterSpecs in the outbox",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class Mirror:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def _know_scope(self, scope_id: UUID | None) -> None:
        if scope_id is None:
            return
        async with db_errors(), self.db.acquire() as conn:
            if await store.known_scope(conn, scope_id):
                return
        scope = await self.d.ipam.scope(scope_id)
        async with db_errors(), self.db.acquire() as conn:
            await store.upsert_scope(conn, scope)

    async def on_pool(self, event: im.SubnetPoolEvent) -> None:
        pool = event.resource
        if event.type.endswith(".deleted"):
            async with db_errors(), self.db.acquire() as conn, conn.transaction():
                if not await consumed(conn, event.id):
                    await store.delete_pool(conn, pool.id)
            self.d.mirror_waits.applied()
            return
        await self._know_scope(pool.address_scope_id)
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            if await consumed(conn, event.id):
                return
            mirrored = await store.lock_pool_scope(conn, pool.id)
            may_move = rules.may_move(mirrored, pool, event.previous)
            networks = await store.pool_networks(conn, [pool.id]) if may_move else {}
            before = await store.upsert_pool(conn, pool)
            if rules.moved(before, pool, event.previous):
                await announce_rescoped(conn, networks)
                specs = await self.d.specs.publish_for_pools(conn, [pool.id])
                SPEC_LAG.observe(max(0.0, time.time() - event.occurred_at.timestamp()))
                log.info(
                    "pool_rescoped", subnetpool_id=str(pool.id), scope=str(pool.address_scope_id), routers=len(specs)
                )
        # Committed: a read-your-writes wait for this revision may answer now (waits.py).
        self.d.mirror_waits.applied()

    async def on_scope(self, event: im.AddressScopeEvent) -> None:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            if await consumed(conn, event.id):
                return
            if event.type.endswith(".deleted"):
                await store.delete_scope(conn, event.resource.id)
                self.d.subnets.creates.forget_scope(event.resource.id)
            else:
                await store.upsert_scope(conn, event.resource)

    async def fill(self) -> None:
        """Copy IPAM's scopes and pools (retrying until IPAM answers); republish moved pools."""

        async def read() -> tuple[list[im.AddressScope], list[im.SubnetPool]]:
            return await self.d.ipam.scopes(), await self.d.ipam.pools()

        scopes, pools = await retry(read, log=log, event="mirror_fill_waiting", delay=0.2, max_delay=5.0)
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            for s in scopes:
                await store.upsert_scope(conn, s)
            moved = rules.moved_pools(await store.pool_scopes(conn), pools)
            networks = await store.pool_networks(conn, moved)
            for p in pools:
                await store.upsert_pool(conn, p)
            if moved:
                await announce_rescoped(conn, networks)
                await self.d.specs.publish_for_pools(conn, moved)
        self.d.mirror_waits.applied()
        log.info("mirror_filled", scopes=len(scopes), pools=len(pools), moved=len(moved))


async def announce_rescoped(conn: asyncpg.Connection, before: dict[UUID, t.Network]) -> int:
    """``network.updated`` (and a revision bump) for each network whose derived scope changed."""
    if not before:
        return 0
    after = await store.network_views(conn, list(before))
    changed = rules.rescoped(before, after)
    if not changed:
        return 0
    bumped = await store.bump_networks(conn, changed)
    for b in bumped:
        fresh = {"revision_number": b["revision_number"], "updated_at": b["updated_at"]}
        await emit(conn, "network", "updated", after[b["id"]].model_copy(update=fresh), before[b["id"]])
    return len(bumped)
