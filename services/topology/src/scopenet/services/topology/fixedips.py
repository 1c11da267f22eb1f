"""Which addresses a port asks IPAM for (SPEC §1.6, §2.J rules 54-58, §3.4)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from netaddr import IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.errors import BadRequest, InvalidInput
from scopenet.services.topology import store, validate
from scopenet.services.topology.portsaga import Want


@dataclass(frozen=True)
class Plan:
    """Wanted addresses; ``eui64`` subnets get the SLAAC address of the port's MAC (known only
    once the row holds its MAC)."""

    wants: tuple[Want, ...]
    eui64: tuple[uuid.UUID, ...] = ()

    def resolve(self, mac: str, subnets: dict[uuid.UUID, asyncpg.Record]) -> list[Want]:
        return [*self.wants, *(Want(s, validate.eui64(str(subnets[s]["cidr"]), mac)) for s in self.eui64)]


def _auto(s: asyncpg.Record) -> bool:
    return s["ipv6_address_mode"] in validate.AUTO_ADDRESS_MODES


def default_plan(subnets: Sequence[asyncpg.Record], *, router_port: bool) -> Plan:
    """No ``fixed_ips`` given: one IPv4 address (first subnet with room), one from the stateful or
    no-mode IPv6 subnets, and the SLAAC address on every auto-address subnet (not for router ports)."""
    wants: list[Want] = []
    v4 = [s["id"] for s in subnets if s["ip_version"] == 4]
    v6 = [s["id"] for s in subnets if s["ip_version"] == 6 and not _auto(s)]
    for family in (v4, v6):
        if family:
            wants.append(Want(family[0], candidates=tuple(family[1:])))
    eui = () if router_port else tuple(s["id"] for s in subnets if s["ip_version"] == 6 and _auto(s))
    return Plan(tuple(wants), eui)


async def requested_plan(
    conn: asyncpg.Connection,
    network_id: uuid.UUID,
    requests: Sequence[t.FixedIpRequest],
    subnets: Sequence[asyncpg.Record],
    *,
    mac: str | None,
    router_port: bool,
) -> Plan:
    by_id = {s["id"]: s for s in subnets}
    if requests and not subnets:
        raise BadRequest(f"Network {network_id} has no subnets to allocate fixed IPs from.", field="fixed_ips")
    wants: list[Want] = []
    eui: list[uuid.UUID] = []
    seen: set[str] = set()
    for r in requests:
        if r.subnet_id is None and r.ip_address is None:
            raise InvalidInput(
                "Invalid input for fixed_ips. Reason: a subnet_id or an ip_address is required.", field="fixed_ips"
            )
        addr = validate.ip(r.ip_address, "fixed_ips") if r.ip_address is not None else None
        if r.subnet_id is not None:
            s = by_id.get(r.subnet_id)
            if s is None:
                if await store.subnet_any(conn, r.subnet_id) is None:
                    raise store_not_found(r.subnet_id)
                raise InvalidInput(
                    f"Invalid input for operation: Failed to create port on network {network_id}, because "
                    f"fixed_ips included invalid subnet {r.subnet_id}.",
                    field="fixed_ips",
                )
            if addr is not None and addr not in IPNetwork(str(s["cidr"])):
                raise BadRequest(
                    f"IP address {addr} is not a valid IP for the specified subnet.",
                    type="InvalidIpForSubnet",
                    field="fixed_ips",
                )
        else:
            assert addr is not None
            s = next((x for x in subnets if addr in IPNetwork(str(x["cidr"]))), None)
            if s is None or validate.is_net_or_broadcast(addr, IPNetwork(str(s["cidr"]))):
                raise BadRequest(
                    f"IP address {addr} is not a valid IP for any of the subnets on the network {network_id}.",
                    type="InvalidIpForNetwork",
                    field="fixed_ips",
                )
        if _auto(s) and not router_port:
            expected = validate.eui64(str(s["cidr"]), mac) if mac else None
            if addr is not None and str(addr) != expected:
                raise BadRequest(
                    f"IPv6 address {addr} cannot be directly assigned to a port on subnet {s['id']} as the "
                    "subnet is configured for automatic addresses",
                    type="AllocationOnAutoAddressSubnet",
                    field="fixed_ips",
                )
            if addr is None:
                eui.append(s["id"])
                continue
        if addr is not None:
            if str(addr) in seen:
                raise InvalidInput(
                    f"Invalid input for fixed_ips. Reason: Duplicate IP address '{addr}'.", field="fixed_ips"
                )
            seen.add(str(addr))
        wants.append(Want(s["id"], str(addr) if addr is not None else None))
    return Plan(tuple(wants), tuple(eui))


def store_not_found(subnet_id: uuid.UUID) -> Exception:
    from scopenet.policy.rules import not_found

    return not_found("subnet", subnet_id, field="fixed_ips")
