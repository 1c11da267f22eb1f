"""Pure decisions about floating IPs (rule 62): the floating address and network, and what an
association needs — the caller's port, one IPv4 fixed address, a router that links that address's
subnet to the floating network, and no other floating IP of that network on the address."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from netaddr import IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, NotFound, TransientError
from scopenet.policy.rules import not_found, require_admin_for
from scopenet.services.topology import validate
from scopenet.services.topology.ports.rules import Want

Row = Mapping[str, Any]


def check_floating_address(ctx: CallContext, address: str | None) -> None:
    """Only the admin picks the floating address, and floating IPs are IPv4."""
    if address is None:
        return
    require_admin_for(ctx, "floating_ip_address", "create_floatingip")
    if validate.ip(address, "floating_ip_address").version != 4:
        raise BadRequest("Floating IPs are IPv4 only", field="floating_ip_address")


def floating_wants(body: t.FloatingIpCreateBody, *, network: Row | None, subnets: Sequence[Row]) -> list[Want]:
    """The address the floating port takes: on an IPv4 subnet of the external ``network`` (the
    given one, or the first with room), the given address if any."""
    if network is None:
        raise not_found("network", body.floating_network_id, field="floating_network_id")
    if not network["router_external"]:
        raise BadRequest(
            f"Bad floatingip request: Network {body.floating_network_id} is not a valid external network.",
            field="floating_network_id",
        )
    v4 = [s for s in subnets if s["ip_version"] == 4]
    if not v4:
        raise BadRequest(
            f"Bad floatingip request: Network {body.floating_network_id} does not contain any IPv4 subnet.",
            field="floating_network_id",
        )
    if body.subnet_id is not None:
        chosen = [s for s in v4 if s["id"] == body.subnet_id]
        if not chosen:
            raise BadRequest(
                f"Bad floatingip request: subnet {body.subnet_id} is not an IPv4 subnet of network "
                f"{body.floating_network_id}.",
                field="subnet_id",
            )
        v4 = chosen
    if body.floating_ip_address is not None:
        addr = validate.ip(body.floating_ip_address, "floating_ip_address")
        hit = [s for s in v4 if addr in IPNetwork(str(s["cidr"]))]
        if not hit:
            raise BadRequest(
                f"IP address {addr} is not a valid IP for any of the subnets on the network "
                f"{body.floating_network_id}.",
                type="InvalidIpForNetwork",
                field="floating_ip_address",
            )
        return [Want(hit[0]["id"], str(addr))]
    return [Want(v4[0]["id"], candidates=tuple(s["id"] for s in v4[1:]))]


def check_port(ctx: CallContext, port: Row | None, *, port_id: UUID, owner: str) -> Row:
    """The fixed port: seen by the caller (its own, or on its network), and — unless the admin
    acts — of the floating IP's own project."""
    if port is None or not (ctx.is_admin or ctx.project_id in (port["project_id"], port["net_owner"])):
        raise not_found("port", port_id, field="port_id")
    if not ctx.is_admin and port["project_id"] != owner:
        raise BadRequest(
            f"Cannot create floating IP and bind it to Port {port_id}, since that port is owned by a different tenant.",
            field="port_id",
        )
    return port


def fixed_address(port_id: UUID, ips: Sequence[Row], fixed_ip: str | None) -> tuple[str, UUID]:
    """(address, its subnet): the requested IPv4 fixed address of the port, or its only one."""
    v4 = [i for i in ips if IPNetwork(str(i["ip_address"])).version == 4]
    if fixed_ip is not None:
        addr = validate.ip(fixed_ip, "fixed_ip_address")
        if addr.version != 4:
            raise BadRequest(
                f"Bad floatingip request: Cannot process floating IP association with "
                f"{fixed_ip}, since that is not an IPv4 address.",
                field="fixed_ip_address",
            )
        hit = [i for i in v4 if str(i["ip_address"]).split("/")[0] == str(addr)]
        if not hit:
            raise BadRequest(f"Port {port_id} does not have fixed ip {fixed_ip}", field="fixed_ip_address")
    else:
        if not v4:
            raise BadRequest(
                f"Bad floatingip request: Cannot add floating IP to port {port_id} that has no fixed IPv4 addresses.",
                field="port_id",
            )
        if len(v4) > 1:
            raise BadRequest(
                f"Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 "
                "address when assigning a floating IP.",
                field="fixed_ip_address",
            )
        hit = v4
    return str(hit[0]["ip_address"]).split("/")[0], hit[0]["subnet_id"]


def check_router(router: UUID | None, *, network_id: UUID, subnet_id: UUID, port_id: UUID) -> UUID:
    """A router must link the fixed address's subnet to the floating network."""
    if router is None:
        raise NotFound(
            f"External network {network_id} is not reachable from subnet {subnet_id}. "
            f"Therefore, cannot associate Port {port_id} with a Floating IP.",
            type="ExternalGatewayForFloatingIPNotFound",
            field="port_id",
        )
    return router


def check_address_free(other_state: str | None, *, port_id: UUID, address: str, network_id: UUID) -> None:
    """No other floating IP of the network on the fixed address (``other_state``: its port's state)."""
    if other_state is None:
        return
    if other_state != "active":
        # A create still running, or one that died half-way and waits for the reconciler's
        # rollback: no client can see it, so "already has a floating IP" would be a riddle.
        raise TransientError(
            f"A floating IP for fixed IP {address} of port {port_id} is being created or rolled back; try again"
        )
    raise Conflict(
        f"Cannot associate floating IP with port {port_id} using fixed IP {address}, as that fixed "
        f"IP already has a floating IP on external network {network_id}.",
        type="FloatingIPPortAlreadyAssociated",
        field="port_id",
    )
