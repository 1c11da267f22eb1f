"""Port commands: fixed IPs from IPAM through the port saga (``ports.saga``; creates
group-committed by ``ports.create``).

An update that changes fixed IPs is a saga like a create: its reads (policy, the current addresses,
the plan) come first and take no lock → the new addresses from IPAM (``saga.allocate_more``) → one
transaction that writes the addresses, the row and the event → the addresses let go back to IPAM.
IPAM is never called inside the transaction: that would hold the port's row lock (and a pooled
connection) over IPAM round trips. If the transaction refuses the change, the new addresses go back
at once; a crash in between is the orphan sweep's.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Set
from dataclasses import dataclass

import asyncpg

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, QueryCommand
from scopenet.contracts.endpoint import Rendered
from scopenet.contracts.errors import DomainError
from scopenet.policy.rules import check_revision, not_found, owner_for_create
from scopenet.services.topology import sqllist
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.portforwardings import service as pfservice
from scopenet.services.topology.ports import rules, saga, store
from scopenet.services.topology.ports.create import PortCreates
from scopenet.services.topology.ports.rules import NewPort, Row, Want
from scopenet.services.topology.ports.store import Ip
from scopenet.services.topology.subnets.store import active_ids, network_subnets
from scopenet.store.db import db_errors


@dataclass(frozen=True)
class _UpdatePlan:
    """What an update decided before calling IPAM."""

    current: list[Row]
    keep: list[Row]
    add: list[Want]


class Ports:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db
        self._creates = PortCreates(deps)

    async def get(self, cmd: ByIdCommand) -> t.PortReply:
        async with db_errors(), self.db.acquire() as conn:
            port = await store.one_port(conn, cmd.id, project=cmd.context.project_id, admin=cmd.context.is_admin)
        if port is None:
            raise not_found("port", cmd.id)
        return t.PortReply(port=port)

    async def list(self, cmd: QueryCommand) -> Rendered[t.PortList]:
        """One page in one query, its JSON built by Postgres (``sqllist``)."""
        async with db_errors(), self.db.acquire() as conn:
            found = await sqllist.page(conn, store.TABLE, cmd)
        return Rendered(found.reply("ports"))

    # ------------------------------------------------------------ create

    async def create(self, cmd: t.PortCreate) -> t.PortReply:
        body, ctx = cmd.port, cmd.context
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        new = NewPort(
            id=uuid.uuid4(),
            network_id=body.network_id,
            project_id=owner,
            name=body.name,
            mac_address=rules.mac(body.mac_address) if body.mac_address is not None else None,
            admin_state_up=body.admin_state_up,
            device_owner=body.device_owner,
            device_id=body.device_id,
            description=body.description,
            tags=tuple(body.tags),
        )
        return t.PortReply(port=await self._creates.create(ctx, body, new))

    # ------------------------------------------------------------ update

    async def update(self, cmd: t.PortUpdate) -> t.PortReply:
        given = {k for k in cmd.port.model_fields_set if getattr(cmd.port, k) is not None}
        plan = await self._plan_update(cmd, given)
        got = await saga.allocate_more(self.d, cmd.context, cmd.id, plan.add) if plan.add else []
        try:
            after = await self._write_update(cmd, given, plan, got)
        except DomainError:  # refused before the commit: the new addresses go back now
            await saga.give_back(self.d, cmd.id, got)
            raise
        if "fixed_ips" in given:  # addresses no longer wanted go back to IPAM (the sweep covers a crash here)
            await saga.release(self.d, cmd.id, rules.dropped(plan.current, plan.keep))
        return t.PortReply(port=after)

    async def _plan_update(self, cmd: t.PortUpdate, given: Set[str]) -> _UpdatePlan:
        body, ctx = cmd.port, cmd.context
        async with db_errors(), self.db.acquire() as conn:
            row = await self._editable(conn, ctx, cmd.id, "update")
            check_revision(cmd.if_revision, row["revision_number"])
            rules.check_update(ctx, cmd.id, row, body, given, await store.service_owner(conn, cmd.id))
            current: list[Row] = list(await store.port_ips(conn, cmd.id))
            if "fixed_ips" not in given:
                return _UpdatePlan(current=current, keep=list(current), add=[])
            requests = body.fixed_ips or []
            subnets = await network_subnets(conn, [row["network_id"]])
            mac = str(row["mac_address"])
            plan = rules.requested_plan(
                row["network_id"],
                requests,
                subnets,
                mac=mac,
                router_port=False,
                existing=await active_ids(conn, rules.foreign_subnets(requests, subnets)),
            )
        keep, add = rules.diff_fixed_ips(current, plan.resolve(mac, {s["id"]: s for s in subnets}))
        return _UpdatePlan(current=current, keep=keep, add=add)

    async def _write_update(
        self, cmd: t.PortUpdate, given: Set[str], plan: _UpdatePlan, got: builtins.list[Ip]
    ) -> t.Port:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self._editable(conn, cmd.context, cmd.id, "update", lock=True)
            before = await store.one_port(conn, cmd.id)
            if "fixed_ips" in given:
                for g in rules.dropped(plan.current, plan.keep):
                    fip = await store.fip_on(conn, cmd.id, str(g["ip_address"]))
                    if fip is not None:
                        raise rules.fip_in_use(cmd.id, g["ip_address"], fip)
                # Port forwardings to an address the port lets go are deleted (Neutron's semantics).
                dropped = [str(g["ip_address"]) for g in rules.dropped(plan.current, plan.keep)]
                if dropped:
                    await self.d.specs.publish_for_routers(
                        conn, await pfservice.remove_for_port(conn, cmd.id, addresses=dropped)
                    )
                await store.replace_ips(
                    conn,
                    cmd.id,
                    [(k["subnet_id"], str(k["ip_address"]), k["ipam_held"]) for k in plan.keep] + got,
                )
            await store.update_port(conn, cmd.id, cmd.port)
            after = await store.one_port(conn, cmd.id)
            assert after is not None
            await emit(conn, "port", "updated", after, before)
        return after

    @staticmethod
    async def _editable(
        conn: asyncpg.Connection, ctx: CallContext, port_id: uuid.UUID, action: str, *, lock: bool = False
    ) -> asyncpg.Record:
        row = await store.with_net_owner(conn, port_id, lock=lock)
        rules.check_editable(ctx, port_id, row, action)
        assert row is not None
        return row

    # ------------------------------------------------------------ delete

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        async with db_errors(), self.db.acquire() as conn:
            row = await self._editable(conn, cmd.context, cmd.id, "delete")
            check_revision(cmd.if_revision, row["revision_number"])
            rules.check_delete(cmd.id, await store.service_owner(conn, cmd.id))
        await self.remove(cmd.id)
        return Deleted(id=cmd.id)

    async def remove(self, port_id: uuid.UUID) -> None:
        self.d.inflight.add(port_id)
        try:
            async with db_errors(), self.db.acquire() as conn, conn.transaction():
                await saga.mark_deleting(conn, port_id)
                # Gone for clients from this commit on, even while IPAM is away and the row waits
                # for the reconciler: no floating IP stays associated with a port that answers 404.
                routers = await saga.disassociate_fips(conn, port_id)
                routers |= await pfservice.remove_for_port(conn, port_id)  # its port forwardings go with it
                await self.d.specs.publish_for_routers(conn, routers)
            async with db_errors():
                await saga.finish_delete(self.d, port_id)
        finally:
            self.d.inflight.discard(port_id)
