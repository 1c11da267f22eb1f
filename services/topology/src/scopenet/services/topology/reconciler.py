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
   port update in flight, so they are acted on only when seen again on the next pass.
3. Topology's copies of gateway and allocation pools are refreshed from IPAM (a crash between an
   IPAM ``subnet.update`` and topology's commit).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import structlog

from scopenet.contracts.errors import DomainError
from scopenet.services.topology import portsaga
from scopenet.services.topology.context import Deps
from scopenet.services.topology.ipam_client import SYSTEM
from scopenet.services.topology.subnets import _pools_json

log = structlog.get_logger("topology.reconciler")

Key = tuple[uuid.UUID, uuid.UUID, str]  # (port, subnet, address)


class Reconciler:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db
        self._suspects: set[tuple[str, Key]] = set()
        self.passes = 0
        self.last: Counter[str] = Counter()
        self.total: Counter[str] = Counter()
        """Everything this process's reconciler repaired since it started (for operators and tests)."""

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.d.settings.reconcile_interval)
            try:
                await self.run_once()
            except Exception as exc:
                log.warning("reconcile_failed", error=str(exc) or type(exc).__name__)

    async def run_once(self) -> Counter[str]:
        async with self.db.acquire() as lock:
            if not await lock.fetchval("SELECT pg_try_advisory_lock(hashtext('topology-reconciler'))"):
                return Counter()
            try:
                done: Counter[str] = Counter()
                await self._stale(done)
                await self._sweep(done)
                await lock.execute("DELETE FROM consumed_events WHERE consumed_at < now() - interval '2 days'")
            finally:
                await lock.execute("SELECT pg_advisory_unlock(hashtext('topology-reconciler'))")
        self.passes += 1
        self.last = done
        self.total.update(done)
        if done:
            log.info("reconciled", **done)
        return done

    async def _rows(self, table: str) -> list[Any]:
        async with self.db.acquire() as conn:
            return list(
                await conn.fetch(
                    f"SELECT id, state FROM {table} WHERE state <> 'active' "
                    "AND state_at < now() - make_interval(secs => $1) ORDER BY state_at",
                    self.d.settings.stale_after,
                )
            )

    async def _stale(self, done: Counter[str]) -> None:
        for r in await self._rows("routers"):
            if r["id"] in self.d.inflight:
                continue
            await self.d.routers.finish_delete(r["id"])
            done[f"router_{r['state']}"] += 1
        for r in await self._rows("ports"):
            if r["id"] in self.d.inflight:
                continue
            if r["state"] == "allocating":
                await portsaga.abandon(self.d, r["id"])
            else:
                await portsaga.finish_delete(self.d, r["id"])
            done[f"port_{r['state']}"] += 1
        for r in await self._rows("subnets"):
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
            networks = {r["id"] for r in await conn.fetch("SELECT id FROM networks")}
            subnets = {r["id"]: r for r in await conn.fetch("SELECT * FROM subnets")}
            ports = {r["id"]: r["state"] for r in await conn.fetch("SELECT id, state FROM ports")}
            held = {
                (r["port_id"], r["subnet_id"], str(r["ip_address"]))
                for r in await conn.fetch(
                    """SELECT i.* FROM port_ips i JOIN ports p ON p.id = i.port_id JOIN subnets s ON s.id = i.subnet_id
                       WHERE i.ipam_held AND p.state = 'active' AND s.state = 'active'"""
                )
            }
        # Only what lives on topology's networks is topology's: other systems may use IPAM directly.
        ipam_subnets = [s for s in ipam_subnets if s.network_id in networks]
        ours = {s.id for s in ipam_subnets}
        ipam_ips = [a for a in ipam_ips if a.subnet_id in ours]
        have = {(a.port_id, a.subnet_id, a.ip_address) for a in ipam_ips}
        suspects: set[tuple[str, Key]] = set()
        for port_id in {a.port_id for a in ipam_ips if a.port_id not in ports}:
            await self.d.ipam.release_ips(port_id)
            done["orphan_port_released"] += 1
        for key in have - held:
            port_id, subnet_id, ip = key
            if ports.get(port_id) == "active" and subnet_id in subnets and subnets[subnet_id]["state"] == "active":
                if ("extra", key) in self._suspects:
                    await self.d.ipam.release_ips(port_id, subnet_id=subnet_id, ip_address=ip)
                    done["stray_address_released"] += 1
                else:
                    suspects.add(("extra", key))
        for key in held - have:
            if ("missing", key) in self._suspects:
                port_id, subnet_id, ip = key
                try:
                    await self.d.ipam.allocate_ip(SYSTEM, subnet_id=subnet_id, port_id=port_id, ip_address=ip)
                    done["lost_address_restored"] += 1
                except DomainError as exc:
                    log.error("port_address_lost", port_id=str(port_id), ip_address=ip, error=exc.message)
                    done["lost_address_unrecoverable"] += 1
            else:
                suspects.add(("missing", key))
        busy = {a.subnet_id for a in ipam_ips if a.port_id in ports}
        for s in ipam_subnets:
            mine = subnets.get(s.id)
            if mine is None:
                if s.id not in busy:
                    try:
                        await self.d.ipam.release_subnet(s.id)
                        done["orphan_subnet_released"] += 1
                    except DomainError as exc:
                        log.warning("orphan_subnet_kept", subnet_id=str(s.id), error=exc.message)
            elif mine["state"] == "active":
                await self._refresh(mine, s, done)
        known = {s.id for s in ipam_subnets}
        for sid, row in subnets.items():
            if row["state"] == "active" and sid not in known:
                # Created between IPAM's list and our snapshot, or really lost: the next pass tells.
                lost = ("subnet", (sid, sid, ""))
                if lost in self._suspects:
                    log.error("subnet_allocation_missing", subnet_id=str(sid))
                    done["subnet_allocation_missing"] += 1
                suspects.add(lost)
        self._suspects = suspects

    async def _refresh(self, mine: Any, theirs: Any, done: Counter[str]) -> None:
        gw = str(mine["gateway_ip"]) if mine["gateway_ip"] is not None else None
        pools = [dict(p) for p in mine["allocation_pools"]]
        if gw == theirs.gateway_ip and pools == [p.model_dump() for p in theirs.allocation_pools]:
            return
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE subnets SET gateway_ip = $2::inet, allocation_pools = $3::text::jsonb, updated_at = now() "
                "WHERE id = $1 AND state = 'active'",
                mine["id"],
                theirs.gateway_ip,
                _pools_json(theirs.allocation_pools),
            )
            if gw != theirs.gateway_ip:
                await self.d.specs.publish_for_networks(conn, [mine["network_id"]])
        done["subnet_copy_refreshed"] += 1
