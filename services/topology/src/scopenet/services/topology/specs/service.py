"""Load what feeds RouterSpecs and queue them in the outbox, inside the caller's transaction.

Every change that can alter a spec calls one of the ``publish_*`` methods before it commits. The
router rows are locked first (in id order, so two publishers cannot deadlock), and the spec
revision is bumped under that lock; everything is read after the lock is held, so the spec with
the higher revision always includes every change committed before it. Only scheduled routers are
published (an unscheduled one has no agent subject yet; scheduling publishes it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from uuid import UUID

import asyncpg
import structlog

from scopenet.contracts import routerspec as rs
from scopenet.services.topology.events import emit_spec, emit_specs
from scopenet.services.topology.specs import rules, store

log = structlog.get_logger("topology.specs")


async def build_specs(conn: asyncpg.Connection, routers: list[rules.RouterRow]) -> list[rs.RouterSpec]:
    """The specs of these routers as the database stands (a router whose scope the mirror does not
    know yet is left out: the scope's event republishes it)."""
    ids = [r.id for r in routers]
    interfaces = await store.interfaces(conn, ids)
    gateways = await store.gateways(conn, ids)
    fips = await store.floating_ips(conn, ids)
    pfs = await store.port_forwardings(conn, ids)
    world = await store.load_world(
        conn, rules.networks_of(interfaces=interfaces, gateways=gateways, floating_ips=fips, port_forwardings=pfs)
    )
    specs, unbuildable = rules.build_all(
        routers, interfaces=interfaces, gateways=gateways, floating_ips=fips, world=world, port_forwardings=pfs
    )
    for router_id, error in unbuildable:
        log.error("router_spec_unbuildable", router_id=str(router_id), error=error)
    return specs


RoutersChanged = Callable[[asyncpg.Connection, list[UUID]], Awaitable[None]]


class Specs:
    def __init__(self) -> None:
        self.hooks: list[RoutersChanged] = []
        """Called with the routers whose specs changed, in the same transaction (BGP speakers)."""

    async def publish_for_routers(self, conn: asyncpg.Connection, router_ids: Iterable[UUID]) -> list[rs.RouterSpec]:
        ids = sorted(set(router_ids))
        if not ids:
            return []
        specs = await build_specs(conn, await store.next_revisions(conn, ids))
        await emit_specs(conn, specs)
        for hook in self.hooks:
            await hook(conn, ids)
        return specs

    async def publish_for_networks(self, conn: asyncpg.Connection, network_ids: Iterable[UUID]) -> None:
        nets = list(set(network_ids))
        if nets:
            await self.publish_for_routers(conn, await store.port_routers(conn, nets))

    async def publish_for_pools(self, conn: asyncpg.Connection, pool_ids: Iterable[UUID]) -> list[rs.RouterSpec]:
        """A pool changed scope: routers with any port on a network holding a subnet of it."""
        nets = await store.pool_networks(conn, list(pool_ids))
        if not nets:
            return []
        return await self.publish_for_routers(conn, await store.port_routers(conn, nets))

    async def publish_removal(self, conn: asyncpg.Connection, router_id: UUID, agent_id: str, revision: int) -> None:
        await emit_spec(conn, rules.removal(router_id, agent_id=agent_id, revision=revision))

    async def publish_removals(self, conn: asyncpg.Connection, removals: Iterable[tuple[UUID, str, int]]) -> None:
        """``(router, agent, revision)``: each agent drops its router, all in one round trip."""
        await emit_specs(conn, [rules.removal(rid, agent_id=agent, revision=rev) for rid, agent, rev in removals])

    async def current(self, conn: asyncpg.Connection, router_id: UUID) -> rs.RouterSpec | None:
        row = await store.active_router(conn, router_id)
        if row is None:
            return None
        specs = await build_specs(conn, [row])
        return specs[0] if specs else None
