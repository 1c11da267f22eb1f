"""Input checks every topology aggregate shares (addresses, prefixes, routes), with Neutron's
messages and types. Checks of one aggregate live in its ``rules`` module."""

from __future__ import annotations

from collections.abc import Sequence

from netaddr import AddrFormatError, IPAddress, IPNetwork

from scopenet.contracts import topology as t
from scopenet.contracts.errors import BadRequest, InvalidInput

MAX_HOST_ROUTES = 20
MAX_ROUTES = 30
MAX_REQUEST_ROUTES = 256
"""Most routes one request may carry (the API's bound); a router's own limit is ``max_routes``."""


def ip(value: str, field: str) -> IPAddress:
    try:
        if "/" in value:
            raise ValueError(value)
        return IPAddress(value)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidInput(
            f"Invalid input for {field}. Reason: '{value}' is not a valid IP address.", field=field
        ) from None


def cidr(value: str, field: str) -> IPNetwork:
    try:
        net = IPNetwork(value)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidInput(
            f"Invalid input for {field}. Reason: '{value}' is not a valid IP subnet.", field=field
        ) from None
    return net.cidr


def route_cidr(value: str, field: str) -> IPNetwork:
    """A route's destination as Neutron's ``validate_route_cidr`` takes it: a prefix length, no host
    bits, not loopback (the kernel would refuse such a route, or route it nowhere)."""
    try:
        net = IPNetwork(value)
        exact = "/" in value and net.network == net.ip
    except (AddrFormatError, ValueError, TypeError):
        exact = False
    if not exact:
        raise InvalidInput(f"Invalid input for {field}. Reason: '{value}' is not a valid CIDR.", field=field)
    if net.is_loopback():
        raise InvalidInput(f"Invalid input for {field}. Reason: '{value}' is not a routable CIDR.", field=field)
    return net.cidr


def host_routes(
    routes: Sequence[t.HostRoute],
    version: int,
    *,
    field: str = "host_routes",
    limit: int = MAX_HOST_ROUTES,
    exhausted: str = "HostRoutesExhausted",
    strict: bool = False,
) -> list[dict[str, str]]:
    """Checked and normalised routes; ``strict``: destinations as ``route_cidr`` wants them (a
    router's extra routes), else any prefix, normalised (a subnet's host routes)."""
    if len(routes) > limit:
        raise BadRequest(
            f"Unable to complete operation: the number of {field} exceeds the limit {limit}.",
            type=exhausted,
            field=field,
        )
    out: list[dict[str, str]] = []
    for r in routes:
        dest = route_cidr(r.destination, field) if strict else cidr(r.destination, field)
        hop = ip(r.nexthop, field)
        if version and (dest.version != version or hop.version != version):
            raise InvalidInput(
                f"Invalid input for {field}. Reason: route {r.destination} via {r.nexthop} does not match "
                f"IP version {version}.",
                field=field,
            )
        if dest.version != hop.version:
            raise InvalidInput(
                f"Invalid input for {field}. Reason: mixed IP versions in {r.destination} via {r.nexthop}.", field=field
            )
        item = {"destination": str(dest), "nexthop": str(hop)}
        if item in out:
            raise InvalidInput(f"Invalid input for {field}. Reason: Duplicate route '{item}'.", field=field)
        out.append(item)
    return out
