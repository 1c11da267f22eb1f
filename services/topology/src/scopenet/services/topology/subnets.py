"""Subnet commands (SPEC §1.4, §2.H-2.I): a saga across topology and IPAM.

Create (group-committed by ``subnetcreate``): insert the row ``allocating`` (commit) → IPAM
``subnet.allocate`` (idempotent on the subnet id; IPAM applies rules 39-49) → complete the row with
what IPAM chose (commit, with the event and the RouterSpecs of routers on the network).
Delete: mark ``deleting`` (commit) → release the auto-address/DHCP addresses and the prefix in
IPAM → delete the row. A crash between steps leaves a row the reconciler finishes (``deleting``)
or rolls back (``allocating``); an IPAM allocation without a row is released by its orphan sweep.
"""

from __future__ import annotations

import builtins
import json
import uuid

import asyncpg
import structlog
from netaddr import IPAddress

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, ListCommand
from scopenet.contracts.errors import Conflict, DomainError
from scopenet.policy.rules import check_revision, not_found, owner_for_create, require_owner
from scopenet.services.topology import portsaga, store, validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import NOBODY, emit
from scopenet.services.topology.listing import apply_filters
from scopenet.services.topology.subnetcreate import NewSubnet, SubnetCreates
from scopenet.store.db import db_errors

log = structlog.get_logger("topology.subnets")


def _pools_json(pools: list[im.AllocationPool]) -> str:
    return json.dumps([p.model_dump() for p in pools])


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

    async def list(self, cmd: ListCommand) -> t.SubnetList:
        async with db_errors(), self.db.acquire() as conn:
            rows = await store.subnets(conn, project=cmd.context.project_id, admin=cmd.context.is_admin)
        return t.SubnetList(subnets=apply_filters([store.subnet_view(r) for r in rows], cmd.filters, t.Subnet))

    # ------------------------------------------------------------ create

    async def create(self, cmd: t.SubnetCreate) -> t.SubnetReply:
        body, ctx = cmd.subnet, cmd.context
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        validate.ipv6_modes(body.ip_version, body.ipv6_ra_mode, body.ipv6_address_mode)
        new = NewSubnet(
            id=uuid.uuid4(),
            ctx=ctx,
            body=body,
            owner=owner,
            dns=validate.dns_nameservers(body.dns_nameservers, body.ip_version),
            routes=validate.host_routes(body.host_routes, body.ip_version),
        )
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
                claimed = await conn.fetchval(
                    "UPDATE subnets SET state = 'deleting', state_at = now() WHERE id = $1 AND state = 'allocating' "
                    "RETURNING true",
                    subnet_id,
                )
            if not claimed:
                return
            if allocated:
                await self.d.ipam.release_subnet(subnet_id)
            async with self.db.acquire() as conn:
                await conn.execute("DELETE FROM subnets WHERE id = $1 AND state = 'deleting'", subnet_id)
        except Exception as exc:
            log.warning("subnet_rollback_deferred", subnet_id=str(subnet_id), error=str(exc) or type(exc).__name__)

    # ------------------------------------------------------------ update

    async def update(self, cmd: t.SubnetUpdate) -> t.SubnetReply:
        body, ctx = cmd.subnet, cmd.context
        given = body.model_fields_set
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.subnet(conn, cmd.id, project=ctx.project_id, admin=ctx.is_admin, lock=True)
            if row is None:
                raise not_found("subnet", cmd.id)
            await self._require_network_owner(conn, ctx, row, "update")
            check_revision(cmd.if_revision, row["revision_number"])
            before = store.subnet_view(row)
            version = row["ip_version"]
            dns = validate.dns_nameservers(body.dns_nameservers, version) if body.dns_nameservers is not None else None
            routes = validate.host_routes(body.host_routes, version) if body.host_routes is not None else None
            gateway_given = "gateway_ip" in given
            if gateway_given and body.gateway_ip is not None:
                validate.ip(body.gateway_ip, "gateway_ip")
            gateway_changes = gateway_given and _norm_ip(body.gateway_ip) != before.gateway_ip
            if gateway_changes and before.gateway_ip is not None:
                await self._check_gateway_free(conn, cmd.id, before.gateway_ip)
            gw, pools = before.gateway_ip, before.allocation_pools
            if gateway_changes or body.allocation_pools is not None:
                # Under the subnet's row lock: a router interface cannot take the old gateway meanwhile.
                alloc = await self.d.ipam.update_subnet(
                    ctx, cmd.id, gateway=(gateway_changes, body.gateway_ip), pools=body.allocation_pools
                )
                gw, pools = alloc.gateway_ip, alloc.allocation_pools
            await conn.execute(
                """UPDATE subnets SET name = coalesce($2, name), description = coalesce($3, description),
                       gateway_ip = $4::inet, allocation_pools = $5::text::jsonb,
                       enable_dhcp = coalesce($6, enable_dhcp), dns_nameservers = coalesce($7, dns_nameservers),
                       host_routes = coalesce($8::text::jsonb, host_routes),
                       service_types = coalesce($9, service_types), tags = coalesce($10, tags),
                       revision_number = revision_number + 1, updated_at = now()
                   WHERE id = $1""",
                cmd.id,
                body.name,
                body.description,
                gw,
                _pools_json(pools),
                body.enable_dhcp,
                dns,
                json.dumps(routes) if routes is not None else None,
                list(body.service_types) if body.service_types is not None else None,
                list(body.tags) if body.tags is not None else None,
            )
            await store.bump_network(conn, row["network_id"])
            after = store.subnet_view(await store.subnet(conn, cmd.id, project=NOBODY, admin=True))
            await emit(conn, "topology_subnet", "updated", after, before)
            if after.gateway_ip != before.gateway_ip:
                await self.d.specs.publish_for_networks(conn, [row["network_id"]])
        return t.SubnetReply(subnet=after)

    async def _require_network_owner(
        self, conn: asyncpg.Connection, ctx: CallContext, row: asyncpg.Record, action: str
    ) -> None:
        if ctx.is_admin or row["project_id"] == ctx.project_id:
            return
        owner = await conn.fetchval("SELECT project_id FROM networks WHERE id = $1", row["network_id"])
        require_owner(ctx, owner, action, "subnet")

    @staticmethod
    async def _check_gateway_free(conn: asyncpg.Connection, subnet_id: uuid.UUID, gateway: str) -> None:
        holder = await conn.fetchval(
            """SELECT i.port_id FROM port_ips i JOIN ports p ON p.id = i.port_id
               WHERE i.subnet_id = $1 AND i.ip_address = $2::inet AND p.device_owner = ANY($3::text[])""",
            subnet_id,
            gateway,
            list(t.ROUTER_DEVICE_OWNERS),
        )
        if holder is not None:
            raise Conflict(
                f"Gateway ip {gateway} conflicts with allocation pool or is in use by router port {holder}",
                type="GatewayIpInUse",
                field="gateway_ip",
            )

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
                row = await conn.fetchrow("SELECT * FROM subnets WHERE id = $1 FOR UPDATE", subnet_id)
                if row is None or row["state"] == "allocating":
                    return
                await self._check_unused(conn, row)
                await conn.execute("UPDATE subnets SET state = 'deleting', state_at = now() WHERE id = $1", subnet_id)
            await self.finish_delete(subnet_id)
        finally:
            self.d.inflight.discard(subnet_id)

    @staticmethod
    async def _holders(
        conn: asyncpg.Connection, row: asyncpg.Record
    ) -> tuple[builtins.list[uuid.UUID], builtins.list[uuid.UUID]]:
        """(ports that keep the subnet in use, ports whose addresses on it just go with it).

        Rule 53: router interfaces, gateways, floating IPs and user ports block; DHCP ports and the
        automatic (SLAAC/DHCPv6-stateless) addresses of user ports do not."""
        auto = row["ipv6_address_mode"] in validate.AUTO_ADDRESS_MODES
        users = await conn.fetch(
            """SELECT DISTINCT p.id, p.device_owner FROM port_ips i JOIN ports p ON p.id = i.port_id
               WHERE i.subnet_id = $1""",
            row["id"],
        )
        blocking, going = [], []
        for u in users:
            service = u["device_owner"].startswith("network:")
            if (service and u["device_owner"] != t.DEVICE_OWNER_DHCP) or (not service and not auto):
                blocking.append(u["id"])
            else:
                going.append(u["id"])
        return blocking, going

    @staticmethod
    def _in_use(subnet_id: uuid.UUID, count: int | None = None) -> Conflict:
        held = f" ({count} port(s))" if count else ""
        return Conflict(
            f"Unable to complete operation on subnet {subnet_id}: One or more ports have an IP allocation "
            f"from this subnet{held}.",
            type="SubnetInUse",
        )

    async def _check_unused(self, conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        blocking, _ = await self._holders(conn, row)
        if blocking:
            raise self._in_use(row["id"], len(blocking))

    async def _revert(self, subnet_id: uuid.UUID) -> Conflict:
        async with db_errors(), self.db.acquire() as conn:
            await conn.execute(
                "UPDATE subnets SET state = 'active', state_at = now() WHERE id = $1 AND state = 'deleting'",
                subnet_id,
            )
        return self._in_use(subnet_id)

    async def finish_delete(self, subnet_id: uuid.UUID) -> None:
        """Release in IPAM, then drop the row. Repeatable: the reconciler calls it for stuck rows.

        A port may have got an address on the subnet after the in-use check (its create was in
        flight): then the subnet stays. Addresses that go with the subnet leave topology first and
        IPAM second, so the two never disagree about a port that stays."""
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM subnets WHERE id = $1 AND state = 'deleting' FOR UPDATE", subnet_id
            )
            if row is None:
                return
            blocking, going = await self._holders(conn, row)
            if not blocking:
                await conn.execute(
                    "DELETE FROM port_ips WHERE subnet_id = $1 AND port_id = ANY($2::uuid[])", subnet_id, going
                )
        if row["cidr"] is not None and blocking:
            raise await self._revert(subnet_id)
        for port_id in going:
            await self.d.ipam.release_ips(port_id, subnet_id=subnet_id)
        # Ports whose delete topology acknowledged while IPAM was away still hold their addresses
        # there until the reconciler finishes them; finish them now, or IPAM would refuse the
        # release for ports nobody can see any more.
        async with db_errors(), self.db.acquire() as conn:
            pending = await conn.fetch(
                "SELECT id FROM ports WHERE network_id = $1 AND state = 'deleting'", row["network_id"]
            )
        for p in pending:
            await portsaga.finish_delete(self.d, p["id"])
        try:
            await self.d.ipam.release_subnet(subnet_id)
        except Conflict:
            # An address was taken meanwhile (a port created while we checked): the subnet stays.
            raise await self._revert(subnet_id) from None
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM subnets WHERE id = $1 AND state = 'deleting' FOR UPDATE", subnet_id
            )
            if row is None:
                return
            if row["cidr"] is None:  # a create rolled back: it never existed for anyone
                await conn.execute("DELETE FROM subnets WHERE id = $1", subnet_id)
                return
            # IPAM held no address on it any more, so no port keeps one here either.
            await conn.execute("DELETE FROM port_ips WHERE subnet_id = $1", subnet_id)
            await conn.execute("DELETE FROM subnets WHERE id = $1", subnet_id)
            await store.bump_network(conn, row["network_id"])
            await emit(conn, "topology_subnet", "deleted", store.subnet_view(row))
            await self.d.specs.publish_for_networks(conn, [row["network_id"]])


def _norm_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(IPAddress(value))
    except Exception:
        return value
