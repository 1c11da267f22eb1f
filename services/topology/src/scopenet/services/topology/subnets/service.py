"""Subnet commands: a saga across topology and IPAM.

Create (group-committed by ``subnets.create``): insert the row ``allocating`` (commit) → IPAM
``subnet.allocate`` (idempotent on the subnet id; IPAM applies rules 39-49) → complete the row with
what IPAM chose (commit, with the event and the RouterSpecs of routers on the network).
Update: one transaction; IPAM's ``subnet.update`` (gateway, pools) runs inside it, under the
subnet's row lock, so a router interface cannot take the old gateway meanwhile.
Delete: mark ``deleting`` (commit) → release the auto-address/DHCP addresses and the prefix in
IPAM → delete the row. A crash between steps leaves a row the reconciler finishes (``deleting``)
or rolls back (``allocating``); an IPAM allocation without a row is released by its orphan sweep.
"""

from __future__ import annotations

import builtins
import uuid

import asyncpg
import structlog

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, QueryCommand
from scopenet.contracts.endpoint import Rendered
from scopenet.contracts.errors import Conflict, DomainError
from scopenet.policy.rules import check_revision, not_found, owner_for_create, require_owner
from scopenet.services.topology import sqllist, validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import NOBODY, emit
from scopenet.services.topology.networks.store import bump_network, network_owner
from scopenet.services.topology.ports import saga as port_saga
from scopenet.services.topology.ports.store import deleting_ports
from scopenet.services.topology.subnets import rules, store
from scopenet.services.topology.subnets.create import SubnetCreates
from scopenet.services.topology.subnets.rules import NewSubnet
from scopenet.store.db import db_errors

log = structlog.get_logger("topology.subnets")


class Subnets:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db
        self.creates = SubnetCreates(deps)

    # ------------------------------------------------------------ reads

    async def get(self, cmd: ByIdCommand) -> t.SubnetReply:
        async with db_errors(), self.db.acquire() as conn:
            row = await store.subnet(conn, cmd.id, project=cmd.context.project_id, admin=cmd.context.is_admin)
        if row is None:
            raise not_found("subnet", cmd.id)
        return t.SubnetReply(subnet=store.subnet_view(row))

    async def list(self, cmd: QueryCommand) -> Rendered[t.SubnetList]:
        """One page in one query, its JSON built by Postgres (``sqllist``)."""
        async with db_errors(), self.db.acquire() as conn:
            found = await sqllist.page(conn, store.TABLE, cmd)
        return Rendered(found.reply("subnets"))

    # ------------------------------------------------------------ create

    async def create(self, cmd: t.SubnetCreate) -> t.SubnetReply:
        body, ctx = cmd.subnet, cmd.context
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        new = NewSubnet.validated(id_=uuid.uuid4(), ctx=ctx, body=body, owner=owner)
        steps = self.creates
        self.d.inflight.add(new.id)  # the reconciler leaves the row alone while its saga runs here
        try:
            await steps.insert.submit(new)
            try:
                alloc: im.Subnet = await steps.allocate.submit(new)
            except DomainError:  # IPAM refused: nothing was allocated
                await self.abandon(new.id, allocated=False)
                raise
            except BaseException:  # no answer: an allocation may exist, release it (idempotent)
                await self.abandon(new.id, allocated=True)
                raise
            try:
                view: t.Subnet = await steps.complete.submit((new, alloc))
            except BaseException:
                await self.abandon(new.id, allocated=True)
                raise
        finally:
            self.d.inflight.discard(new.id)
        return t.SubnetReply(subnet=view)

    async def abandon(self, subnet_id: uuid.UUID, *, allocated: bool) -> None:
        """Compensate a failed create (or the reconciler's rollback of a dead one). The row is claimed
        first (``allocating`` → ``deleting``), so a create that completes meanwhile keeps its
        allocation; what cannot be undone now is left to the reconciler."""
        try:
            async with self.db.acquire() as conn:
                claimed = await store.claim_allocating(conn, subnet_id)
            if not claimed:
                return
            if allocated:
                await self.d.ipam.release_subnet(subnet_id)
            async with self.db.acquire() as conn:
                await store.delete_if_deleting(conn, subnet_id)
        except Exception as exc:
            log.warning("subnet_rollback_deferred", subnet_id=str(subnet_id), error=str(exc) or type(exc).__name__)

    # ------------------------------------------------------------ update

    async def update(self, cmd: t.SubnetUpdate) -> t.SubnetReply:
        body, ctx = cmd.subnet, cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.subnet(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("subnet", cmd.id)
            await self._require_network_owner(conn, ctx, row, "update")
            check_revision(cmd.if_revision, row["revision_number"])
            before = store.subnet_view(row)
            version = row["ip_version"]
            dns = rules.dns_nameservers(body.dns_nameservers, version) if body.dns_nameservers is not None else None
            routes = validate.host_routes(body.host_routes, version) if body.host_routes is not None else None
            gateway_changes = rules.gateway_changes(body, before.gateway_ip)
            if gateway_changes and before.gateway_ip is not None:
                holder = await store.gateway_holder(conn, cmd.id, before.gateway_ip)
                if holder is not None:
                    raise rules.gateway_in_use(before.gateway_ip, holder)
            gw, pools = before.gateway_ip, before.allocation_pools
            if gateway_changes or body.allocation_pools is not None:
                # Under the subnet's row lock: a router interface cannot take the old gateway meanwhile.
                alloc = await self.d.ipam.update_subnet(
                    ctx, cmd.id, gateway=(gateway_changes, body.gateway_ip), pools=body.allocation_pools
                )
                gw, pools = alloc.gateway_ip, alloc.allocation_pools
            await store.update_subnet(conn, cmd.id, body, gateway=gw, pools=pools, dns=dns, routes=routes)
            await bump_network(conn, row["network_id"])
            after = store.subnet_view(await store.subnet(conn, cmd.id, project=NOBODY, admin=True))
            await emit(conn, "topology_subnet", "updated", after, before)
            if after.gateway_ip != before.gateway_ip:
                await self.d.specs.publish_for_networks(conn, [row["network_id"]])
        return t.SubnetReply(subnet=after)

    @staticmethod
    async def _require_network_owner(
        conn: asyncpg.Connection, ctx: CallContext, row: asyncpg.Record, action: str
    ) -> None:
        if ctx.is_admin or row["project_id"] == ctx.project_id:
            return
        require_owner(ctx, await network_owner(conn, row["network_id"]) or "", action, "subnet")

    # ------------------------------------------------------------ delete

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.subnet(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("subnet", cmd.id)
            await self._require_network_owner(conn, ctx, row, "delete")
            check_revision(cmd.if_revision, row["revision_number"])
        await self.remove(cmd.id, ctx)
        return Deleted(id=cmd.id)

    async def remove(self, subnet_id: uuid.UUID, ctx: CallContext) -> None:
        """Delete a subnet (its owner's or the network delete's decision is already made)."""
        self.d.inflight.add(subnet_id)
        try:
            async with db_errors(), self.db.acquire() as conn, conn.transaction():
                row = await store.lock_any(conn, subnet_id)
                if row is None or row["state"] == "allocating":
                    return
                blocking, _ = await self._holders(conn, row)
                if blocking:
                    raise rules.in_use(row["id"], len(blocking))
                await store.mark_deleting(conn, subnet_id)
            await self.finish_delete(subnet_id, ctx)
        finally:
            self.d.inflight.discard(subnet_id)

    @staticmethod
    async def _holders(
        conn: asyncpg.Connection, row: asyncpg.Record
    ) -> tuple[builtins.list[uuid.UUID], builtins.list[uuid.UUID]]:
        return rules.holders(await store.port_users(conn, row["id"]), auto=rules.auto_address(row))

    async def _revert(self, subnet_id: uuid.UUID) -> Conflict:
        async with db_errors(), self.db.acquire() as conn:
            await store.revert_deleting(conn, subnet_id)
        return rules.in_use(subnet_id)

    async def finish_delete(self, subnet_id: uuid.UUID, ctx: CallContext | None = None) -> None:
        """Release in IPAM, then drop the row. Repeatable: the reconciler calls it for stuck rows.

        A port may have got an address on the subnet after the in-use check (its create was in
        flight): then the subnet stays. Addresses that go with the subnet leave topology first and
        IPAM second, so the two never disagree about a port that stays."""
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.lock_deleting(conn, subnet_id)
            if row is None:
                return
            blocking, going = await self._holders(conn, row)
            if not blocking:
                await store.drop_port_ips(conn, subnet_id, going)
        if row["cidr"] is not None and blocking:
            raise await self._revert(subnet_id)
        for port_id in going:
            await self.d.ipam.release_ips(port_id, subnet_id=subnet_id)
        # Ports whose delete topology acknowledged while IPAM was away still hold their addresses
        # there until the reconciler finishes them; finish them now, or IPAM would refuse the
        # release for ports nobody can see any more.
        async with db_errors(), self.db.acquire() as conn:
            pending = await deleting_ports(conn, row["network_id"])
        for port_id in pending:
            await port_saga.finish_delete(self.d, port_id)
        try:
            await self.d.ipam.release_subnet(subnet_id, ctx)
        except Conflict:
            # An address was taken meanwhile (a port created while we checked): the subnet stays.
            raise await self._revert(subnet_id) from None
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.lock_deleting(conn, subnet_id)
            if row is None:
                return
            if row["cidr"] is None:  # a create rolled back: it never existed for anyone
                await store.delete_subnet(conn, subnet_id)
                return
            # IPAM held no address on it any more, so no port keeps one here either.
            await store.drop_port_ips(conn, subnet_id)
            await store.delete_subnet(conn, subnet_id)
            await bump_network(conn, row["network_id"])
            await emit(conn, "topology_subnet", "deleted", store.subnet_view(row))
            await self.d.specs.publish_for_networks(conn, [row["network_id"]])
