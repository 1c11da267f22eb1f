"""Inside one subnet: CIDR checks, gateway and allocation-pool defaults, and port address allocation.

``subnet_defaults`` implements the table of docs/neutron.md#gateway-and-allocation-pools with the validation
of rules 45-47.

Deliberate differences from Neutron, each fixing a user-visible problem:

* IPv4 /31 and /32 (RFC 3021 point-to-point and host routes) and IPv6 /127 and /128 get **no
  automatic gateway**, and their whole usable range is the allocation pool. Neutron picks network+1,
  which for a /31 is the last address and makes every pool "any" /31 fail with a confusing 409
  ``IpamValueInvalid`` (docs/neutron.md#point-to-point-subnets), and for a /32 lies outside the subnet.
  For the same reason, the IPv4
  network/broadcast rule ("Gateway is not valid on subnet", ``InvalidIpForSubnet``) applies only to
  prefixes up to /30: a /31 or /32 has no network or broadcast address, so an explicit gateway or
  port address anywhere in it is accepted.
* The gateway is **reserved** in ``FreeAddresses``: an ordinary port cannot take it
  (docs/neutron.md#the-gateway-address-is-reserved).
* ``FreeAddresses.allocate`` hands out the lowest free address (Neutron's DHCP-port behaviour) rather
  than a random one of the first 1000: our allocations are serialised per subnet, so the random
  window that made Neutron's duplicate-key retries rare is not needed, and tests become deterministic.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import pairwise

from netaddr import AddrFormatError, IPAddress, IPNetwork, IPRange, IPSet

from scopenet.contracts.errors import BadRequest, Conflict, InvalidInput
from scopenet.services.ipam.rules.prefixes import Version, parse_cidr


class Unset(enum.Enum):
    """Marks "not given", distinct from an explicit ``None`` (which means "no gateway")."""

    UNSET = "UNSET"


UNSET = Unset.UNSET


def validate_cidr(cidr_str: str, ip_version: int, *, enable_dhcp: bool) -> IPNetwork:
    """Validate an explicit subnet ``cidr`` (rule 45); pool "any" requests skip this, as in Neutron."""
    net = parse_cidr(cidr_str, field="cidr")
    if net.version != ip_version:
        raise InvalidInput(f"cidr '{cidr_str}' does not match the ip_version '{ip_version}'", field="cidr")
    if net.prefixlen == 0:
        raise InvalidInput("0 is not allowed as CIDR prefix length", field="cidr")
    if net.version == 6 and net.first == 0:
        raise InvalidInput(f"IPv6 subnet {net} is not allowed: '::' is not a valid network address", field="cidr")
    if enable_dhcp:
        if net.prefixlen > (30 if net.version == 4 else 126):
            raise InvalidInput(
                "Subnet has a prefix length that is incompatible with DHCP service enabled.", field="cidr"
            )
        if net.is_multicast():
            raise InvalidInput("Multicast IP subnet is not supported if enable_dhcp is True.", field="cidr")
        if net.is_loopback():
            raise InvalidInput("Loopback IP subnet is not supported if enable_dhcp is True.", field="cidr")
        if net.version == 4 and net.first == 0:
            raise InvalidInput("First IP '0.0.0.0' of network is not supported if enable_dhcp is True.", field="cidr")
    return net


def _no_net_bcast(cidr: IPNetwork) -> bool:
    """True when IPv4 network and broadcast addresses exist and are unusable (prefix /30 or shorter)."""
    v4: bool = cidr.version == 4
    return v4 and cidr.prefixlen <= 30


def usable_range(cidr: IPNetwork) -> tuple[int, int] | None:
    """First and last usable address as ints, or None when nothing is usable (IPv6 /128)."""
    if cidr.version == 4:
        return (cidr.first + 1, cidr.last - 1) if _no_net_bcast(cidr) else (cidr.first, cidr.last)
    return (cidr.first + 1, cidr.last) if cidr.first < cidr.last else None


def default_gateway(cidr: IPNetwork) -> IPAddress | None:
    """The first address after the network's, and none at all on /31-/32 and /127-/128 (module
    docstring). Neutron gives an IPv6 subnet made from an explicit cidr the subnet-router anycast
    address (``::``) instead, but ``::1`` when the same subnet comes from a pool; scopenet
    gives ``::1`` either way, which is also what the seed document shows for ``subnet-ip6-1``."""
    if cidr.prefixlen >= (31 if cidr.version == 4 else 127):
        return None
    return IPAddress(cidr.first + 1, cidr.version)


def _parse_gateway(raw: str, cidr: IPNetwork, *, from_pool_any: bool) -> IPAddress:
    """Rule 46: right family; an in-subnet IPv4 gateway must not be the network or broadcast address."""
    try:
        gw = IPAddress(raw)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidInput(f"'{raw}' is not a valid IP address", field="gateway_ip") from None
    if gw.version != cidr.version:
        raise InvalidInput(f"gateway_ip '{raw}' does not match the ip_version '{cidr.version}'", field="gateway_ip")
    if _no_net_bcast(cidr) and int(gw) in (cidr.first, cidr.last):
        if from_pool_any:
            raise Conflict(f"Gateway IP {gw} cannot be allocated in CIDR {cidr}", type="IpamValueInvalid")
        raise InvalidInput("Gateway is not valid on subnet", field="gateway_ip")
    return gw


def _pool_error(item: object) -> BadRequest:
    return BadRequest(
        f"The allocation pool {item} is not valid.", type="InvalidAllocationPool", field="allocation_pools"
    )


def _parse_pool(item: object, version: int) -> IPRange:
    if not isinstance(item, dict) or set(item) != {"start", "end"}:
        raise _pool_error(item)
    start, end = item["start"], item["end"]
    if not isinstance(start, str) or not isinstance(end, str):
        raise _pool_error(item)
    try:
        rng = IPRange(start, end)
    except (AddrFormatError, ValueError, TypeError):
        raise _pool_error(f"{start}-{end}") from None
    if IPAddress(start).version != version or IPAddress(end).version != version:
        raise _pool_error(rng)
    return rng


def validate_allocation_pools(pools: Sequence[object], cidr: IPNetwork) -> list[IPRange]:
    """Rule 47: valid same-family ranges, inside the usable range, not overlapping one another."""
    ranges = [_parse_pool(item, cidr.version) for item in pools]
    usable = usable_range(cidr)
    for rng in ranges:
        if usable is None or rng.first < usable[0] or rng.last > usable[1]:
            raise BadRequest(
                f"The allocation pool {rng} spans beyond the subnet cidr {cidr}.",
                type="OutOfBoundsAllocationPool",
                field="allocation_pools",
            )
    order = sorted(range(len(ranges)), key=lambda i: ranges[i].first)
    for i, j in pairwise(order):
        if ranges[j].first <= ranges[i].last:
            a, b = sorted((i, j))
            raise Conflict(
                f"Found overlapping allocation pools: {ranges[a]} {ranges[b]} for subnet {cidr}.",
                type="OverlappingAllocationPools",
            )
    return ranges


def _ranges_around(usable: tuple[int, int] | None, gw: IPAddress | None, version: Version) -> list[IPRange]:
    if usable is None:
        return []
    first, last = usable
    if gw is None or not first <= int(gw) <= last:
        return [IPRange(IPAddress(first, version), IPAddress(last, version))]
    pieces = [(first, int(gw) - 1), (int(gw) + 1, last)]
    return [IPRange(IPAddress(a, version), IPAddress(b, version)) for a, b in pieces if a <= b]


def subnet_defaults(
    cidr: IPNetwork,
    *,
    gateway_ip: str | Unset | None = UNSET,
    allocation_pools: list[dict[str, str]] | None = None,
    from_pool_any: bool = False,
) -> tuple[IPAddress | None, list[IPRange]]:
    """Gateway and allocation pools of a new subnet, validated per rules 46-47.

    The defaults are the table of docs/neutron.md#gateway-and-allocation-pools.

    ``gateway_ip``: ``UNSET`` picks the default, ``None`` means no gateway, a string is validated.
    ``allocation_pools``: ``None`` derives them (usable range minus the gateway), a list is validated
    and must not contain the gateway, whether given or defaulted (409, as in Neutron).
    """
    cidr = cidr.cidr
    if from_pool_any and allocation_pools is not None:
        raise BadRequest("allocation_pools allowed only for specific subnet requests.", field="allocation_pools")
    if isinstance(gateway_ip, Unset):
        gw = default_gateway(cidr)
    elif gateway_ip is None:
        gw = None
    else:
        gw = _parse_gateway(gateway_ip, cidr, from_pool_any=from_pool_any)
    if allocation_pools is None:
        return gw, _ranges_around(usable_range(cidr), gw, cidr.version)
    ranges = validate_allocation_pools(allocation_pools, cidr)
    for rng in ranges:
        if gw is not None and gw in rng:
            raise Conflict(
                f"Gateway ip {gw} conflicts with allocation pool {rng}", type="GatewayConflictWithAllocationPools"
            )
    return gw, ranges


class FreeAddresses:
    """Free addresses of one subnet as a sorted list of disjoint inclusive int intervals.

    ``_starts[i]..._ends[i]`` are free; ``bisect`` finds the interval of an address, so allocation and
    release are O(log n) plus a memmove, and an IPv6 /64 is one interval, never enumerated. Only pool
    addresses are ever free: ``allocate`` hands out from the allocation pools, while ``allocate_specific``
    may take any valid address of the subnet (rule 57), which is then tracked in ``_used`` only.
    """

    def __init__(
        self, ranges: Sequence[IPRange], used: Sequence[IPAddress], reserved: Sequence[IPAddress], *, cidr: IPNetwork
    ) -> None:
        self._cidr = cidr.cidr
        self._version = self._cidr.version
        pools = IPSet(ranges)
        self._pool_starts, self._pool_ends = self._intervals(pools)
        free = pools - IPSet(used) - IPSet(reserved)
        self._starts, self._ends = self._intervals(free)
        self._count = sum(e - s + 1 for s, e in zip(self._starts, self._ends, strict=True))
        self._used = {int(ip) for ip in used if ip.version == self._version}
        self._reserved = {int(ip) for ip in reserved if ip.version == self._version}

    @staticmethod
    def _intervals(ips: IPSet) -> tuple[list[int], list[int]]:
        starts: list[int] = []
        ends: list[int] = []
        for rng in ips.iter_ipranges():
            starts.append(rng.first)
            ends.append(rng.last)
        return starts, ends

    def free_count(self) -> int:
        """Free addresses left in the allocation pools (an exact int, even for a /64)."""
        return self._count

    def allocate(self) -> IPAddress:
        """The lowest free pool address: deterministic "next free"."""
        if not self._starts:
            raise Conflict(f"No more IP addresses available on subnet {self._cidr}.", type="IpAddressGenerationFailure")
        ip = self._starts[0]
        if ip == self._ends[0]:
            del self._starts[0], self._ends[0]
        else:
            self._starts[0] = ip + 1
        self._count -= 1
        self._used.add(ip)
        return IPAddress(ip, self._version)

    def allocate_specific(self, ip: IPAddress | str) -> IPAddress:
        """Take a requested address: any valid address of the subnet, pools or not (rules 55-57)."""
        addr = self._parse(ip)
        value = int(addr)
        if value in self._reserved:
            raise Conflict(
                f"IP address {addr} already allocated in subnet {self._cidr}: it is the subnet's gateway.",
                type="IpAddressAlreadyAllocated",
            )
        if value in self._used:
            raise Conflict(
                f"IP address {addr} already allocated in subnet {self._cidr}.", type="IpAddressAlreadyAllocated"
            )
        i = bisect_right(self._starts, value) - 1
        if i >= 0 and value <= self._ends[i]:
            start, end = self._starts[i], self._ends[i]
            pieces = [(a, b) for a, b in ((start, value - 1), (value + 1, end)) if a <= b]
            self._starts[i : i + 1] = [a for a, _ in pieces]
            self._ends[i : i + 1] = [b for _, b in pieces]
            self._count -= 1
        self._used.add(value)
        return addr

    def release(self, ip: IPAddress | str) -> None:
        """Return an address; it becomes free again only if it lies in a pool and is not reserved.

        Raises ``ValueError`` for an address that is not allocated: the in-memory copy disagrees with
        the database and should be rebuilt rather than patched.
        """
        addr = IPAddress(ip)
        value = int(addr)
        if addr.version != self._version or value not in self._used:
            raise ValueError(f"{addr} is not allocated in subnet {self._cidr}")
        self._used.remove(value)
        p = bisect_right(self._pool_starts, value) - 1
        if value in self._reserved or p < 0 or value > self._pool_ends[p]:
            return
        i = bisect_left(self._starts, value)
        joins_left = i > 0 and self._ends[i - 1] == value - 1
        joins_right = i < len(self._starts) and self._starts[i] == value + 1
        if joins_left and joins_right:
            self._ends[i - 1] = self._ends[i]
            del self._starts[i], self._ends[i]
        elif joins_left:
            self._ends[i - 1] = value
        elif joins_right:
            self._starts[i] = value
        else:
            self._starts.insert(i, value)
            self._ends.insert(i, value)
        self._count += 1

    def _parse(self, ip: IPAddress | str) -> IPAddress:
        try:
            addr = IPAddress(ip)
        except (AddrFormatError, ValueError, TypeError):
            raise InvalidInput(f"'{ip}' is not a valid IP address", field="ip_address") from None
        bad = addr.version != self._version or addr not in self._cidr
        if bad or (_no_net_bcast(self._cidr) and int(addr) in (self._cidr.first, self._cidr.last)):
            raise BadRequest(
                f"IP address {addr} is not a valid IP for the specified subnet.",
                type="InvalidIpForSubnet",
                field="ip_address",
            )
        return addr
