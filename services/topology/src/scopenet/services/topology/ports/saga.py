"""The port saga, shared by ports, router gateways, router interfaces and floating IPs.

Create: ``insert`` the row ``allocating`` inside the caller's transaction (which may also point a
router or a floating IP at it) and commit → ``allocate`` each address in IPAM (idempotent on the
port id) → ``activate`` in a second transaction (which writes the addresses, the event and any
RouterSpec). A failure in between is compensated by ``abandon`` (release everything the port holds
in IPAM, drop the row); if even that fails, the reconciler does it later.

Update of fixed IPs: ``allocate_more`` (new addresses only; compensated on failure) → the caller's
one transaction → ``release`` of the addresses let go (the orphan sweep covers a crash in between).

Delete: ``mark_deleting`` (commit) → ``finish_delete``: release in IPAM, then drop the row (its
floating IPs, router links and router gateway go with it). Repeatable, so the reconciler can run it
for any row a crash left behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import structlog

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import Conflict, DomainError, TransientError
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.floatingips.store import fip_view_row
from scopenet.services.topology.ports import rules, store
from scopenet.services.topology.ports.rules import NewPort, Want
from scopenet.services.topology.ports.store import Ip

log = structlog.get_logger("topology.ports")

_MAC_ATTEMPTS = 8


async def insert(conn: asyncpg.Connection, port: NewPort) -> str:
    """Insert the port row (state ``allocating``), in the caller's transaction if there is one;
    returns its MAC. One statement: a MAC clash inserts nothing (no savepoint needed) and retries."""
    for _ in range(_MAC_ATTEMPTS):
        mac = port.mac_address or rules.random_mac()
        if await store.insert_port(conn, port, mac):
            return mac
        if port.mac_address is not None:
            raise mac_in_use(port)
    raise TransientError("could not find a free MAC address")


def mac_in_use(port: NewPort) -> Conflict:
    return Conflict(
        f"Unable to complete operation for network {port.network_id}. The mac address {port.mac_address} is in use.",
        type="MacAddressInUse",
        field="mac_address",
    )


async def _get(deps: Deps, ctx: CallContext, port_id: uuid.UUID, wants: list[Want], got: list[Ip]) -> None:
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


async def allocate(deps: Deps, ctx: CallContext, port_id: uuid.UUID, wants: list[Want]) -> list[Ip]:
    """Get every wanted address of a new port; on failure release all the port holds and re-raise."""
    got: list[Ip] = []
    try:
        await _get(deps, ctx, port_id, wants, got)
    except BaseException:
        try:
            await deps.ipam.release_ips(port_id)
        except Exception as exc:
            log.warning("port_release_deferred", port_id=str(port_id), error=str(exc) or type(exc).__name__)
        raise
    return got


async def allocate_more(deps: Deps, ctx: CallContext, port_id: uuid.UUID, wants: list[Want]) -> list[Ip]:
    """Addresses for an existing port: on failure only the new ones go back (the sweep covers a crash)."""
    got: list[Ip] = []
    try:
        await _get(deps, ctx, port_id, wants, got)
    except BaseException:
        await give_back(deps, port_id, got)
        raise
    return got


async def give_back(deps: Deps, port_id: uuid.UUID, got: list[Ip]) -> None:
    """Compensation of ``allocate_more``: the new addresses go back; what IPAM cannot take back
    now stays for the orphan sweep."""
    for subnet_id, ip, held in got:
        if held:
            try:
                await deps.ipam.release_ips(port_id, subnet_id=subnet_id, ip_address=ip)
            except Exception as exc:
                log.warning("port_release_deferred", port_id=str(port_id), error=str(exc) or type(exc).__name__)


async def release(deps: Deps, port_id: uuid.UUID, gone: Iterable[Mapping[str, Any]]) -> None:
    """Addresses a port no longer has go back to IPAM (after the commit that dropped them)."""
    for g in gone:
        if g["ipam_held"]:
            await deps.ipam.release_ips(port_id, subnet_id=g["subnet_id"], ip_address=str(g["ip_address"]))


async def activate(conn: asyncpg.Connection, port_id: uuid.UUID, ips: list[Ip]) -> asyncpg.Record:
    """Second step of a create, in the caller's transaction. A row the reconciler already rolled
    back (taken for dead) makes the whole create fail: its addresses are then orphans IPAM gets back."""
    row = await store.activate(conn, port_id)
    if row is None:
        raise TransientError("the port's creation was interrupted; try again")
    try:
        async with conn.transaction():
            await store.add_ips(conn, port_id, ips)
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
            claimed = await store.claim_allocating(conn, port_id)
        if claimed:
            await finish_delete(deps, port_id)
    except Exception as exc:
        log.warning("port_rollback_deferred", port_id=str(port_id), error=str(exc) or type(exc).__name__)


async def drop(deps: Deps, conn: asyncpg.Connection, port_id: uuid.UUID) -> None:
    """Delete a port row and what hangs on it, and republish the routers it touched."""
    routers = await store.routers_of(conn, port_id)
    await disassociate_fips(conn, port_id)
    row = await store.delete_port(conn, port_id)
    if row is not None and row["state"] != "allocating" and not row["abandoned"]:
        await emit(conn, "port", "deleted", store.port_view(row, []))
    await deps.specs.publish_for_routers(conn, routers)


async def disassociate_fips(conn: asyncpg.Connection, port_id: uuid.UUID) -> set[uuid.UUID]:
    """The floating IPs pointing at a port that goes become unassociated (as in Neutron), each with
    its ``floatingip.updated`` event; returns the routers they went through (specs to republish)."""
    routers: set[uuid.UUID] = set()
    for fip in await store.fips_at(conn, port_id):
        before = await fip_view_row(conn, fip["id"])
        await store.unassociate_fip(conn, fip["id"])
        after = await fip_view_row(conn, fip["id"])
        if before is not None and after is not None:
            await emit(conn, "floatingip", "updated", after, before)
        if fip["router_id"] is not None:
            routers.add(fip["router_id"])
    return routers


async def mark_deleting(conn: asyncpg.Connection, port_id: uuid.UUID) -> None:
    """First step of a delete. The port's addresses leave topology now, before IPAM frees them, so
    a new port that IPAM gives one of them next is never refused because of a port on its way out."""
    await store.mark_deleting(conn, port_id)


async def finish_delete(deps: Deps, port_id: uuid.UUID) -> None:
    """Release the port's addresses in IPAM, then drop it (idempotent; any state but allocating)."""
    await deps.ipam.release_ips(port_id)
    async with deps.db.acquire() as conn, conn.transaction():
        if await store.lock_state(conn, port_id) == "deleting":
            await drop(deps, conn, port_id)
