"""A pool's space as people read it (docs/operations.md#pool-usage): per prefix, its allocations and
free gaps in address order (NetBox's "show available" rows), and each project's use against the
pool's quota. Pure: the service reads the rows, these functions lay them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

from netaddr import IPNetwork, IPSet

from scopenet.services.ipam.rules.alloc import free_blocks
from scopenet.services.ipam.rules.prefixes import quota_units

T = TypeVar("T")


@dataclass(frozen=True)
class Block:
    """A row of a prefix's space: an allocation (``owner`` is what the caller passed for it) or a free gap."""

    cidr: IPNetwork
    owner: object | None  # None: free


@dataclass(frozen=True)
class PrefixSpace:
    prefix: IPNetwork
    used: int
    blocks: list[Block]

    @property
    def total(self) -> int:
        return int(self.prefix.size)


def layout(prefixes: Sequence[IPNetwork], allocations: Mapping[IPNetwork, T]) -> list[PrefixSpace]:
    """Each prefix with the allocations inside it and its free blocks, interleaved in address order.

    Free space is split into maximal aligned CIDRs (a gap from .1.0 to .3.255 is a /24 and a /23), the
    blocks a subnet could be created as.
    """
    out = []
    for prefix in sorted(prefixes, key=lambda p: p.first):
        inside = [(c, o) for c, o in allocations.items() if prefix.first <= c.first and c.last <= prefix.last]
        free = free_blocks([prefix], [c for c, _ in inside])
        blocks = [Block(c, o) for c, o in inside] + [Block(c, None) for c in free]
        blocks.sort(key=lambda b: b.cidr.first)
        out.append(PrefixSpace(prefix, sum(int(c.size) for c, _ in inside), blocks))
    return out


def suggested(block: IPNetwork, *, min_prefixlen: int, max_prefixlen: int, default_prefixlen: int) -> IPNetwork | None:
    """What a "create subnet here" form should offer for a free block: the block itself when the pool
    allows its length; a block larger than the pool's largest allowed subnet offers its first
    /default_prefixlen (or /min_prefixlen when the block is smaller than that); a block smaller than
    /max_prefixlen fits nothing."""
    if block.prefixlen > max_prefixlen:
        return None
    if block.prefixlen >= min_prefixlen:
        return block
    length = max(default_prefixlen, min_prefixlen, block.prefixlen)
    return IPNetwork((block.first, length), block.version)


def percent(used: int | Fraction, total: int | Fraction) -> float:
    """``used`` of ``total`` in percent, two decimals (0 for an empty pool)."""
    return round(float(Fraction(used) * 100 / Fraction(total)), 2) if total else 0.0


@dataclass
class ProjectUse:
    subnets: int = 0
    addresses: int = 0
    units: Fraction = Fraction(0)


def project_use(allocations: Sequence[tuple[str, IPNetwork]]) -> dict[str, ProjectUse]:
    """Per project: subnets, addresses and quota units (IPv4 addresses, IPv6 /64s) of its allocations."""
    out: dict[str, ProjectUse] = {}
    for project, cidr in allocations:
        use = out.setdefault(project, ProjectUse())
        use.subnets += 1
        use.addresses += int(cidr.size)
        use.units += Fraction(quota_units(cidr))
    return dict(sorted(out.items()))


def prefix_delta(before: Sequence[IPNetwork], after: Sequence[IPNetwork]) -> tuple[list[IPNetwork], list[IPNetwork]]:
    """(added, removed) address space between two prefix lists, as maximal CIDRs: growing 10.0.1.0/24 into
    10.0.0.0/23 adds 10.0.0.0/24, it does not remove one prefix and add another."""
    old, new = IPSet(p.cidr for p in before), IPSet(p.cidr for p in after)
    return list((new - old).iter_cidrs()), list((old - new).iter_cidrs())
