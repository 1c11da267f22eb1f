"""Pure decisions about port forwardings (Neutron's ``pf_plugin``): protocol, ports and ranges,
the internal address, and the conflicts with whole floating IPs and with other forwardings.

Neutron answers a collision of ports with 400, and so does scopenet; the database's exclusion
constraints decide races the same way (``store.insert``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from netaddr import IPAddress

from scopenet.contracts import portforwarding as pf
from scopenet.contracts.errors import BadRequest, Conflict, InvalidInput
from scopenet.services.topology import validate

Row = Mapping[str, Any]

PROTOCOLS: Mapping[str, pf.PortForwardingProtocol] = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "dccp": "dccp",
    "33": "dccp",
    "sctp": "sctp",
    "132": "sctp",
}
"""Names (any case) and numbers of the protocols that have ports."""
PORTLESS = frozenset({"icmp", "1", "ipv6-icmp", "icmpv6", "58"})


@dataclass(frozen=True)
class Ports:
    """Both sides as inclusive ranges (a single port is ``N:N``)."""

    external: tuple[int, int]
    internal: tuple[int, int]


def protocol(value: str) -> pf.PortForwardingProtocol:
    key = value.strip().lower()
    if key in PROTOCOLS:
        return PROTOCOLS[key]
    if key in PORTLESS:
        raise BadRequest(
            f"Bad port_forwarding request: protocol {value} has no ports to forward; "
            "use tcp, udp, sctp or dccp, or a floating IP associated with the port.",
            field="protocol",
        )
    raise InvalidInput(
        f"Invalid input for protocol. Reason: {value!r} is not in ['dccp', 'sctp', 'tcp', 'udp'].", field="protocol"
    )


def _range(value: str, field: str) -> tuple[int, int]:
    """``"N"`` or ``"N:M"`` with 1 <= N <= M <= 65535 (Neutron's ``type:port_range``)."""
    parts = value.split(":")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, 0)
    except ValueError:
        lo = hi = 0
    if not (1 <= lo <= hi <= 65535):
        raise InvalidInput(
            f"Invalid input for {field}. Reason: Invalid port range '{value}': ports are 1 to 65535, "
            "the first not above the last.",
            field=field,
        )
    return lo, hi


def _side(port: int | None, port_range: str | None, side: str) -> tuple[int, int]:
    single, ranged = f"{side}_port", f"{side}_port_range"
    if port is not None and port_range is not None:
        raise BadRequest(
            f"Bad port_forwarding request: give {single} or {ranged}, not both.",
            field=ranged,
        )
    if port is not None:
        if not 1 <= port <= 65535:
            raise InvalidInput(
                f"Invalid input for {single}. Reason: {port} is not in range 1 through 65535.", field=single
            )
        return port, port
    if port_range is not None:
        return _range(port_range, ranged)
    raise BadRequest(
        f"Bad port_forwarding request: {single} or {ranged} is required.",
        field=single,
    )


def ports(
    *, external_port: int | None, external_range: str | None, internal_port: int | None, internal_range: str | None
) -> Ports:
    """Both sides, and their relation: N to N, or N to 1."""
    ext = _side(external_port, external_range, "external")
    inner = _side(internal_port, internal_range, "internal")
    if inner[0] != inner[1] and inner[1] - inner[0] != ext[1] - ext[0]:
        raise BadRequest(
            "Bad port_forwarding request: Invalid ranges of internal and/or external ports. "
            "The relation between internal and external ports must be N-N or 1-N",
            field="internal_port_range",
        )
    return Ports(external=ext, internal=inner)


def internal_subnet(port_id: UUID, ips: Sequence[Row], address: str) -> UUID:
    """The subnet of ``address`` among the port's IPv4 fixed addresses (Neutron's message otherwise)."""
    addr = validate.ip(address, "internal_ip_address")
    v4 = [i for i in ips if IPAddress(str(i["ip_address"]).split("/")[0]).version == 4]
    if not v4:
        raise BadRequest(
            f"Bad port_forwarding request: Requested internal port {port_id} must allocate an IPv4 address at least.",
            field="internal_port_id",
        )
    for i in v4:
        if IPAddress(str(i["ip_address"]).split("/")[0]) == addr:
            return UUID(str(i["subnet_id"]))
    fixed = ", ".join(str(i["ip_address"]).split("/")[0] for i in v4)
    raise BadRequest(
        f"Bad port_forwarding request: Requested internal IP address {address} is not suitable for internal "
        f"neutron port {port_id}, as its fixed_ips are {fixed}",
        field="internal_ip_address",
    )


def no_router(*, network_id: UUID, subnet_id: UUID, port_id: UUID, fip_id: UUID) -> BadRequest:
    return BadRequest(
        f"Bad port_forwarding request: External network {network_id} is not reachable from subnet "
        f"{subnet_id}. Cannot set Port forwarding for port {port_id} with Floating IP {fip_id}",
        field="internal_port_id",
    )


def check_router_match(fip: Row, router: UUID, *, port_id: UUID) -> None:
    """A floating IP forwards through one router: the one its first forwarding chose."""
    if fip["router_id"] is not None and fip["router_id"] != router:
        raise BadRequest(
            f"Bad port_forwarding request: The Floating IP {fip['id']} had been set on router "
            f"{fip['router_id']}, the internal Neutron port {port_id} can not reach it",
            field="internal_port_id",
        )


def check_fip_free(fip: Row, *, port_id: UUID, address: str) -> None:
    """A floating IP associated with a port forwards all of its ports already."""
    if fip["port_id"] is not None:
        raise Conflict(
            f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) with port {port_id} "
            f"using fixed IP {address}, as that fixed IP already has a floating IP on external network "
            f"{fip['floating_network_id']}.",
            type="FloatingIPPortAlreadyAssociated",
        )


def check_port_unbound(bound: Row | None, *, port_id: UUID, address: str) -> None:
    """A port with a whole floating IP takes no port forwarding (Neutron's ``PortHasBindingFloatingIP``)."""
    if bound is not None:
        raise Conflict(
            f"Cannot create port forwarding to floating IP {bound['floating_ip_address']} ({bound['id']}) "
            f"with port {port_id} using fixed IP {address}, as that port already has a binding floating IP.",
            type="PortHasBindingFloatingIP",
            field="internal_port_id",
        )


def fip_keeps_router(*, has_forwardings: bool, port_id: UUID | None) -> bool:
    """Whether a floating IP keeps its router after losing a forwarding: Neutron clears the router
    with the last forwarding, unless the floating IP is associated with a port (whose router it is)."""
    return has_forwardings or port_id is not None


def fip_in_use(fip_id: UUID) -> Conflict:
    """Associating, or deleting, a floating IP that port forwardings use."""
    return Conflict(f"Floating IP {fip_id} in use by Port Forwarding resources.", type="FipInUseByPortForwarding")


def _fmt(r: tuple[int, int]) -> str:
    return f"{r[0]}:{r[1]}"


def check_collisions(
    others: Sequence[Row], *, fip_id: UUID, port_id: UUID, address: str, proto: str, want: Ports
) -> None:
    """No other forwarding of the floating IP and protocol overlaps the external ports, none of the
    internal port, address and protocol the internal ones (the constraints decide a race the same)."""
    for o in others:
        if o["protocol"] != proto:
            continue
        ext = (o["external_port_start"], o["external_port_end"])
        if o["floatingip_id"] == fip_id and ext[0] <= want.external[1] and want.external[0] <= ext[1]:
            raise collision("external_port_range", ext, want.external)
        inner = (o["internal_port_start"], o["internal_port_end"])
        same_socket = o["internal_port_id"] == port_id and str(o["internal_ip_address"]).split("/")[0] == address
        if same_socket and inner[0] <= want.internal[1] and want.internal[0] <= inner[1]:
            raise collision("internal_port_range", inner, want.internal)


def collision(key: str, existing: tuple[int, int], new: tuple[int, int]) -> BadRequest:
    return BadRequest(
        f"Bad port_forwarding request: There is a port collision with the {key}. The following ranges "
        f"collide: {_fmt(existing)} and {_fmt(new)}",
        field=key,
    )


def collision_race(key: str) -> BadRequest:
    """What a concurrent request that won the exclusion constraint leaves for the loser."""
    return BadRequest(
        f"Bad port_forwarding request: There is a port collision with the {key}: another port forwarding "
        "took overlapping ports at the same time.",
        field=key,
    )


def view(row: Row) -> pf.PortForwarding:
    ext = (row["external_port_start"], row["external_port_end"])
    inner = (row["internal_port_start"], row["internal_port_end"])
    return pf.PortForwarding(
        id=row["id"],
        floatingip_id=row["floatingip_id"],
        project_id=row["project_id"],
        protocol=row["protocol"],
        external_port=ext[0] if ext[0] == ext[1] else None,
        internal_port=inner[0] if inner[0] == inner[1] else None,
        external_port_range=_fmt(ext),
        internal_port_range=_fmt(inner),
        internal_ip_address=str(row["internal_ip_address"]).split("/")[0],
        internal_port_id=row["internal_port_id"],
        description=row["description"],
    )
