"""SQL of the reconciler: its turn among replicas, rows stuck in a saga state, topology's snapshot."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import asyncpg

from scopenet.contracts import ipam as im
from scopenet.services.topology.reconciler.rules import Snapshot, SubnetCopy
from scopenet.services.topology.subnets.store import pools_json

_LOCK = "hashtext('topology-reconciler')"


async def take_turn(conn: asyncpg.Connection) -> bool:
    """One replica at a time (a session lock: held on ``conn`` until ``end_turn``)."""
    return bool(await conn.fetchval(f"SELECT pg_try_advisory_lock({_LOCK})"))


async def end_turn(conn: asyncpg.Connection) -> None:
    await conn.execute(f"SELECT pg_advisory_unlock({_LOCK})")


async def forget_consumed(conn: asyncpg.Connection) -> None:
    """Event ids older than any redelivery: idempotence needs them no longer."""
    await conn.execute("DELETE FROM consumed_events WHERE consumed_at < now() - interval '2 days'")


async def stuck(
    conn: asyncpg.Connection, table: Literal["routers", "ports", "subnets"], *, older_than: float
) -> list[asyncpg.Record]:
    """(id, state) of the rows in a saga state for longer than ``older_than`` seconds, oldest first."""
    return list(
        await conn.fetch(
            f"SELECT id, state FROM {table} WHERE state <> 'active' "
            "AND state_at < now() - make_interval(secs => $1) ORDER BY state_at",
            older_than,
        )
    )


async def snapshot(conn: asyncpg.Connection) -> Snapshot:
    """Topology as the sweep compares it with IPAM (call it in one repeatable-read transaction)."""
    networks = {r["id"] for r in await conn.fetch("SELECT id FROM networks")}
    subnets = {
        r["id"]: SubnetCopy(
            r["id"],
            r["network_id"],
            r["state"],
            str(r["gateway_ip"]) if r["gateway_ip"] is not None else None,
            list(r["allocation_pools"]),
        )
        for r in await conn.fetch("SELECT id, network_id, state, gateway_ip, allocation_pools FROM subnets")
    }
    ports = {r["id"]: r["state"] for r in await conn.fetch("SELECT id, state FROM ports")}
    held = {
        (r["port_id"], r["subnet_id"], str(r["ip_address"]))
        for r in await conn.fetch(
            """SELECT i.* FROM port_ips i JOIN ports p ON p.id = i.port_id JOIN subnets s ON s.id = i.subnet_id
               WHERE i.ipam_held AND p.state = 'active' AND s.state = 'active'"""
        )
    }
    return Snapshot(networks=networks, subnets=subnets, ports=ports, held=held)


async def refresh_subnet(conn: asyncpg.Connection, subnet_id: UUID, theirs: im.Subnet) -> None:
    """Topology's copy of the subnet's gateway and pools becomes IPAM's."""
    await conn.execute(
        "UPDATE subnets SET gateway_ip = $2::inet, allocation_pools = $3::text::jsonb, updated_at = now() "
        "WHERE id = $1 AND state = 'active'",
        subnet_id,
        theirs.gateway_ip,
        pools_json(theirs.allocation_pools),
    )
