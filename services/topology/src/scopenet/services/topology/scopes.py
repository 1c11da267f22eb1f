"""Topology's mirror of IPAM's pools and scopes, so reads and RouterSpecs never call IPAM.

Fed by IPAM's events (``subnetpool.*`` and ``address_scope.*`` through two durable consumers) and
filled from IPAM's list commands at start: the consumers are bound first (deliver "new"), then the
lists are read, then the consumers run, so nothing falls between the fill and the stream. Pool rows
carry IPAM's revision and an older event never overwrites a newer state.

A pool moving to another scope (``openstack subnet pool set --address-scope``) changes the scope of
every network with a subnet from it: in the same transaction that records the move, the routers
with a port on such a network are republished (SPEC §5.5), and each network whose derived
``ipv4_address_scope``/``ipv6_address_scope`` changed gets a new revision and a ``network.updated``
event (its representation changed, even though nobody updated it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from uuid import UUID

import asyncpg
import structlog
from prometheus_client import Histogram

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.services.topology import store
from scopenet.services.topology.consumers import consumed
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import NOBODY, emit
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

    async def _know_scope(self, scope_id: object) -> None:
        if scope_id is None:
            return
        async with db_errors(), self.db.acquire() as conn:
            if await store.known_scope(conn, scope_id):  # type: ignore[arg-type]
                return
        scope = await self.d.ipam.scope(scope_id)  # type: ignore[arg-type]
        async with db_errors(), self.db.acquire() as conn:
            await store.upsert_scope(conn, scope)

    async def on_pool(self, event: im.SubnetPoolEvent) -> None:
        pool = event.resource
        if event.type.endswith(".deleted"):
            async with db_errors(), self.db.acquire() as conn, conn.transaction():
                if not await consumed(conn, event.id):
                    await conn.execute("DELETE FROM subnetpools WHERE id = $1", pool.id)
            return
        await self._know_scope(pool.address_scope_id)
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            if await consumed(conn, event.id):
                return
            mirrored = await conn.fetchval("SELECT address_scope_id FROM subnetpools WHERE id = $1 FOR UPDATE", pool.id)
            may_move = mirrored != pool.address_scope_id or (
                event.previous is not None and event.previous.address_scope_id != pool.address_scope_id
            )
            networks = await pool_networks(conn, [pool.id]) if may_move else {}
            before = await store.upsert_pool(conn, pool)
            was = before["address_scope_id"] if before is not None else None
            moved = (before is None or before["revision_number"] <= pool.revision_number) and (
                was != pool.address_scope_id
                or (event.previous is not None and event.previous.address_scope_id != pool.address_scope_id)
            )
            if moved:
                await announce_rescoped(conn, networks)
                specs = await self.d.specs.publish_for_pools(conn, [pool.id])
                SPEC_LAG.observe(max(0.0, time.time() - event.occurred_at.timestamp()))
                log.info(
                    "pool_rescoped", subnetpool_id=str(pool.id), scope=str(pool.address_scope_id), routers=len(specs)
                )

    async def on_scope(self, event: im.AddressScopeEvent) -> None:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            if await consumed(conn, event.id):
                return
            if event.type.endswith(".deleted"):
                await conn.execute("DELETE FROM address_scopes WHERE id = $1", event.resource.id)
                self.d.subnets.creates.forget_scope(event.resource.id)
            else:
                await store.upsert_scope(conn, event.resource)

    async def fill(self) -> None:
        """Copy IPAM's scopes and pools (retrying until IPAM answers); republish moved pools."""
        delay = 0.2
        while True:
            try:
                scopes = await self.d.ipam.scopes()
                pools = await self.d.ipam.pools()
                break
            except Exception as exc:
                log.warning("mirror_fill_waiting", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            for s in scopes:
                await store.upsert_scope(conn, s)
            mirrored = {r["id"]: r["address_scope_id"] for r in await conn.fetch("SELECT * FROM subnetpools")}
            moved = [p.id for p in pools if p.id in mirrored and mirrored[p.id] != p.address_scope_id]
            networks = await pool_networks(conn, moved)
            for p in pools:
                await store.upsert_pool(conn, p)
            if moved:
                await announce_rescoped(conn, networks)
                await self.d.specs.publish_for_pools(conn, moved)
        log.info("mirror_filled", scopes=len(scopes), pools=len(pools), moved=len(moved))


async def pool_networks(conn: asyncpg.Connection, pool_ids: Iterable[UUID]) -> dict[UUID, t.Network]:
    """The views of every network holding a subnet of these pools (read before a pool moves)."""
    ids = list(pool_ids)
    if not ids:
        return {}
    rows = await store.networks(
        conn,
        project=NOBODY,
        admin=True,
        where="n.id IN (SELECT s.network_id FROM subnets s WHERE s.subnetpool_id = ANY($3::uuid[]))",
        args=(ids,),
    )
    return {r["id"]: store.network_view(r) for r in rows}


async def announce_rescoped(conn: asyncpg.Connection, before: dict[UUID, t.Network]) -> int:
    """``network.updated`` (and a revision bump) for each network whose derived scope changed."""
    if not before:
        return 0
    rows = await store.networks(conn, project=NOBODY, admin=True, where="n.id = ANY($3::uuid[])", args=(list(before),))
    after = {r["id"]: store.network_view(r) for r in rows}
    changed = [
        i
        for i, view in after.items()
        if (view.ipv4_address_scope, view.ipv6_address_scope)
        != (before[i].ipv4_address_scope, before[i].ipv6_address_scope)
    ]
    if not changed:
        return 0
    bumped = await conn.fetch(
        "UPDATE networks SET revision_number = revision_number + 1, updated_at = now() WHERE id = ANY($1::uuid[]) "
        "RETURNING id, revision_number, updated_at",
        changed,
    )
    for b in bumped:
        fresh = {"revision_number": b["revision_number"], "updated_at": b["updated_at"]}
        await emit(conn, "network", "updated", after[b["id"]].model_copy(update=fresh), before[b["id"]])
    return len(bumped)
