"""``network_ip_availability.list``: Neutron's network-ip-availability (docs/neutron.md#ip-availability).

Topology has everything it needs in its own tables: networks and subnet names, each subnet's
allocation pools, and every fixed IP (``port_ips``, a copy of IPAM's address allocations, the
gateway of a router interface included, as Neutron counts it). Counted as Neutron 29 does
(``network_ip_availability_db``): a subnet's total is the size of its allocation pools, or of its
whole cidr when it has none; used is its fixed IPs; a network sums its subnets; networks without
subnets are listed with zeros unless an ``ip_version`` filter asks for subnets.

With Neutron's ``network-ip-availability-details`` counts beside them (``ip_availability_details``
per network and per subnet: the cidr's size, less network and broadcast for IPv4, and the addresses
used inside the allocation pools).

Admin only, with Neutron's way of saying no: a list shows other callers nothing (the policy
filters every item out), and the API answers their ``show`` with a 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
from netaddr import IPNetwork, IPRange

from scopenet.contracts import topology as t
from scopenet.contracts.base import ListCommand
from scopenet.contracts.errors import BadRequest
from scopenet.contracts.filters import id_filter
from scopenet.store.db import db_errors

_QUERY = """
SELECT n.id AS network_id, n.name AS network_name, n.project_id,
       s.id AS subnet_id, s.name AS subnet_name, s.cidr, s.ip_version, s.allocation_pools,
       (SELECT count(*) FROM port_ips i WHERE i.subnet_id = s.id) AS used_ips,
       (SELECT count(*) FROM port_ips i WHERE i.subnet_id = s.id AND EXISTS (
            SELECT 1 FROM jsonb_array_elements(s.allocation_pools) p
            WHERE i.ip_address BETWEEN (p->>'start')::inet AND (p->>'end')::inet)) AS used_in_pools
FROM networks n LEFT JOIN subnets s ON s.network_id = n.id AND s.state = 'active'
WHERE ($1::uuid[] IS NULL OR n.id = ANY($1::uuid[]))
  AND ($2::text[] IS NULL OR n.name = ANY($2::text[]))
  AND ($3::text[] IS NULL OR n.project_id = ANY($3::text[]))
  AND ($4::smallint[] IS NULL OR s.ip_version = ANY($4::smallint[]))
ORDER BY n.created_at, n.id, s.created_at, s.id
"""


def _texts(value: Any) -> list[str] | None:
    if value is None or value == "" or value == []:
        return None
    out = [str(v) for v in (value if isinstance(value, list) else [value])]
    if any("\x00" in v for v in out):  # Postgres text holds no NUL: no name or project has one
        raise BadRequest("Invalid filter value: NUL characters are not allowed", field="filters")
    return out


def parse_filters(filters: Mapping[str, Any]) -> tuple[Any, ...]:
    """Neutron's supported filters (others are ignored, as Neutron ignores them): the query's arguments."""
    ids = id_filter(filters, "network_id", "network_id filter must be UUIDs")
    projects = (_texts(filters.get("project_id")) or []) + (_texts(filters.get("tenant_id")) or [])
    versions = None
    if (raw := _texts(filters.get("ip_version"))) is not None:
        if any(v not in ("4", "6") for v in raw):
            raise BadRequest(f"Invalid input for ip_version. Reason: {raw[0]!r} is not in [4, 6].", field="ip_version")
        versions = [int(v) for v in raw]
    return ids, _texts(filters.get("network_name")), projects or None, versions


def pools_size(pools: Sequence[Mapping[str, str]]) -> int:
    return sum(int(IPRange(p["start"], p["end"]).size) for p in pools)


def subnet_total(cidr: str, pools: Sequence[Mapping[str, str]]) -> int:
    """Addresses in the allocation pools; the whole cidr (network and broadcast included) without any."""
    return pools_size(pools) if pools else int(IPNetwork(cidr).size)


def details(cidr: str, pools: Sequence[Mapping[str, str]], used: int, used_in_pools: int) -> t.IpAvailabilityDetails:
    net = IPNetwork(cidr)
    return t.IpAvailabilityDetails(
        total_ips_in_subnet=int(net.size) - (2 if net.version == 4 else 0),
        total_ips_in_allocation_pool=pools_size(pools),
        used_ips_in_subnet=used,
        used_ips_in_allocation_pool=used_in_pools,
    )


_DETAILS = ("total_ips_in_subnet", "total_ips_in_allocation_pool", "used_ips_in_subnet", "used_ips_in_allocation_pool")


def assemble(rows: Iterable[Mapping[str, Any]]) -> list[t.NetworkIpAvailability]:
    """One entry per network, its subnets in creation order, totals summed up."""
    nets: dict[Any, dict[str, Any]] = {}
    for r in rows:
        net = nets.setdefault(
            r["network_id"],
            {
                "network_id": r["network_id"],
                "network_name": r["network_name"],
                "project_id": r["project_id"],
                "tenant_id": r["project_id"],
                "total_ips": 0,
                "used_ips": 0,
                "subnet_ip_availability": [],
                "ip_availability_details": dict.fromkeys(_DETAILS, 0),
            },
        )
        if r["subnet_id"] is None:
            continue
        cidr, pools = str(r["cidr"]), r["allocation_pools"]
        total = subnet_total(cidr, pools)
        more = details(cidr, pools, r["used_ips"], r["used_in_pools"])
        net["subnet_ip_availability"].append(
            t.SubnetIpAvailability(
                subnet_id=r["subnet_id"],
                subnet_name=r["subnet_name"],
                cidr=str(r["cidr"]),
                ip_version=r["ip_version"],
                total_ips=total,
                used_ips=r["used_ips"],
                ip_availability_details=more,
            )
        )
        net["total_ips"] += total
        net["used_ips"] += r["used_ips"]
        for key in _DETAILS:
            net["ip_availability_details"][key] += getattr(more, key)
    return [t.NetworkIpAvailability(**n) for n in nets.values()]


class IpAvailability:
    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db

    async def list(self, cmd: ListCommand) -> t.NetworkIpAvailabilityList:
        if not cmd.context.is_admin:
            return t.NetworkIpAvailabilityList(network_ip_availabilities=[])
        args = parse_filters(cmd.filters)
        async with db_errors(), self.db.acquire() as conn:
            rows = await conn.fetch(_QUERY, *args)
        return t.NetworkIpAvailabilityList(network_ip_availabilities=assemble(rows))
