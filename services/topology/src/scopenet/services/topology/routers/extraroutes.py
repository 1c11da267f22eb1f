"""A router's extra routes (Neutron's ``extraroute`` and ``extraroute-atomic``).

``routes`` in a router update replaces the whole set; ``add_extraroutes`` / ``remove_extraroutes``
merge into it or take out of it. Either way the new set is computed and checked while the router
row is locked (``SELECT … FOR UPDATE``), in the transaction that writes it, bumps the revision,
queues ``router.updated`` and the new RouterSpec: two clients adding routes at once are serialised
by the lock and both keep theirs, and removing an interface (which takes the same lock) cannot slip
between a route's check and its write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence

import asyncpg

from scopenet.contracts import topology as t
from scopenet.services.topology import validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.routers import gateways, rules, store
from scopenet.store.db import db_errors

Merge = Callable[[Sequence[Mapping[str, str]], Sequence[Mapping[str, str]]], list[dict[str, str]]]


def normalised(routes: Sequence[t.HostRoute]) -> list[dict[str, str]]:
    """Syntax first (Neutron's ``type:hostroutes``): CIDR destinations, IP next hops of the same
    family, no duplicate in one request."""
    return validate.host_routes(routes, 0, field="routes", limit=validate.MAX_REQUEST_ROUTES, strict=True)


async def checked(
    conn: asyncpg.Connection, router_id: uuid.UUID, routes: list[dict[str, str]], *, limit: int
) -> list[dict[str, str]]:
    """The router's next set of routes, when it may have it: not too many, every next hop reachable
    (the router is locked by the caller)."""
    rules.check_route_count(router_id, routes, limit)
    own = await store.router_addresses(conn, router_id)
    rules.check_nexthops(routes, [str(a["cidr"]) for a in own], [str(a["ip_address"]) for a in own])
    return routes


class ExtraRoutes:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def add_extraroutes(self, cmd: t.RouterExtraRoutes) -> t.RouterReply:
        return await self._edit(cmd, rules.add_routes)

    async def remove_extraroutes(self, cmd: t.RouterExtraRoutes) -> t.RouterReply:
        return await self._edit(cmd, rules.remove_routes)

    async def _edit(self, cmd: t.RouterExtraRoutes, merge: Merge) -> t.RouterReply:
        ctx = cmd.context
        async with db_errors(), self.d.db.acquire() as conn, conn.transaction():
            # The router first: a caller who cannot see it learns nothing else (404, not a 400).
            rules.check_router(ctx, await store.lock(conn, cmd.id), cmd.id, "update")
            given = normalised(cmd.routes)
            before = await store.one_router(conn, cmd.id)
            assert before is not None
            current = [r.model_dump() for r in before.routes]
            routes = await checked(conn, cmd.id, merge(current, given), limit=self.d.settings.max_routes)
            if routes == current:
                return t.RouterReply(router=before)  # nothing to add or remove: no new revision, no new spec
            await gateways.apply(self.d, conn, cmd.id, rules.Changes(routes=routes), before)
            after = await store.one_router(conn, cmd.id)
        assert after is not None
        return t.RouterReply(router=after)
