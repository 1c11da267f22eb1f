"""Pure decisions about ports: who may create or change one, which addresses a port asks IPAM for
(rules 54-58: Neutron's fixed-IP semantics), and how a new list of fixed IPs differs from the
current one. Subnets arrive as mappings (database rows, or dicts in tests) with ``id``,
``ip_version``, ``cidr`` and ``ipv6_address_mode``."""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from netaddr import EUI, AddrFormatError, IPAddress, IPNetwork, mac_unix_expanded

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, InvalidInput, NotAuthorized
from scopenet.policy.rules import not_found
from scopenet.services.topology import validate
from scopenet.services.topology.networks.rules import NetAccess
from scopenet.services.topology.subnets.rules import auto_address

Row = Mapping[str, Any]

#: Ports of instances (Neutron's compute_device, baremetal_device, manila_device rules).
INSTANCE_OWNERS = ("compute:", "baremetal:", "manila:")


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


# ---------------------------------------------------------------- MAC and SLAAC addresses


def mac(value: str) -> str:
    try:
        parsed = EUI(value)
        if parsed.version != 48:
            raise ValueError(value)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidInput(
            f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address.", field="mac_address"
        ) from None
    if parsed.words[0] & 1 or int(parsed) == 0:
        raise InvalidInput(
            f"Invalid input for mac_address. Reason: '{value}' is not a valid unicast MAC address.", field="mac_address"
        )
    parsed.dialect = mac_unix_expanded
    return str(parsed)


def random_mac() -> str:
    """Neutron's base MAC ``fa:16:3e:00:00:00`` with the last three octets random."""
    return "fa:16:3e:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


def eui64(cidr_text: str, mac_address: str) -> str:
    """The SLAAC address of a MAC in a /64 (what a host on an auto-address subnet configures)."""
    return str(EUI(mac_address).ipv6(IPNetwork(cidr_text).first))


def is_net_or_broadcast(addr: IPAddress, net: IPNetwork) -> bool:
    return addr.version == 4 and net.prefixlen <= 30 and int(addr) in (net.first, net.last)


# ---------------------------------------------------------------- fixed-IP planning


@dataclass(frozen=True)
class Plan:
    """Wanted addresses; ``eui64`` subnets get the SLAAC address of the port's MAC (known only
    once the row holds its MAC)."""

    wants: tuple[Want, ...]
    eui64: tuple[uuid.UUID, ...] = ()

    def resolve(self, mac_address: str, subnets: Mapping[uuid.UUID, Row]) -> list[Want]:
        return [*self.wants, *(Want(s, eui64(str(subnets[s]["cidr"]), mac_address)) for s in self.eui64)]


def default_plan(subnets: Sequence[Row], *, router_port: bool) -> Plan:
    """No ``fixed_ips`` given: one IPv4 address (first subnet with room), one from the stateful or
    no-mode IPv6 subnets, and the SLAAC address on every auto-address subnet (not for router ports)."""
    wants: list[Want] = []
    v4 = [s["id"] for s in subnets if s["ip_version"] == 4]
    v6 = [s["id"] for s in subnets if s["ip_version"] == 6 and not auto_address(s)]
    for family in (v4, v6):
        if family:
            wants.append(Want(family[0], candidates=tuple(family[1:])))
    eui = () if router_port else tuple(s["id"] for s in subnets if s["ip_version"] == 6 and auto_address(s))
    return Plan(tuple(wants), eui)


def foreign_subnets(requests: Sequence[t.FixedIpRequest], subnets: Sequence[Row]) -> list[uuid.UUID]:
    """Subnets named in ``requests`` that are not the network's: ``requested_plan`` needs to know
    which of them exist at all (404 for an unknown one, 400 for another network's)."""
    mine = {s["id"] for s in subnets}
    return [r.subnet_id for r in requests if r.subnet_id is not None and r.subnet_id not in mine]


def requested_plan(
    network_id: uuid.UUID,
    requests: Sequence[t.FixedIpRequest],
    subnets: Sequence[Row],
    *,
    mac: str | None,
    router_port: bool,
    existing: Collection[uuid.UUID] = (),
) -> Plan:
    """The addresses of explicit ``fixed_ips`` on the network's ``subnets``; ``existing``: which
    of the ``foreign_subnets`` exist elsewhere."""
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
            found = by_id.get(r.subnet_id)
            if found is None:
                if r.subnet_id not in existing:
                    raise not_found("subnet", r.subnet_id, field="fixed_ips")
                raise InvalidInput(
                    f"Invalid input for operation: Failed to create port on network {network_id}, because "
                    f"fixed_ips included invalid subnet {r.subnet_id}.",
                    field="fixed_ips",
                )
            s = found
            if addr is not None and addr not in IPNetwork(str(s["cidr"])):
                raise BadRequest(
                    f"IP address {addr} is not a valid IP for the specified subnet.",
                    type="InvalidIpForSubnet",
                    field="fixed_ips",
                )
        else:
            assert addr is not None
            hit = next((x for x in subnets if addr in IPNetwork(str(x["cidr"]))), None)
            if hit is None or is_net_or_broadcast(addr, IPNetwork(str(hit["cidr"]))):
                raise BadRequest(
                    f"IP address {addr} is not a valid IP for any of the subnets on the network {network_id}.",
                    type="InvalidIpForNetwork",
                    field="fixed_ips",
                )
            s = hit
        if auto_address(s) and not router_port:
            expected = eui64(str(s["cidr"]), mac) if mac else None
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


def diff_fixed_ips(current: Sequence[Row], wants: Sequence[Want]) -> tuple[list[Row], list[Want]]:
    """Addresses to keep (asked again, or a subnet-only request where the port already has one)
    and addresses to get. ``current``: the port's addresses (``subnet_id``, ``ip_address``)."""
    keep: list[Row] = []
    add: list[Want] = []
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


def dropped(current: Sequence[Row], keep: Sequence[Row]) -> list[Row]:
    """The current addresses an update lets go."""
    return [c for c in current if c not in keep]


# ---------------------------------------------------------------- policy


def check_create(ctx: CallContext, body: t.PortCreateBody, net: NetAccess | None, *, mac_given: bool) -> None:
    """A caller may create a port on a network it owns or that is shared with it; only the
    network's owner chooses a service device owner, the MAC or addresses."""
    if net is None or not net.visible(ctx.project_id, ctx.is_admin):
        raise not_found("network", body.network_id, field="network_id")
    net_owner = ctx.is_admin or net.project_id == ctx.project_id
    if not net_owner and not net.shared(ctx.project_id):
        raise NotAuthorized("rule:create_port is disallowed by policy", field="network_id")
    if not net_owner:
        for attr, bad in (
            ("device_owner", body.device_owner.startswith("network:")),
            ("mac_address", mac_given),
            ("fixed_ips", any(r.ip_address for r in body.fixed_ips or ())),
        ):
            if bad:
                raise NotAuthorized(f"(rule:create_port:{attr}) is disallowed by policy", field=attr)


def check_editable(ctx: CallContext, port_id: uuid.UUID, row: Row | None, action: str) -> None:
    """``row``: the port with its network's owner (``net_owner``), or None when there is none."""
    if row is None or not (ctx.is_admin or ctx.project_id in (row["project_id"], row["net_owner"])):
        raise not_found("port", port_id)
    if not ctx.is_admin and row["project_id"] != ctx.project_id:
        # The network's owner sees other projects' ports on its network but may not change them
        # (Neutron's update_port is the port's project's); it may delete them, though not an
        # instance's (delete_port: "not rule:compute_device and ...").
        if action != "delete" or str(row["device_owner"]).startswith(INSTANCE_OWNERS):
            raise NotAuthorized(f"rule:{action}_port is disallowed by policy")


def check_update(
    ctx: CallContext, port_id: uuid.UUID, row: Row, body: t.PortUpdateBody, given: Set[str], service: str | None
) -> None:
    """``given``: the attributes set to a value; ``service``: the owner that manages the port
    (router, gateway, floating IP), if any."""
    if service and given & {"device_owner", "device_id", "fixed_ips"}:
        raise Conflict(f"Port {port_id} is in use by {service}; change it through its owner.", type="PortInUse")
    net_owner = ctx.is_admin or row["net_owner"] == ctx.project_id
    if "device_owner" in given and str(body.device_owner).startswith("network:") and not net_owner:
        raise NotAuthorized("(rule:update_port:device_owner) is disallowed by policy", field="device_owner")
    if "fixed_ips" in given and not net_owner:  # update_port:fixed_ips is the network owner's, even by subnet only
        raise NotAuthorized("(rule:update_port:fixed_ips) is disallowed by policy", field="fixed_ips")


def check_delete(port_id: uuid.UUID, service: str | None) -> None:
    if service is not None:
        raise Conflict(
            f"Port {port_id} cannot be deleted directly via the port API: has device owner {service}.",
            type="ServicePortInUse",
        )


def fip_in_use(port_id: uuid.UUID, address: object, fip: uuid.UUID) -> Conflict:
    return Conflict(
        f"Fixed IP {address} of port {port_id} is used by floating IP {fip}", type="PortInUse", field="fixed_ips"
    )
