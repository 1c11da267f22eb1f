"""Port commands (SPEC §1.6, §2.J): fixed IPs from IPAM through the port saga (``portsaga``; creates
group-committed by ``portcreate``)."""

from __future__ import annotations

import builtins
import uuid
from typing import Any

import asyncpg
from netaddr import IPAddress

from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, ListCommand
from scopenet.contracts.errors import Conflict, DomainError, NotAuthorized
from scopenet.policy.rules import check_revision, not_found, owner_for_create
from scopenet.services.topology import fixedips, portsaga, store, validate
from scopenet.services.topology.context import Deps
from scopenet.services.topology.events import emit
from scopenet.services.topology.listing import apply_filters
from scopenet.services.topology.portcreate import PortCreates
from scopenet.store.db import db_errors

#: Ports of instances (Neutron's compute_device, baremetal_device, manila_device rules).
_INSTANCE_OWNERS = ("compute:", "baremetal:", "manila:")
_VISIBLE = """($2 OR p.project_id = $1 OR EXISTS (SELECT 1 FROM networks n WHERE n.id = p.network_id
               AND n.project_id = $1))"""


def port_view(row: asyncpg.Record, ips: list[asyncpg.Record]) -> t.Port:
    ordered = sorted(ips, key=lambda i: (IPAddress(str(i["ip_address"])).version, IPAddress(str(i["ip_address"]))))
    return t.Port(
        id=row["id"],
        name=row["name"],
        network_id=row["network_id"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        mac_address=str(row["mac_address"]),
        admin_state_up=row["admin_state_up"],
        status=row["status"],
        device_owner=row["device_owner"],
        device_id=row["device_id"],
        fixed_ips=[t.FixedIp(subnet_id=i["subnet_id"], ip_address=str(i["ip_address"])) for i in ordered],
        description=row["description"],
        tags=list(row["tags"]),
        revision_number=row["revision_number"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def load_ports(
    conn: asyncpg.Connection, *, project: str, admin: bool, where: str = "TRUE", args: tuple[Any, ...] = ()
) -> list[t.Port]:
    rows = await conn.fetch(
        f"SELECT p.* FROM ports p WHERE p.state = 'active' AND {_VISIBLE} AND {where} ORDER BY p.created_at, p.id",
        project,
        admin,
        *args,
    )
    ips = await conn.fetch("SELECT * FROM port_ips WHERE port_id = ANY($1::uuid[])", [r["id"] for r in rows])
    by_port: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for i in ips:
        by_port.setdefault(i["port_id"], []).append(i)
    return [port_view(r, by_port.get(r["id"], [])) for r in rows]


async def one_port(conn: asyncpg.Connection, id_: uuid.UUID, *, project: str = "", admin: bool = True) -> t.Port | None:
    ports = await load_ports(conn, project=project, admin=admin, where="p.id = $3", args=(id_,))
    return ports[0] if ports else None


async def service_owner(conn: asyncpg.Connection, port_id: uuid.UUID) -> str | None:
    """The device owner that keeps a port from being changed or deleted through the port API."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """SELECT CASE WHEN EXISTS (SELECT 1 FROM router_ports WHERE port_id = $1) THEN $2
                       WHEN EXISTS (SELECT 1 FROM routers WHERE gw_port_id = $1) THEN $3
                       WHEN EXISTS (SELECT 1 FROM floatingips WHERE floating_port_id = $1) THEN $4 END""",
        port_id,
        t.DEVICE_OWNER_ROUTER_INTERFACE,
        t.DEVICE_OWNER_ROUTER_GATEWAY,
        t.DEVICE_OWNER_FLOATINGIP,
    )


class Ports:
    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.db = deps.db
        self._creates = PortCreates(deps)

    async def get(self, cmd: ByIdCommand) -> t.PortReply:
        async with db_errors(), self.db.acquire() as conn:
            port = await one_port(conn, cmd.id, project=cmd.context.project_id, admin=cmd.context.is_admin)
        if port is None:
            raise not_found("port", cmd.id)
        return t.PortReply(port=port)

    async def list(self, cmd: ListCommand) -> t.PortList:
        async with db_errors(), self.db.acquire() as conn:
            ports = await load_ports(conn, project=cmd.context.project_id, admin=cmd.context.is_admin)
        return t.PortList(ports=apply_filters(ports, cmd.filters, t.Port))

    # ------------------------------------------------------------ create

    async def create(self, cmd: t.PortCreate) -> t.PortReply:
        body, ctx = cmd.port, cmd.context
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        new = portsaga.NewPort(
            id=uuid.uuid4(),
            network_id=body.network_id,
            project_id=owner,
            name=body.name,
            mac_address=validate.mac(body.mac_address) if body.mac_address is not None else None,
            admin_state_up=body.admin_state_up,
            device_owner=body.device_owner,
            device_id=body.device_id,
            description=body.description,
            tags=tuple(body.tags),
        )
        return t.PortReply(port=await self._creates.create(ctx, body, new))

    # ------------------------------------------------------------ update

    async def update(self, cmd: t.PortUpdate) -> t.PortReply:
        body, ctx = cmd.port, cmd.context
        given = {k for k in body.model_fields_set if getattr(body, k) is not None}
        async with db_errors(), self.db.acquire() as conn:
            row = await self._editable(conn, ctx, cmd.id, "update")
            check_revision(cmd.if_revision, row["revision_number"])
            service = await service_owner(conn, cmd.id)
            if service and given & {"device_owner", "device_id", "fixed_ips"}:
                raise Conflict(f"Port {cmd.id} is in use by {service}; change it through its owner.", type="PortInUse")
            net_owner = ctx.is_admin or row["net_owner"] == ctx.project_id
            if "device_owner" in given and body.device_owner.startswith("network:") and not net_owner:  # type: ignore[union-attr]
                raise NotAuthorized("(rule:update_port:device_owner) is disallowed by policy", field="device_owner")
            current = await conn.fetch("SELECT * FROM port_ips WHERE port_id = $1", cmd.id)
            wants: builtins.list[portsaga.Want] = []
            if "fixed_ips" in given:
                if not net_owner:  # update_port:fixed_ips is the network owner's, even by subnet only
                    raise NotAuthorized("(rule:update_port:fixed_ips) is disallowed by policy", field="fixed_ips")
                subnets = await store.network_subnets(conn, [row["network_id"]])
                plan = await fixedips.requested_plan(
                    conn,
                    row["network_id"],
                    body.fixed_ips or [],
                    subnets,
                    mac=str(row["mac_address"]),
                    router_port=False,
                )
                wants = plan.resolve(str(row["mac_address"]), {s["id"]: s for s in subnets})
        keep, add = diff_fixed_ips(current, wants) if "fixed_ips" in given else (list(current), [])
        got = await portsaga.allocate_more(self.d, ctx, cmd.id, add) if add else []
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._editable(conn, ctx, cmd.id, "update", lock=True)
            before = await one_port(conn, cmd.id)
            if "fixed_ips" in given:
                gone = [c for c in current if c not in keep]
                await self._check_fips(conn, cmd.id, gone)
                await conn.execute("DELETE FROM port_ips WHERE port_id = $1", cmd.id)
                await conn.executemany(
                    "INSERT INTO port_ips (port_id, subnet_id, ip_address, ipam_held) VALUES ($1, $2, $3::inet, $4)",
                    [(cmd.id, k["subnet_id"], str(k["ip_address"]), k["ipam_held"]) for k in keep]
                    + [(cmd.id, s, ip, True) for s, ip, _ in got],
                )
            await conn.execute(
                """UPDATE ports SET name = coalesce($2, name), admin_state_up = coalesce($3, admin_state_up),
                       device_owner = coalesce($4, device_owner), device_id = coalesce($5, device_id),
                       description = coalesce($6, description), tags = coalesce($7, tags),
                       revision_number = revision_number + 1, updated_at = now()
                   WHERE id = $1""",
                cmd.id,
                body.name,
                body.admin_state_up,
                body.device_owner,
                body.device_id,
                body.description,
                list(body.tags) if body.tags is not None else None,
            )
            after = await one_port(conn, cmd.id)
            assert after is not None
            await emit(conn, "port", "updated", after, before)
        if "fixed_ips" in given:  # addresses no longer wanted go back to IPAM (the sweep covers a crash here)
            for c in current:
                if c not in keep and c["ipam_held"]:
                    await self.d.ipam.release_ips(cmd.id, subnet_id=c["subnet_id"], ip_address=str(c["ip_address"]))
        return t.PortReply(port=after)

    async def _editable(
        self, conn: asyncpg.Connection, ctx: CallContext, port_id: uuid.UUID, action: str, *, lock: bool = False
    ) -> asyncpg.Record:
        row = await conn.fetchrow(
            "SELECT p.*, n.project_id AS net_owner FROM ports p JOIN networks n ON n.id = p.network_id "
            "WHERE p.id = $1 AND p.state = 'active'" + (" FOR UPDATE OF p" if lock else ""),
            port_id,
        )
        if row is None or not (ctx.is_admin or ctx.project_id in (row["project_id"], row["net_owner"])):
            raise not_found("port", port_id)
        if not ctx.is_admin and row["project_id"] != ctx.project_id:
            # The network's owner sees other projects' ports on its network but may not change them
            # (Neutron's update_port is the port's project's); it may delete them, though not an
            # instance's (delete_port: "not rule:compute_device and ...").
            if action != "delete" or str(row["device_owner"]).startswith(_INSTANCE_OWNERS):
                raise NotAuthorized(f"rule:{action}_port is disallowed by policy")
        return row

    @staticmethod
    async def _check_fips(conn: asyncpg.Connection, port_id: uuid.UUID, gone: builtins.list[asyncpg.Record]) -> None:
        for g in gone:
            fip = await conn.fetchval(
                "SELECT id FROM floatingips WHERE port_id = $1 AND fixed_ip_address = $2::inet",
                port_id,
                str(g["ip_address"]),
            )
            if fip is not None:
                raise Conflict(
                    f"Fixed IP {g['ip_address']} of port {port_id} is used by floating IP {fip}",
                    type="PortInUse",
                    field="fixed_ips",
                )

    # ------------------------------------------------------------ delete

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        ctx = cmd.context
        async with db_errors(), self.db.acquire() as conn:
            row = await self._editable(conn, ctx, cmd.id, "delete")
            check_revision(cmd.if_revision, row["revision_number"])
            service = await service_owner(conn, cmd.id)
            if service is not None:
                raise Conflict(
                    f"Port {cmd.id} cannot be deleted directly via the port API: has device owner {service}.",
                    type="ServicePortInUse",
                )
        await self.remove(cmd.id)
        return Deleted(id=cmd.id)

    async def remove(self, port_id: uuid.UUID) -> None:
        self.d.inflight.add(port_id)
        try:
            async with db_errors(), self.db.acquire() as conn, conn.transaction():
                await portsaga.mark_deleting(conn, port_id)
                # Gone for clients from this commit on, even while IPAM is away and the row waits
                # for the reconciler: no floating IP stays associated with a port that answers 404.
                await self.d.specs.publish_for_routers(conn, await portsaga.disassociate_fips(conn, port_id))
            async with db_errors():
                await portsaga.finish_delete(self.d, port_id)
        finally:
            self.d.inflight.discard(port_id)


def diff_fixed_ips(
    current: list[asyncpg.Record], wants: list[portsaga.Want]
) -> tuple[list[asyncpg.Record], list[portsaga.Want]]:
    """Addresses to keep (asked again, or a subnet-only request where the port already has one)
    and addresses to get."""
    keep: list[asyncpg.Record] = []
    add: list[portsaga.Want] = []
    for w in wants:
        hit = next(
            (
                c
                for c in current
                if c not in keep and c["subnet_id"] == w.subnet_id and (w.ip is None or str(c["ip_address"]) == w.ip)
            ),
            None,
        )
        if hit is not None:
            keep.append(hit)
        else:
            add.append(w)
    return keep, add


__all__ = ["DomainError", "Ports", "load_ports", "one_port", "port_view"]
