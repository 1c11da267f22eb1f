"""SQL of ports and their fixed IPs: rows as the caller may see them, their views, and the saga's
state changes (the batched create writes with one statement per step).

Readers only ever see rows in state ``active``; rows of a saga in flight (``allocating`` /
``deleting``) are the saga's and the reconciler's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from ipaddress import ip_address
from typing import Any

import asyncpg
from netaddr import IPAddress

from scopenet.contracts import topology as t
from scopenet.contracts.errors import BadRequest
from scopenet.services.topology.ports.rules import NewPort
from scopenet.services.topology.sqllist import Column, Params, Table, common_columns
from scopenet.store.outbox import Row

Ip = tuple[uuid.UUID, str, bool]
"""(subnet id, address, held in IPAM) of one fixed IP"""

# $1 = the caller's project, $2 = is admin
_VISIBLE = """($2 OR p.project_id = $1 OR EXISTS (SELECT 1 FROM networks n WHERE n.id = p.network_id
               AND n.project_id = $1))"""


def _fixed_ips(p: Params, wanted: list[Any]) -> str:
    """``fixed_ips`` filters are objects (``{"ip_address": x}``, ``{"subnet_id": y}``,
    ``{"ip_address_substr": z}``; keys of one object all hold): a port matches when one of its
    fixed IPs matches one of them."""
    anys = []
    for w in wanted:
        if not isinstance(w, dict) or set(w) - {"ip_address", "subnet_id", "ip_address_substr"}:
            raise BadRequest(
                "fixed_ips filters are objects such as {'ip_address': ...} or {'subnet_id': ...}", field="fixed_ips"
            )
        conds = ["TRUE"]
        for k, v in w.items():
            try:
                if k == "ip_address":
                    conds.append(f"i.ip_address = {p.add(str(ip_address(str(v))))}::inet")
                elif k == "subnet_id":
                    conds.append(f"i.subnet_id = {p.add(uuid.UUID(str(v)))}")
                else:
                    conds.append(f"strpos(host(i.ip_address), {p.add(str(v))}) > 0")
            except ValueError:
                conds.append("FALSE")  # not an address or an id: no fixed IP holds it
        anys.append("(" + " AND ".join(conds) + ")")
    return f"EXISTS (SELECT 1 FROM port_ips i WHERE i.port_id = p.id AND ({' OR '.join(anys) or 'FALSE'}))"


_FIXED_IPS_JSON = """COALESCE((SELECT json_agg(json_build_object('subnet_id', i.subnet_id,
                                                     'ip_address', host(i.ip_address)) ORDER BY i.ip_address)
                              FROM port_ips i WHERE i.port_id = p.id), '[]'::json)"""

TABLE = Table(
    resource="port",
    source="ports p",
    where="p.state = 'active'",
    visible="""(p.project_id = $me OR EXISTS (SELECT 1 FROM networks n WHERE n.id = p.network_id
                                          AND n.project_id = $me))""",
    columns={
        "id": Column("p.id", "uuid"),
        "name": Column("p.name"),
        "network_id": Column("p.network_id", "uuid"),
        "project_id": Column("p.project_id"),
        "tenant_id": Column("p.project_id"),
        "mac_address": Column("p.mac_address::text"),
        "admin_state_up": Column("p.admin_state_up", "bool"),
        "status": Column("p.status"),
        "device_owner": Column("p.device_owner"),
        "device_id": Column("p.device_id"),
        "fixed_ips": Column("p.id", "json", sortable=False, filterable=False, json=_FIXED_IPS_JSON),
        **common_columns("p"),
    },
    natural=("p.created_at", "p.id"),
    id_sql="p.id",
    matchers={"fixed_ips": _fixed_ips},
    tags_sql="p.tags",
)
"""Port lists in SQL (``sqllist``); the JSON is ``port_view``'s, built by Postgres."""


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


# ---------------------------------------------------------------- reads


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


async def with_net_owner(conn: asyncpg.Connection, port_id: uuid.UUID, *, lock: bool = False) -> asyncpg.Record | None:
    """An active port with its network's owner (``net_owner``), for the policy of a change."""
    return await conn.fetchrow(
        "SELECT p.*, n.project_id AS net_owner FROM ports p JOIN networks n ON n.id = p.network_id "
        "WHERE p.id = $1 AND p.state = 'active'" + (" FOR UPDATE OF p" if lock else ""),
        port_id,
    )


async def port_ips(conn: asyncpg.Connection, port_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM port_ips WHERE port_id = $1", port_id))


async def fip_on(conn: asyncpg.Connection, port_id: uuid.UUID, address: str) -> uuid.UUID | None:
    """The floating IP associated with this fixed IP of the port, if any."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT id FROM floatingips WHERE port_id = $1 AND fixed_ip_address = $2::inet", port_id, address
    )


async def deleting_ports(conn: asyncpg.Connection, network_id: uuid.UUID) -> list[uuid.UUID]:
    """Ports of the network whose delete was acknowledged and waits for IPAM."""
    rows = await conn.fetch("SELECT id FROM ports WHERE network_id = $1 AND state = 'deleting'", network_id)
    return [r["id"] for r in rows]


async def routers_of(conn: asyncpg.Connection, port_id: uuid.UUID) -> set[uuid.UUID]:
    """The routers a port touches: as interface, gateway, or through a floating IP."""
    rows = await conn.fetch(
        """SELECT router_id AS id FROM router_ports WHERE port_id = $1
           UNION SELECT id FROM routers WHERE gw_port_id = $1
           UNION SELECT router_id FROM floatingips WHERE (port_id = $1 OR floating_port_id = $1)
                 AND router_id IS NOT NULL""",
        port_id,
    )
    return {r["id"] for r in rows}


async def fips_at(conn: asyncpg.Connection, port_id: uuid.UUID) -> list[asyncpg.Record]:
    """The floating IPs associated with the port (``id``, ``router_id``)."""
    return list(await conn.fetch("SELECT id, router_id FROM floatingips WHERE port_id = $1", port_id))


async def unassociate_fip(conn: asyncpg.Connection, fip_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE floatingips SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL, "
        "revision_number = revision_number + 1, updated_at = now() WHERE id = $1",
        fip_id,
    )


# ---------------------------------------------------------------- one port's writes


async def insert_port(conn: asyncpg.Connection, port: NewPort, mac: str) -> bool:
    """The row, state ``allocating``; false (and nothing written) when the MAC is taken."""
    return bool(
        await conn.fetchval(
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
    )


async def activate(conn: asyncpg.Connection, port_id: uuid.UUID) -> asyncpg.Record | None:
    """``allocating`` → ``active``; None when the row is not ``allocating`` any more."""
    return await conn.fetchrow(
        "UPDATE ports SET state = 'active', state_at = now(), created_at = now(), updated_at = now() "
        "WHERE id = $1 AND state = 'allocating' RETURNING *",
        port_id,
    )


async def add_ips(conn: asyncpg.Connection, port_id: uuid.UUID, ips: Iterable[Ip]) -> None:
    await conn.executemany(
        "INSERT INTO port_ips (port_id, subnet_id, ip_address, ipam_held) VALUES ($1, $2, $3::inet, $4)",
        [(port_id, s, ip, held) for s, ip, held in ips],
    )


async def replace_ips(conn: asyncpg.Connection, port_id: uuid.UUID, ips: Iterable[Ip]) -> None:
    await conn.execute("DELETE FROM port_ips WHERE port_id = $1", port_id)
    await add_ips(conn, port_id, ips)


async def update_port(conn: asyncpg.Connection, port_id: uuid.UUID, body: t.PortUpdateBody) -> None:
    """Set what the update names (``None`` keeps the value) and bump the revision."""
    await conn.execute(
        """UPDATE ports SET name = coalesce($2, name), admin_state_up = coalesce($3, admin_state_up),
               device_owner = coalesce($4, device_owner), device_id = coalesce($5, device_id),
               description = coalesce($6, description), tags = coalesce($7, tags),
               revision_number = revision_number + 1, updated_at = now()
           WHERE id = $1""",
        port_id,
        body.name,
        body.admin_state_up,
        body.device_owner,
        body.device_id,
        body.description,
        list(body.tags) if body.tags is not None else None,
    )


async def claim_allocating(conn: asyncpg.Connection, port_id: uuid.UUID) -> bool:
    """``allocating`` → ``deleting`` and ``abandoned`` (it never existed for anyone), atomically:
    true when this caller took the row."""
    return bool(
        await conn.fetchval(
            "UPDATE ports SET state = 'deleting', abandoned = true, state_at = now() "
            "WHERE id = $1 AND state = 'allocating' RETURNING true",
            port_id,
        )
    )


async def mark_deleting(conn: asyncpg.Connection, port_id: uuid.UUID) -> None:
    """``deleting``, and its addresses leave topology (IPAM frees them next)."""
    await conn.execute("UPDATE ports SET state = 'deleting', state_at = now() WHERE id = $1", port_id)
    await conn.execute("DELETE FROM port_ips WHERE port_id = $1", port_id)


async def lock_state(conn: asyncpg.Connection, port_id: uuid.UUID) -> str | None:
    return await conn.fetchval("SELECT state FROM ports WHERE id = $1 FOR UPDATE", port_id)  # type: ignore[no-any-return]


async def delete_port(conn: asyncpg.Connection, port_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("DELETE FROM ports WHERE id = $1 RETURNING *", port_id)


# ---------------------------------------------------------------- the batched create

_INSERT = """
INSERT INTO ports (id, network_id, project_id, name, mac_address, admin_state_up, status,
    device_owner, device_id, description, tags, state)
SELECT x.id, x.network_id, x.project_id, x.name, x.mac, x.up, x.status, x.owner, x.device, x.descr,
    ARRAY(SELECT jsonb_array_elements_text(x.tags::jsonb)), 'allocating'
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::macaddr[], $6::bool[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::text[])
     AS x(id, network_id, project_id, name, mac, up, status, owner, device, descr, tags)
ON CONFLICT (mac_address) DO NOTHING RETURNING id"""


async def insert_ports(
    conn: asyncpg.Connection, ports: Sequence[NewPort], macs: dict[uuid.UUID, str]
) -> set[uuid.UUID]:
    """Rows ``allocating`` with these MACs, in one statement; returns the ports inserted (the
    others' MACs are taken)."""
    rows = await conn.fetch(
        _INSERT,
        [p.id for p in ports],
        [p.network_id for p in ports],
        [p.project_id for p in ports],
        [p.name for p in ports],
        [macs[p.id] for p in ports],
        [p.admin_state_up for p in ports],
        [p.status for p in ports],
        [p.device_owner for p in ports],
        [p.device_id for p in ports],
        [p.description for p in ports],
        [json.dumps(list(p.tags)) for p in ports],
    )
    return {r["id"] for r in rows}


_ACTIVATE = """
WITH up AS (
    UPDATE ports SET state = 'active', state_at = $2, created_at = $2, updated_at = $2
    WHERE id = ANY($1::uuid[]) AND state = 'allocating' RETURNING id
), ips AS (
    INSERT INTO port_ips (port_id, subnet_id, ip_address, ipam_held)
    SELECT x.port_id, x.subnet_id, x.ip, x.held
    FROM unnest($3::uuid[], $4::uuid[], $5::inet[], $6::bool[]) AS x(port_id, subnet_id, ip, held)
    JOIN up ON up.id = x.port_id
), ev AS (
    INSERT INTO outbox (event_id, subject, payload, headers)
    SELECT e.event_id, e.subject, e.payload::jsonb, e.headers::jsonb
    FROM unnest($7::text[], $8::text[], $9::text[], $1::uuid[], $10::text[]) WITH ORDINALITY
         AS e(event_id, subject, payload, port_id, headers, n)
    JOIN up ON up.id = e.port_id ORDER BY e.n
)
SELECT array_agg(id) FROM up"""


async def activate_many(
    conn: asyncpg.Connection,
    port_ids: list[uuid.UUID],
    *,
    now: datetime,
    ips: list[tuple[uuid.UUID, uuid.UUID, str, bool]],
    events: list[Row],
) -> set[uuid.UUID]:
    """Rows ``active`` with their addresses (port, subnet, address, held in IPAM) and their events
    (one outbox row per port, in order), in one statement; returns the ports activated (the
    others were rolled back meanwhile)."""
    done = await conn.fetchval(
        _ACTIVATE,
        port_ids,
        now,
        [p for p, _, _, _ in ips],
        [s for _, s, _, _ in ips],
        [ip for _, _, ip, _ in ips],
        [h for _, _, _, h in ips],
        [str(e[0]) for e in events],
        [e[1] for e in events],
        [e[2] for e in events],
        [e[3] for e in events],
    )
    return set(done or ())
