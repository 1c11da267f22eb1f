"""Pure decisions about routers: who may touch a router, interface and gateway checks, subnet
overlap on a router, static route next hops, what removing an interface must undo.

Rows come in as mappings (asyncpg records in the service, dicts in the tests); nothing here does
I/O. Rule numbers follow Neutron's router behaviour as the project documents it (59: gateway
network and addresses; 60: no overlapping subnets on one router; 61: an interface in use stays).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from uuid import UUID

from netaddr import IPAddress, IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, InvalidInput, NotFound
from scopenet.policy.rules import not_found, require_admin_for, require_owner
from scopenet.services.topology import validate
from scopenet.services.topology.ports.rules import Want

Row = Mapping[str, Any]
R = TypeVar("R", bound=Row)

GW = "external_gateway_info"


@dataclass(frozen=True)
class Changes:
    """A router update's own attributes, applied with whatever the gateway needs."""

    name: str | None = None
    admin_state_up: bool | None = None
    description: str | None = None
    tags: list[str] | None = None
    routes: list[dict[str, str]] | None = None
    enable_snat: bool | None = None
    if_revision: int | None = None
    """The update's If-Match, checked again where the change is applied."""


# ---------------------------------------------------------------- the router itself


def check_router(ctx: CallContext, row: R | None, router_id: UUID, action: str) -> R:
    """The (locked) router row, when the caller sees it and may ``action`` it."""
    if row is None or not (ctx.is_admin or row["project_id"] == ctx.project_id):
        raise not_found("router", router_id)
    require_owner(ctx, row["project_id"], action, "router")
    return row


def gateway_policy(ctx: CallContext, gw: t.ExternalGatewayInfoRequest | None, action: str) -> None:
    """SNAT and explicit external addresses are the admin's to set."""
    if gw is None:
        return
    if "enable_snat" in gw.model_fields_set:
        require_admin_for(ctx, f"{GW}:enable_snat", action)
    if gw.external_fixed_ips is not None:
        require_admin_for(ctx, f"{GW}:external_fixed_ips", action)


def check_no_fips(router_id: UUID, fip_id: UUID | None) -> None:
    """A router's gateway cannot move or go while floating IPs need it."""
    if fip_id is not None:
        raise Conflict(
            f"Gateway cannot be updated for router {router_id}, since a gateway to external network is "
            f"required by one or more floating IPs (e.g. {fip_id}).",
            type="RouterExternalGatewayInUseByFloatingIp",
        )


def check_unused(router_id: UUID, ports_and_fips: int) -> None:
    if ports_and_fips:
        raise Conflict(f"Router {router_id} still has ports", type="RouterInUse")


def check_nexthops(routes: Sequence[Mapping[str, str]], cidrs: Sequence[str], own_ips: Collection[str] = ()) -> None:
    """Every extra route's next hop is on a subnet where the router has an address (``cidrs``: its
    interfaces' and its gateway port's), and is none of the router's own addresses (``own_ips``).
    Neutron: docs/neutron.md#extra-routes (its message quotes the whole list of routes)."""
    nets = [IPNetwork(c) for c in cidrs]
    own = {IPAddress(str(i)) for i in own_ips}
    listed = [dict(r) for r in routes]
    for r in routes:
        hop = validate.ip(r["nexthop"], "routes")
        reason = None
        if not any(hop in n for n in nets):
            reason = "the nexthop is not connected with router"
        elif hop in own:
            reason = "the nexthop is used by router"
        if reason is not None:
            raise BadRequest(f"Invalid format for routes: {listed}, {reason}", type="InvalidRoutes", field="routes")


def check_route_count(router_id: UUID, routes: Sized, limit: int) -> None:
    """Neutron's ``max_routes``: a router holds at most ``limit`` extra routes."""
    if len(routes) > limit:
        raise BadRequest(
            f"Unable to complete operation for {router_id}. The number of routes exceeds the maximum {limit}.",
            type="RoutesExhausted",
            field="routes",
        )


def add_routes(old: Sequence[Mapping[str, str]], add: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """``add_extraroutes``: the union, keeping the existing order; a route already there (the same
    destination and nexthop) is merged, not an error. Same destination with another nexthop is a
    route of its own (Neutron keeps both)."""
    out = [{"destination": r["destination"], "nexthop": r["nexthop"]} for r in old]
    for r in add:
        item = {"destination": r["destination"], "nexthop": r["nexthop"]}
        if item not in out:
            out.append(item)
    return out


def remove_routes(old: Sequence[Mapping[str, str]], remove: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """``remove_extraroutes``: what is left; removing a route that is not there is no error."""
    gone = [{"destination": r["destination"], "nexthop": r["nexthop"]} for r in remove]
    return [{"destination": r["destination"], "nexthop": r["nexthop"]} for r in old if dict(r) not in gone]


def check_overlap(new: Sequence[Row], attached: Sequence[Row]) -> None:
    """Rule 60: a router's subnets may not overlap (interfaces and its gateway network's subnets)."""
    for n in new:
        a_net = IPNetwork(str(n["cidr"]))
        for a in attached:
            if a["id"] == n["id"]:
                continue
            b_net = IPNetwork(str(a["cidr"]))
            if a_net.version == b_net.version and a_net.first <= b_net.last and b_net.first <= a_net.last:
                raise BadRequest(
                    f"Bad router request: Cidr {a_net} of subnet {n['id']} overlaps with cidr {b_net} of "
                    f"subnet {a['id']}.",
                    field="subnet_id",
                )


# ---------------------------------------------------------------- adding an interface


def check_one_of(subnet_id: UUID | None, port_id: UUID | None) -> None:
    if (subnet_id is None) == (port_id is None):
        raise BadRequest(
            "Bad router request: Either subnet_id or port_id must be specified, not both or neither.", field="subnet_id"
        )


def owns(ctx: CallContext, row: Row) -> bool:
    return ctx.is_admin or row["project_id"] == ctx.project_id


def check_subnet_shared(ctx: CallContext, subnet_id: UUID, shared_with: Collection[str]) -> None:
    """Another project's subnet only on a network shared with the caller's project by name."""
    if ctx.project_id not in shared_with:
        raise BadRequest(
            f"Bad router request: Cannot add interface for subnet {subnet_id}: it belongs to "
            "another project and its network is not shared with yours.",
            field="subnet_id",
        )


def _already_attached(attached: Sequence[Row], subnet_id: UUID) -> bool:
    return any(a["id"] == subnet_id and a["kind"] == "interface" for a in attached)


def check_subnet_interface(subnet: Row, attached: Sequence[Row]) -> None:
    """A subnet becomes an interface through its gateway IP: it needs one, must not take RAs from
    elsewhere, must not be on the router already, nor overlap what the router has (rule 60)."""
    subnet_id = subnet["id"]
    if subnet["gateway_ip"] is None:
        raise BadRequest(f"Bad router request: Subnet {subnet_id} does not have a gateway IP.", field="subnet_id")
    if subnet["ip_version"] == 6 and subnet["ipv6_ra_mode"] is None and subnet["ipv6_address_mode"] is not None:
        raise BadRequest(
            f"Bad router request: IPv6 subnet {subnet_id} configured to receive RAs from an external "
            "router cannot be added to a router.",
            field="subnet_id",
        )
    if _already_attached(attached, subnet_id):
        raise BadRequest(f"Bad router request: Router already has a port on subnet {subnet_id}.", field="subnet_id")
    check_overlap([subnet], attached)


def check_port_visible(ctx: CallContext, port: R | None, port_id: UUID) -> R:
    """The port (with ``net_owner``), when the caller owns it or its network."""
    if port is None or not (ctx.is_admin or ctx.project_id in (port["project_id"], port["net_owner"])):
        raise not_found("port", port_id, field="port_id")
    return port


def in_pools(ip: str, pools: Sequence[Mapping[str, str]]) -> bool:
    addr = IPAddress(ip)
    return any(IPAddress(p["start"]) <= addr <= IPAddress(p["end"]) for p in pools)


def check_port_interface(
    ctx: CallContext,
    *,
    port: Row,
    service_owned: bool,
    ips: Sequence[Row],
    attached: Sequence[Row],
    v6_taken: bool,
    network_subnets: Sequence[Row],
) -> None:
    """An existing port becomes an interface: free, with fixed IPs (one IPv4 subnet at most), on no
    subnet the router has, the only IPv6 port of its network on the router, no overlap (rule 60),
    and — for another project's subnet — an address inside its allocation pools.

    ``ips``: the port's addresses with their subnet's ``ip_version``, ``subnet_owner`` and
    ``allocation_pools``; ``v6_taken``: the router has an IPv6 port on the network already."""
    port_id, network_id = port["id"], port["network_id"]
    if port["device_id"] or service_owned:
        raise Conflict(
            f"Unable to complete operation on port {port_id} for network {network_id}. "
            f"Port already has an attached device {port['device_id']}.",
            type="PortInUse",
            field="port_id",
        )
    if not ips:
        raise BadRequest(f"Bad router request: Router port {port_id} must have at least one fixed IP.", field="port_id")
    if len({i["subnet_id"] for i in ips if i["ip_version"] == 4}) > 1:
        raise BadRequest(
            f"Bad router request: Cannot have multiple IPv4 subnets on router port {port_id}.", field="port_id"
        )
    subnet_ids = [i["subnet_id"] for i in ips]
    for sid in subnet_ids:
        if _already_attached(attached, sid):
            raise BadRequest(f"Bad router request: Router already has a port on subnet {sid}.", field="port_id")
    if any(i["ip_version"] == 6 for i in ips) and v6_taken:
        raise BadRequest(
            f"Bad router request: Cannot have multiple IPv6 ports from network {network_id} on one router.",
            field="port_id",
        )
    check_overlap([s for s in network_subnets if s["id"] in subnet_ids], attached)
    if not ctx.is_admin:
        for i in ips:
            if i["subnet_owner"] != ctx.project_id and not in_pools(str(i["ip_address"]), i["allocation_pools"]):
                raise BadRequest(
                    f"Bad router request: IP {i['ip_address']} of port {port_id} is outside the "
                    f"allocation pools of subnet {i['subnet_id']}, which you do not own.",
                    field="port_id",
                )


# ---------------------------------------------------------------- removing an interface


def interface_to_remove(
    router_id: UUID,
    *,
    subnet_id: UUID | None,
    port_id: UUID | None,
    ports: Sequence[Row],
    ips: Sequence[Row],
) -> tuple[UUID, list[Row]]:
    """(the interface port, the addresses that go) for a removal by subnet or by port; ``ports``
    are the router's interfaces, ``ips`` their addresses."""
    if subnet_id is not None:
        hit = [i for i in ips if i["subnet_id"] == subnet_id]
        if not hit:
            raise NotFound(
                f"Router {router_id} has no interface on subnet {subnet_id}",
                type="RouterInterfaceNotFoundForSubnet",
                field="subnet_id",
            )
        port = hit[0]["port_id"]
        return port, [i for i in hit if i["port_id"] == port]
    if port_id not in {p["id"] for p in ports}:
        raise NotFound(
            f"Router {router_id} does not have an interface with id {port_id}",
            type="RouterInterfaceNotFound",
            field="port_id",
        )
    assert port_id is not None
    return port_id, [i for i in ips if i["port_id"] == port_id]


def check_interface_unused(
    router_id: UUID, *, cidrs: Sequence[str], fips: Sequence[Row], routes: Sequence[Mapping[str, str]]
) -> None:
    """Rule 61: no floating IP served through the subnets that go (``cidrs``), no route via them.
    ``fips``: the router's floating IPs (``id``, ``fixed_ip_address``)."""
    nets = [IPNetwork(c) for c in cidrs]
    for f in fips:
        if f["fixed_ip_address"] is not None and any(IPAddress(str(f["fixed_ip_address"])) in c for c in nets):
            raise Conflict(
                f"Router interface for subnet on router {router_id} cannot be deleted, as it is "
                f"required by one or more floating IPs ({f['id']}).",
                type="RouterInterfaceInUseByFloatingIP",
            )
    for r in routes:
        if any(IPAddress(r["nexthop"]) in c for c in nets):
            raise Conflict(
                f"Router interface for subnet on router {router_id} cannot be deleted, as it is "
                f"required by one or more routes ({r['destination']} via {r['nexthop']}).",
                type="RouterInterfaceInUseByRoute",
            )


def removal_kind(port_id: UUID, *, ips: Sequence[Row], gone: Sequence[Row]) -> Literal["shrink", "saga", "drop"]:
    """How the interface goes: the port keeps its other addresses (``shrink``: release the held ones
    that go after commit), or it goes with addresses in IPAM (``saga``: the port saga's delete), or
    it holds only gateway addresses IPAM never lent it (``drop``: at once)."""
    if any(i["port_id"] == port_id and i not in gone for i in ips):
        return "shrink"
    if any(i["ipam_held"] for i in gone):
        return "saga"
    return "drop"


# ---------------------------------------------------------------- the gateway


def gateway_wants(
    gw: t.ExternalGatewayInfoRequest,
    *,
    network: Row | None,
    subnets: Sequence[Row],
    attached: Sequence[Row],
) -> list[Want]:
    """Rule 59 and 60: the addresses a gateway port on ``network`` takes — an external network, valid
    external IPs, no overlap with the interfaces (``attached``: the router's subnets).
    Without explicit addresses: one of each IP family the network has, first subnet first."""
    if network is None:
        raise not_found("network", gw.network_id, field=f"{GW}.network_id")
    if not network["router_external"]:
        raise BadRequest(
            f"Bad router request: Network {gw.network_id} is not an external network", field=f"{GW}.network_id"
        )
    check_overlap(subnets, [s for s in attached if s["kind"] == "interface"])
    by_id = {s["id"]: s for s in subnets}
    wants: list[Want] = []
    for req in gw.external_fixed_ips or []:
        addr = validate.ip(req.ip_address, f"{GW}.external_fixed_ips") if req.ip_address else None
        if req.subnet_id is not None:
            s = by_id.get(req.subnet_id)
            if s is None:
                raise InvalidInput(
                    f"Invalid input for operation: subnet {req.subnet_id} is not on external network {gw.network_id}.",
                    field=f"{GW}.external_fixed_ips",
                )
        elif addr is not None:
            s = next((x for x in subnets if addr in IPNetwork(str(x["cidr"]))), None)
            if s is None:
                raise BadRequest(
                    f"IP address {addr} is not a valid IP for any of the subnets on the network {gw.network_id}.",
                    type="InvalidIpForNetwork",
                    field=f"{GW}.external_fixed_ips",
                )
        else:
            raise InvalidInput(
                "Invalid input for external_fixed_ips: a subnet_id or an ip_address is required.",
                field=f"{GW}.external_fixed_ips",
            )
        if addr is not None and s["gateway_ip"] is not None and str(addr) == str(s["gateway_ip"]):
            raise BadRequest(
                f"Bad router request: IP address {addr} is the gateway of subnet {s['id']}.",
                field=f"{GW}.external_fixed_ips",
            )
        wants.append(Want(s["id"], str(addr) if addr is not None else None))
    if gw.external_fixed_ips is None:
        for version in (4, 6):
            family = [s["id"] for s in subnets if s["ip_version"] == version]
            if family:
                wants.append(Want(family[0], candidates=tuple(family[1:])))
    if not wants:
        raise BadRequest(
            f"Bad router request: external network {gw.network_id} has no subnet to take an address from.",
            field=f"{GW}.network_id",
        )
    return wants


def gateway_moves(gw: t.ExternalGatewayInfoRequest | None, current: t.ExternalGatewayInfo | None) -> bool:
    """Whether an update's gateway means a new gateway port (or none): removed, first, or another network."""
    return gw is None or current is None or gw.network_id != current.network_id
