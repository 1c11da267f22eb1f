"""The port saga, shared by ports, router gateways, router interfaces and floating IPs.

Create: ``insert`` the row ``allocating`` inside the caller's transaction (which may also point a
router or a floating IP at it) and commit → ``allocate`` each address in IPAM (idempotent on the
port id) → ``activate`` in a second transaction (which writes the addresses, the event and any
RouterSpec). A failure in between is compensated by ``abandon`` (release everything the port holds
in IPAM, drop the row); if even that fails, the reconciler does it later.

Delete: mark the row ``deleting`` (commit) → ``finish_delete``: release in IPAM, then drop the row
(its floating IPs, router links and router gateway go with it). Repeatable, so the reconciler can
run it for any row a crash left behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import structlog

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import Conflict, DomainError, TransientError
from scopenet.services.topology import validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.l3store import fip_view_row

log = structlog.get_logger("topology.ports")


@dataclass(frozen=True)
class Want:
    """One address to get: on ``subnet_id``, ``ip`` or the next free one; ``candidates`` are tried
    in order when the first subnet is full (a port without fixed IPs takes "one IPv4 address")."""

    subnet_id: uuid.UUID
    ip: str | None = None
    candidates: tuple[uuid.UUID, ...] = ()
    ipam_held: bool = True


@dataclass(frozen=True)
class NewPort:
    id: uuid.UUID
    network_id: uuid.UUID
    project_id: str
    name: str = ""
    mac_address: str | None = None
    admin_state_up: bool = True
    device_owner: str = ""
    device_id: str = ""
    status: str = "DOWN"
    description: str = ""
    tags: tuple[str, ...] = ()


async def insert(conn: asyncpg.Connection, port: NewPort) -> str:
    """Insert the port row (state ``allocating``), in the caller's transaction if there is one;
    returns its MAC. One statement: a MAC clash inserts nothing (no savepoint needed) and retries."""
    for _ in range(8):
        mac = port.mac_address or validate.random_mac()
        inserted = await conn.fetchval(
            """INSERT INTO ports (id, network_id, project_id, name, mac_address, admin_state_up, status,
                   device_owner, device_id, description, tags, state)
               VALUES ($1, $2, $3, $4, $5::macaddr, $6, $7, $8, $9, $10, $11, 'allocating')
               ON CONFLICT (mac_address) DO NOTHING RETURNING true""",
            port.id,
            port.network_id,
            port.project_id,
            port.name,
            mac,
            port.admin_state_up,
            port.status,
            port.device_owner,
            port.device_id,
            port.description,
            list(port.tags),
        )
        if inserted:
            return mac
        if port.mac_address is not None:
            raise Conflict(
                f"Unable to complete operation for network {port.network_id}. The mac address "
                f"{port.mac_address} is in use.",
                type="MacAddressInUse",
                field="mac_address",
            )
    raise TransientError("could not find a free MAC address")


async def _get(
    deps: Deps, ctx: CallContext, port_id: uuid.UUID, wants: list[Want], got: list[tuple[uuid.UUID, str, bool]]
) -> None:
    for w in wants:
        if not w.ipam_held:
            assert w.ip is not None
            got.append((w.subnet_id, w.ip, False))
            continue
        last: DomainError | None = None
        for subnet_id in (w.subnet_id, *w.candidates):
            try:
                a = await deps.ipam.allocate_ip(ctx, subnet_id=subnet_id, port_id=port_id, ip_address=w.ip)
            except DomainError as exc:
                if exc.type != "IpAddressGenerationFailure":
                    raise
                last = exc
                continue
            got.append((a.subnet_id, a.ip_address, True))
            break
        else:
            assert last is not None
            raise last


async def allocate(
    deps: Deps, ctx: CallContext, port_id: uuid.UUID, wants: list[Want]
) -> list[tuple[uuid.UUID, str, bool]]:
    """Get every wanted address of a new port; on failure release all the port holds and re-raise."""
    got: list[tuple[uuid.UUID, str, bool]] = []
    try:
        await _get(deps, ctx, port_id, wants, got)
    except BaseException:
        try:
            await deps.ipam.release_ips(port_id)
        except Exception as exc:
            log.warning("port_release_deferred", port_id=str(port_id), error=str(exc) or type(exc).__name__)
        raise
    return got


async def allocate_more(
    deps: Deps, ctx: CallContext, port_id: uuid.UUID, wants: list[Want]
) -> list[tuple[uuid.UUID, str, bool]]:
    """Addresses for an existing port: on failure only the new ones go back (the sweep covers a crash)."""
    got: list[tuple[uuid.UUID, str, bool]] = []
    try:
        await _get(deps, ctx, port_id, wants, got)
    except BaseException:
        for subnet_id, ip, held in got:
            if held:
                try:
                    await deps.ipam.release_ips(port_id, subnet_id=subnet_id, ip_address=ip)
                except Exception as exc:
                    log.warning("port_release_deferred", port_id=str(port_id), error=str(exc) or type(exc).__name__)
        raise
    return got


async def activate(
    conn: asyncpg.Connection, port_id: uuid.UUID, ips: list[tuple[uuid.UUID, str, bool]]
) -> asyncpg.Record:
    """Second step of a create, in the caller's transaction. A row the reconciler already rolled
    back (taken for dead) makes the whole create fail: its addresses are then orphans IPAM gets back."""
    row = await conn.fetchrow(
        "UPDATE ports SET state = 'active', state_at = now(), created_at = now(), updated_at = now() "
        "WHERE id = $1 AND state = 'allocating' RETURNING *",
        port_id,
    )
    if row is None:
        raise TransientError("the port's creation was interrupted; try again")
    try:
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO port_ips (port_id, subnet_id, ip_address, ipam_held) VALUES ($1, $2, $3::inet, $4)",
                [(port_id, s, ip, held) for s, ip, held in ips],
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("IP address is already allocated", type="IpAddressAlreadyAllocated") from None
    except asyncpg.ForeignKeyViolationError:
        raise Conflict("A subnet of the port was deleted meanwhile", type="SubnetNotFound") from None
    return row


async def abandon(deps: Deps, port_id: uuid.UUID) -> None:
    """Undo a create that did not finish (compensation, or the reconciler for a dead saga).

    The row is claimed first (``allocating`` → ``deleting``, atomically): a saga that completes
    meanwhile keeps its port, and one that completes later finds its row claimed and fails, so
    addresses are never released under a port that stays. What cannot be done now (IPAM away) is
    left ``deleting`` for the reconciler.
    """
    try:
        async with deps.db.acquire() as conn:
            # ``abandoned``: the port never existed for anyone, so its drop publishes no event.
            claimed = await conn.fetchval(
                "UPDATE ports SET state = 'deleting', abandoned = true, state_at = now() "
                "WHERE id = $1 AND state = 'allocating' RETURNING true",
                port_id,
            )
        if claimed:
            await finish_delete(deps, port_id)
    except Exception as exc:
        log.warning("port_rollback_deferred", port_id=str(port_id), error=str(exc) or type(exc).__name__)


async def drop(deps: Deps, conn: asyncpg.Connection, port_id: uuid.UUID) -> None:
    """Delete a port row and what hangs on it, and republish the routers it touched."""
    routers = {
        r["id"]
        for r in await conn.fetch(
            """SELECT router_id AS id FROM router_ports WHERE port_id = $1
               UNION SELECT id FROM routers WHERE gw_port_id = $1
               UNION SELECT router_id FROM floatingips WHERE (port_id = $1 OR floating_port_id = $1)
                     AND router_id IS NOT NULL""",
            port_id,
        )
    }
    await disassociate_fips(conn, port_id)
    row = await conn.fetchrow("DELETE FROM ports WHERE id = $1 RETURNING *", port_id)
    if row is not None and row["state"] != "allocating" and not row["abandoned"]:
        from scopenet.services.topology.ports import port_view

        await emit(conn, "port", "deleted", port_view(row, []))
    await deps.specs.publish_for_routers(conn, routers)


async def disassociate_fips(conn: asyncpg.Connection, port_id: uuid.UUID) -> set[uuid.UUID]:
    """The floating IPs pointing at a port that goes become unassociated (as in Neutron), each with
    its ``floatingip.updated`` event; returns the routers they went through (specs to republish)."""
    routers: set[uuid.UUID] = set()
    for fip in await conn.fetch("SELECT id, router_id FROM floatingips WHERE port_id = $1", port_id):
        before = await fip_view_row(conn, fip["id"])
        await conn.execute(
            "UPDATE floatingips SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL, "
            "revision_number = revision_number + 1, updated_at = now() WHERE id = $1",
            fip["id"],
        )
        after = await fip_view_row(conn, fip["id"])
        if before is not None and after is not None:
            await emit(conn, "floatingip", "updated", after, before)
        if fip["router_id"] is not None:
            routers.add(fip["router_id"])
    return routers


async def mark_deleting(conn: asyncpg.Connection, port_id: uuid.UUID) -> None:
    """First step of a delete. The port's addresses leave topology now, before IPAM frees them, so
    a new port that IPAM gives one of them next is never refused because of a port on its way out."""
    await conn.execute("UPDATE ports SET state = 'deleting', state_at = now() WHERE id = $1", port_id)
    await conn.execute("DELETE FROM port_ips WHERE port_id = $1", port_id)


async def finish_delete(deps: Deps, port_id: uuid.UUID) -> None:
    """Release the port's addresses in IPAM, then drop it (idempotent; any state but allocating)."""
    await deps.ipam.release_ips(port_id)
    async with deps.db.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT state FROM ports WHERE id = $1 FOR UPDATE", port_id) == "deleting":
            await drop(deps, conn, port_id)
