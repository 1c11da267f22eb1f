"""IP allocation for ports inside a subnet (docs/neutron.md#ports-and-ip-allocation), group-committed per subnet.

"Next free" is the lowest free address of the allocation pools (deterministic, where Neutron
picks at random among the first 1000 to dodge its own retry storms). The gateway is reserved
(docs/neutron.md#the-gateway-address-is-reserved). The primary key (subnet, address) is the final
word on double allocation.
``allocate_many`` hands a whole batch of requests (topology's group commit) to the same per-subnet
batches in one message, instead of one NATS round trip and one validation per address.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Hashable
from datetime import datetime

import asyncpg
from netaddr import IPAddress, IPNetwork, IPRange

from scopenet.contracts import ipam as m
from scopenet.contracts.base import PagedListCommand
from scopenet.contracts.errors import BadRequest, DomainError
from scopenet.contracts.filters import id_filter
from scopenet.policy.rules import not_found
from scopenet.services.ipam import store
from scopenet.services.ipam.events import emit_many
from scopenet.services.ipam.outcomes import error_body
from scopenet.services.ipam.rules.addresses import FreeAddresses
from scopenet.store.batching import Batcher, Item
from scopenet.store.db import db_errors


class Ips:
    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db
        self._batcher = Batcher(self._subnet_batch, name="ip-allocate")
        # Keyed by subnet id, valid for one (alloc_version, created_at): a subnet id may be released and
        # allocated again, and the new row starts over at alloc_version 0.
        self._free: dict[uuid.UUID, tuple[tuple[int, datetime], FreeAddresses]] = {}

    async def allocate(self, cmd: m.IpAllocate) -> m.IpAllocationReply:
        if cmd.ip_address is not None:
            try:
                IPAddress(cmd.ip_address)
            except Exception:
                raise BadRequest(
                    f"Invalid input for ip_address. Reason: '{cmd.ip_address}' is not a valid IP address.",
                    field="ip_address",
                ) from None
        result: m.IpAllocationReply = await self._batcher.submit(cmd.subnet_id, cmd)
        return result

    async def allocate_many(self, cmd: m.IpAllocateMany) -> m.IpAllocateManyReply:
        # Every request joins its subnet's queue before any batch runs (tasks start in order and
        # queue synchronously), so one port's requests on one subnet keep their order.
        outcomes = await asyncio.gather(*(self.allocate(r) for r in cmd.requests), return_exceptions=True)
        return m.IpAllocateManyReply(
            results=[
                m.IpAllocateResult(allocation=o.allocation)
                if isinstance(o, m.IpAllocationReply)
                else m.IpAllocateResult(error=error_body(o))
                for o in outcomes
            ]
        )

    async def _subnet_batch(self, key: Hashable, items: list[Item[m.IpAllocate]]) -> None:
        subnet_id = key
        assert isinstance(subnet_id, uuid.UUID)
        results: list[tuple[Item[m.IpAllocate], m.IpAllocationReply | DomainError]] = []
        new: list[m.IpAllocation] = []
        try:
            async with (
                db_errors("The address is already allocated", conflict_type="IpAddressAlreadyAllocated"),
                self.db.acquire() as conn,
                conn.transaction(),
            ):
                row = await store.subnet(conn, subnet_id, lock=True)
                if row is None:
                    for it in items:
                        it.fail(not_found("subnet", subnet_id))
                    return
                held = await conn.fetch(
                    "SELECT port_id, ip_address FROM ip_allocations WHERE subnet_id = $1 AND port_id = ANY($2::uuid[])",
                    subnet_id,
                    [it.request.port_id for it in items],
                )
                mine = {(r["port_id"], str(r["ip_address"])) for r in held}
                free = await self._free_space(conn, row)
                for it in items:
                    cmd = it.request
                    try:
                        ip = self._replay(cmd, mine)
                        if ip is None:
                            ip = str(free.allocate_specific(cmd.ip_address) if cmd.ip_address else free.allocate())
                            mine.add((cmd.port_id, ip))
                            new.append(m.IpAllocation(subnet_id=subnet_id, port_id=cmd.port_id, ip_address=ip))
                        results.append(
                            (
                                it,
                                m.IpAllocationReply(
                                    allocation=m.IpAllocation(subnet_id=subnet_id, port_id=cmd.port_id, ip_address=ip)
                                ),
                            )
                        )
                    except DomainError as exc:
                        results.append((it, exc))
                if new:
                    await conn.executemany(
                        "INSERT INTO ip_allocations (subnet_id, ip_address, port_id) VALUES ($1, $2::inet, $3)",
                        [(a.subnet_id, a.ip_address, a.port_id) for a in new],
                    )
                    version = await conn.fetchval(
                        "UPDATE subnets SET alloc_version = alloc_version + 1 WHERE id = $1 RETURNING alloc_version",
                        subnet_id,
                    )
                    await emit_many(conn, "ip_allocation", "created", list(new))
            if new:
                self._free[subnet_id] = ((version, row["created_at"]), free)
        except BaseException:
            self._free.pop(subnet_id, None)
            raise
        for it, res in results:
            if isinstance(res, DomainError):
                it.fail(res)
            else:
                it.resolve(res)

    @staticmethod
    def _replay(cmd: m.IpAllocate, mine: set[tuple[uuid.UUID, str]]) -> str | None:
        """Idempotency: the port already holds the asked address (or, when none was asked, one here)."""
        if cmd.ip_address is not None:
            wanted = str(IPAddress(cmd.ip_address))
            return wanted if (cmd.port_id, wanted) in mine else None
        return next((ip for port, ip in sorted(mine) if port == cmd.port_id), None)

    async def _free_space(self, conn: asyncpg.Connection, row: asyncpg.Record) -> FreeAddresses:
        cached = self._free.get(row["id"])
        if cached is not None and cached[0] == (row["alloc_version"], row["created_at"]):
            return cached[1]
        cidr = IPNetwork(str(row["cidr"]))
        used = [
            IPAddress(str(r["ip_address"]))
            for r in await conn.fetch("SELECT ip_address FROM ip_allocations WHERE subnet_id = $1", row["id"])
        ]
        ranges = [IPRange(p["start"], p["end"]) for p in row["allocation_pools"]]
        reserved = [IPAddress(str(row["gateway_ip"]))] if row["gateway_ip"] is not None else []
        return FreeAddresses(ranges, used, reserved, cidr=cidr)

    async def release(self, cmd: m.IpRelease) -> m.IpAllocationList:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """DELETE FROM ip_allocations WHERE port_id = $1
                       AND ($2::uuid IS NULL OR subnet_id = $2) AND ($3::inet IS NULL OR ip_address = $3::inet)
                   RETURNING subnet_id, ip_address, port_id""",
                cmd.port_id,
                cmd.subnet_id,
                cmd.ip_address,
            )
            gone = [
                m.IpAllocation(subnet_id=r["subnet_id"], port_id=r["port_id"], ip_address=str(r["ip_address"]))
                for r in rows
            ]
            if gone:
                await conn.execute(
                    "UPDATE subnets SET alloc_version = alloc_version + 1 WHERE id = ANY($1::uuid[])",
                    list({a.subnet_id for a in gone}),
                )
            await emit_many(conn, "ip_allocation", "deleted", list(gone))
        return m.IpAllocationList(allocations=gone)

    async def list_(self, cmd: PagedListCommand) -> m.IpAllocationList:
        """Filters ``port_id`` / ``subnet_id`` (one id or a list of them); pages in (subnet, address)
        order, the marker being the last allocation's ``<subnet_id>/<address>``."""
        unknown = set(cmd.filters) - {"port_id", "subnet_id"}
        if unknown:
            raise BadRequest(f"{sorted(unknown)} is invalid attribute for filtering", field=sorted(unknown)[0])
        ports = id_filter(cmd.filters, "port_id", "port_id and subnet_id filters must be UUIDs")
        subnets = id_filter(cmd.filters, "subnet_id", "port_id and subnet_id filters must be UUIDs")
        after: tuple[uuid.UUID | None, str | None] = (None, None)
        if cmd.marker is not None:
            try:
                sid, _, ip = cmd.marker.partition("/")
                after = (uuid.UUID(sid), str(IPAddress(ip)))
            except Exception:
                raise BadRequest(f"Invalid marker {cmd.marker!r}", field="marker") from None
        async with db_errors(), self.db.acquire() as conn:
            rows = await conn.fetch(
                """SELECT subnet_id, ip_address, port_id FROM ip_allocations
                   WHERE ($1::uuid[] IS NULL OR port_id = ANY($1::uuid[]))
                     AND ($2::uuid[] IS NULL OR subnet_id = ANY($2::uuid[]))
                     AND ($3::uuid IS NULL OR (subnet_id, ip_address) > ($3::uuid, $4::inet))
                   ORDER BY subnet_id, ip_address LIMIT $5""",
                ports,
                subnets,
                after[0],
                after[1],
                cmd.limit,
            )
        allocations = [
            m.IpAllocation(subnet_id=r["subnet_id"], port_id=r["port_id"], ip_address=str(r["ip_address"]))
            for r in rows
        ]
        full = cmd.limit is not None and len(rows) == cmd.limit
        marker = f"{allocations[-1].subnet_id}/{allocations[-1].ip_address}" if full else None
        return m.IpAllocationList(allocations=allocations, next_marker=marker)
