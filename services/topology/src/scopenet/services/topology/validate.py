"""Input checks of the topology resources that IPAM does not make (Neutron's messages and types)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from netaddr import EUI, AddrFormatError, IPAddress, IPNetwork, mac_unix_expanded

from scopenet.contracts import topology as t
from scopenet.contracts.errors import BadRequest, InvalidInput

MAX_DNS_NAMESERVERS = 5
MAX_HOST_ROUTES = 20
MAX_ROUTES = 30
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


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


def ipv6_modes(version: int, ra: str | None, address: str | None) -> None:
    if version == 4 and (ra or address):
        raise InvalidInput(
            "Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when "
            "enable_dhcp is set to False or ip_version is 4.",
            field="ipv6_ra_mode" if ra else "ipv6_address_mode",
        )
    if ra and address and ra != address:
        raise InvalidInput(
            f"Invalid input for operation: ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
            f"'{address}' is not valid. If both attributes are set, they must be the same value.",
            field="ipv6_ra_mode",
        )


def dns_nameservers(servers: Sequence[str], version: int) -> list[str]:
    if len(servers) > MAX_DNS_NAMESERVERS:
        raise BadRequest(
            f"Unable to complete operation for subnet: the number of DNS nameservers exceeds the limit "
            f"{MAX_DNS_NAMESERVERS}.",
            type="DNSNameServersExhausted",
            field="dns_nameservers",
        )
    out: list[str] = []
    for s in servers:
        addr = ip(s, "dns_nameservers")
        if str(addr) in out:
            raise InvalidInput(
                f"Invalid input for dns_nameservers. Reason: Duplicate nameserver '{s}'.", field="dns_nameservers"
            )
        out.append(str(addr))
    return out


def host_routes(
    routes: Sequence[t.HostRoute],
    version: int,
    *,
    field: str = "host_routes",
    limit: int = MAX_HOST_ROUTES,
    exhausted: str = "HostRoutesExhausted",
) -> list[dict[str, str]]:
    if len(routes) > limit:
        raise BadRequest(
            f"Unable to complete operation: the number of {field} exceeds the limit {limit}.",
            type=exhausted,
            field=field,
        )
    out: list[dict[str, str]] = []
    for r in routes:
        dest, hop = cidr(r.destination, field), ip(r.nexthop, field)
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
