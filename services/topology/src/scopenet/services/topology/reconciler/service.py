"""Repairs what a crash between a topology write and an IPAM call left behind, within bounds.

Every ``reconcile_interval`` seconds (one replica at a time, by advisory lock):

1. Rows stuck in a saga state for longer than ``stale_after`` belong to a dead saga (a live one is
   much faster, and rows of this process's own sagas are skipped): ``allocating`` rows are rolled
   back (the client never got a success), ``deleting`` rows are finished.
2. The orphan sweep compares IPAM with topology, on topology's networks only (a network row
   outlives its subnets, and an allocation on a network topology never had is someone else's).
   IPAM is listed *before* topology (one snapshot): a row is always committed before its IPAM
   call, so an allocation whose owner is missing from the later topology read really has no owner
   (its saga was rolled back, or it was deleted) and is released. IPAM's lists are read in pages
   (``limit``/``marker``), so no reply outgrows the NATS max payload however many allocations there
   are; every page is still read before the topology snapshot, which is all the argument needs.
   Differences on live ports (an address IPAM has and the port does not, or the reverse) can be a
   port update in flight, so they are acted on only when seen again on the next pass (``rules``).
3. Topology's copies of gateway and allocation pools are refreshed from IPAM (a crash between an
   IPAM ``subnet.update`` and topology's commit).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import structlog

from scopenet.contracts import ipam as im
from scopenet.contracts.errors import DomainError
from scopenet.runtime.supervise import every
from scopenet.services.topology.context import Deps
from scopenet.services.topology.ipam_client import SYSTEM
from scopenet.services.topology.ports import saga as portsaga
from scopenet.services.topology.reconciler import rules, store

log = structlog.get_logger("topology.reconciler")


class Reconciler:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db
        self._suspects: set[rules.Suspect] = set()
        self.passes = 0
        self.last: Counter[str] = Counter()
        self.total: Counter[str] = Counter()
        """Everything this process's reconciler repaired since it started (for operators and tests)."""

    async def run(self) -> None:
        await every(
            lambda: asyncio.sleep(self.d.settings.reconcile_interval), self.run_once, log=log, event="reconcile_failed"
        )

    async def run_once(self) -> Counter[str]:
        async with self.db.acquire() as lock:
            if not await store.take_turn(lock):
                return Counter()
            try:
                done: Counter[str] = Counter()
                await self._stale(done)
                await self._sweep(done)
                await store.forget_consumed(lock)
            finally:
                await store.end_turn(lock)
        self.passes += 1
        self.last = done
        self.total.update(done)
        if done:
            log.info("reconciled", **done)
        return done

    async def _stale(self, done: Counter[str]) -> None:
        older_than = self.d.settings.stale_after
        async with self.db.acquire() as conn:
            routers = await store.stuck(conn, "routers", older_than=older_than)
        for r in routers:
            if r["id"] in self.d.inflight:
                continue
            await self.d.routers.finish_delete(r["id"])
            done[f"router_{r['state']}"] += 1
        async with self.db.acquire() as conn:
            ports = await store.stuck(conn, "ports", older_than=older_than)
        for r in ports:
            if r["id"] in self.d.inflight:
                continue
            if r["state"] == "allocating":
                await portsaga.abandon(self.d, r["id"])
            else:
                await portsaga.finish_delete(self.d, r["id"])
            done[f"port_{r['state']}"] += 1
        async with self.db.acquire() as conn:
            subnets = await store.stuck(conn, "subnets", older_than=older_than)
        for r in subnets:
            if r["id"] in self.d.inflight:
                continue
            if r["state"] == "allocating":
                await self.d.subnets.abandon(r["id"], allocated=True)
            else:
                try:
                    await self.d.subnets.finish_delete(r["id"])
                except DomainError:
                    pass  # in use again: it went back to active
            done[f"subnet_{r['state']}"] += 1

    async def _sweep(self, done: Counter[str]) -> None:
        ipam_subnets = await self.d.ipam.subnets()
        ipam_ips = await self.d.ipam.ips()
        # One snapshot of topology, read after IPAM's lists (see the module docstring).
        async with self.db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            snap = await store.snapshot(conn)
        plan = rules.sweep(ipam_subnets, ipam_ips, snap, self._suspects)
        for port_id in plan.release_ports:
            await self.d.ipam.release_ips(port_id)
            done["orphan_port_released"] += 1
        for port_id, subnet_id, ip in plan.release_addresses:
            await self.d.ipam.release_ips(port_id, subnet_id=subnet_id, ip_address=ip)
            done["stray_address_released"] += 1
        for port_id, subnet_id, ip in plan.restore_addresses:
            try:
                await self.d.ipam.allocate_ip(SYSTEM, subnet_id=subnet_id, port_id=port_id, ip_address=ip)
                done["lost_address_restored"] += 1
            except DomainError as exc:
                log.error("port_address_lost", port_id=str(port_id), ip_address=ip, error=exc.message)
                done["lost_address_unrecoverable"] += 1
        for subnet_id in plan.release_subnets:
            try:
                await self.d.ipam.release_subnet(subnet_id)
                done["orphan_subnet_released"] += 1
            except DomainError as exc:
                log.warning("orphan_subnet_kept", subnet_id=str(subnet_id), error=exc.message)
        for mine, theirs in plan.refresh:
            await self._refresh(mine, theirs)
            done["subnet_copy_refreshed"] += 1
        for subnet_id in plan.missing_subnets:
            log.error("subnet_allocation_missing", subnet_id=str(subnet_id))
            done["subnet_allocation_missing"] += 1
        self._suspects = plan.suspects

    async def _refresh(self, mine: rules.SubnetCopy, theirs: im.Subnet) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            await store.refresh_subnet(conn, mine.id, theirs)
            if mine.gateway_ip != theirs.gateway_ip:
                await self.d.specs.publish_for_networks(conn, [mine.network_id])
