"""``subnetpool.onboard_network_subnets`` (docs/neutron.md#onboarding-subnets): a network's subnets join
a pool and its address scope, and everything derived from their scope follows.

The command runs in one topology transaction holding the network's row lock (which also holds back
any new subnet on the network: its insert's foreign key check waits for the lock). Inside it, IPAM's
``subnetpool.onboard_network_subnets`` decides and commits all or nothing; its answer is applied
here: the subnets' ``subnetpool_id``, the pool and scope in the mirror, the network's revision (and
``network.updated`` when its derived ``ipv4_address_scope``/``ipv6_address_scope`` changed), and the
RouterSpecs of every router with a port on the network (whose hooks republish the BGP speakers).

Should topology fail after IPAM committed (a crash, Postgres gone), IPAM's ``subnet.updated`` events,
written in IPAM's transaction, reach ``on_subnet_event`` through a durable consumer and apply the same
change: a subnet's pool only ever goes from none to one, so an event can be applied in any order and
any number of times. Repeating the command is also safe: IPAM answers the same, changing nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
import structlog

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.contracts.errors import Conflict, NotAuthorized
from scopenet.policy.rules import not_found
from scopenet.services.topology.consumers import consumed
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import NOBODY, emit
from scopenet.services.topology.networks import store as netstore
from scopenet.services.topology.scopes import rules as scope_rules
from scopenet.services.topology.scopes import store as mirror
from scopenet.services.topology.subnets import store
from scopenet.store.db import db_errors

log = structlog.get_logger("topology.onboard")


class Onboarding:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db

    async def onboard_network_subnets(self, cmd: t.OnboardNetworkSubnets) -> t.OnboardedSubnets:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            rows = await netstore.networks(
                conn, project=ctx.project_id, admin=ctx.is_admin, where="n.id = $3", args=(cmd.network_id,)
            )
            if not rows:
                raise not_found("network", cmd.network_id, field="network_id")
            # Neutron: a member may onboard only their own network's subnets (which may be another
            # project's, on a shared network they could otherwise re-scope under its owner's routers).
            if not ctx.is_admin and rows[0]["project_id"] != ctx.project_id:
                raise NotAuthorized("rule:onboard_network_subnets is disallowed by policy")
            await conn.execute("SELECT 1 FROM networks WHERE id = $1 FOR UPDATE", cmd.network_id)
            busy = await conn.fetchval(
                "SELECT count(*) FROM subnets WHERE network_id = $1 AND state <> 'active'", cmd.network_id
            )
            if busy:
                raise Conflict(
                    f"Network {cmd.network_id} has {busy} subnet(s) being created or deleted; "
                    "onboard its subnets once they are done",
                    type="NetworkInUse",
                    field="network_id",
                )
            reply = await self.d.ipam.onboard(ctx, cmd.id, cmd.network_id)
            await self._learn_scope(conn, reply.subnetpool.address_scope_id)
            pool = reply.subnetpool
            # Not ``upsert_pool``: that waits on the pool's mirror row, which the pool consumer may
            # hold while it waits on this network (a re-scope): learning never waits on a row.
            await mirror.learn_pool(conn, pool.id, pool.ip_version, pool.address_scope_id)
            changed = await apply_onboarded(self.d, conn, reply.subnets)
        if changed:
            self.d.mirror_waits.applied()
            log.info("subnets_onboarded", subnetpool_id=str(cmd.id), network_id=str(cmd.network_id), subnets=changed)
        return t.OnboardedSubnets(subnets=[t.OnboardedSubnet(id=s.id, cidr=s.cidr) for s in reply.subnets])

    async def on_subnet_event(self, event: im.SubnetEvent) -> None:
        """IPAM's ``subnet.updated``: the repair path of an onboarding topology did not finish."""
        subnet = event.resource
        if subnet.subnetpool_id is None:
            return
        await self._learn_scope_apart(subnet.address_scope_id)
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            if await consumed(conn, event.id):
                return
            await mirror.learn_pool(conn, subnet.subnetpool_id, subnet.ip_version, subnet.address_scope_id)
            changed = await apply_onboarded(self.d, conn, [subnet])
        if changed:
            log.info("subnet_onboarding_repaired", subnet_id=str(subnet.id), subnetpool_id=str(subnet.subnetpool_id))

    async def _learn_scope_apart(self, scope_id: UUID | None) -> None:
        async with db_errors(), self.db.acquire() as conn:
            await self._learn_scope(conn, scope_id)

    async def _learn_scope(self, conn: asyncpg.Connection, scope_id: UUID | None) -> None:
        """RouterSpecs need the scope's mark: mirror a scope whose event has not arrived yet."""
        if scope_id is not None and not await mirror.known_scope(conn, scope_id):
            await mirror.upsert_scope(conn, await self.d.ipam.scope(scope_id))


async def apply_onboarded(deps: Deps, conn: asyncpg.Connection, subnets: Sequence[im.Subnet]) -> list[str]:
    """Give topology's subnets the pool IPAM put them in; returns the ids changed (none: already done).

    Only a subnet without a pool takes one (an onboarded subnet never changes pool again), so a stale
    or repeated answer changes nothing."""
    pooled = [s for s in subnets if s.subnetpool_id is not None]
    if not pooled:
        return []
    # Networks before subnets, the command's order (it holds the network from the start).
    await conn.execute(
        "SELECT 1 FROM networks WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        sorted({s.network_id for s in pooled}),
    )
    before_subnets = {
        r["id"]: store.subnet_view(r)
        for r in await conn.fetch(
            "SELECT * FROM subnets WHERE id = ANY($1::uuid[]) AND state = 'active' AND subnetpool_id IS NULL "
            "ORDER BY id FOR UPDATE",
            [s.id for s in pooled],
        )
    }
    if not before_subnets:
        return []
    nets = sorted({b.network_id for b in before_subnets.values()})
    before = await mirror.network_views(conn, nets)
    await conn.executemany(
        "UPDATE subnets SET subnetpool_id = $2, revision_number = revision_number + 1, updated_at = now() "
        "WHERE id = $1",
        [(s.id, s.subnetpool_id) for s in pooled if s.id in before_subnets],
    )
    for sid, old in before_subnets.items():
        new = store.subnet_view(await store.subnet(conn, sid, project=NOBODY, admin=True))
        await emit(conn, "topology_subnet", "updated", new, old)
    after = await mirror.network_views(conn, nets)
    rescoped = set(scope_rules.rescoped(before, after))
    for b in await mirror.bump_networks(conn, nets):  # subnet changes bump the network (as Neutron's do)
        if b["id"] in rescoped:
            fresh = {"revision_number": b["revision_number"], "updated_at": b["updated_at"]}
            await emit(conn, "network", "updated", after[b["id"]].model_copy(update=fresh), before[b["id"]])
    await deps.specs.publish_for_networks(conn, nets)
    return [str(i) for i in before_subnets]
