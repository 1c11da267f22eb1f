"""Prefix (subnet) allocation from a subnet pool: Neutron's best fit, plus an incremental equivalent.

``allocate`` / ``allocate_specific`` are the reference, a direct port of neutron ``ipam/subnet_alloc.py``
``_get_available_prefix_list`` (docs/neutron.md#prefix-allocation): ``IPSet(pool) - IPSet(used)``, compacted, cut into
maximal CIDR blocks, sorted longest prefix first (smallest hole first, stable by address); an "any"
request takes the lowest /L of the first block that fits. They rebuild the sets on every call, which is
O(allocations) per request, exactly Neutron's cost.

``FreeBlocks`` keeps the same free set in memory as its canonical decomposition into maximal aligned
blocks, indexed by prefix length, so a service holding one per pool answers in O(prefix bits + log n)
and gives *the same* answers as the reference on the same state (the main property test). The
canonical decomposition of a set of addresses is unique, which is why an incremental split/merge can
stay identical to ``IPSet.compact()``.

Deliberate difference from Neutron: running out of space, or asking for a CIDR that is taken or outside
the pool, is a 409 ``SubnetAllocationError`` that says why (Neutron answers 500:
docs/neutron.md#allocation-failures-are-409-not-500).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Sequence

from netaddr import IPNetwork, IPSet

from scopenet.contracts.errors import BadRequest, Conflict
from scopenet.services.ipam.rules.prefixes import MAX_PREFIXLEN, Version, compact

_SHOWN_PREFIXES = 5
"""Messages list at most this many pool prefixes: a pool may hold a thousand."""


def _describe(pool: Sequence[IPNetwork]) -> str:
    shown = ", ".join(str(p) for p in pool[:_SHOWN_PREFIXES])
    extra = len(pool) - _SHOWN_PREFIXES
    return f"{shown} and {extra} more" if extra > 0 else shown


def _check_request_len(prefixlen: int, version: int | None) -> None:
    """A length beyond the family's width is Neutron's 400 ``AddrFormatError`` (rule 41), not a 409."""
    bits = MAX_PREFIXLEN[version] if version is not None else 128
    if isinstance(prefixlen, bool) or not isinstance(prefixlen, int) or not 0 <= prefixlen <= bits:
        family = f" for IPv{version}" if version is not None else ""
        raise BadRequest(f"Invalid prefix length /{prefixlen}{family}", type="AddrFormatError", field="prefixlen")


def _check_request_version(cidr: IPNetwork, version: int | None) -> None:
    if version is not None and cidr.version != version:
        raise BadRequest(f"Cannot allocate IPv{cidr.version} subnet from IPv{version} subnet pool", field="cidr")


def _no_space(prefixlen: int, pool: Sequence[IPNetwork], largest: int | None) -> Conflict:
    if not pool:
        msg = f"No free /{prefixlen} left: the subnet pool has no prefixes"
    elif largest is None:
        msg = f"No free /{prefixlen} left in subnet pool prefixes {_describe(pool)} (the pool is full)"
    else:
        msg = f"No free /{prefixlen} left in subnet pool prefixes {_describe(pool)} (largest free block: /{largest})"
    return Conflict(msg, type="SubnetAllocationError")


def _outside(cidr: IPNetwork, pool: Sequence[IPNetwork]) -> Conflict:
    where = _describe(pool) if pool else "(none)"
    return Conflict(
        f"Cannot allocate {cidr}: it is outside the subnet pool's prefixes {where}", type="SubnetAllocationError"
    )


def _taken(cidr: IPNetwork, other: IPNetwork) -> Conflict:
    return Conflict(f"Cannot allocate {cidr}: it overlaps allocated subnet {other}", type="SubnetAllocationError")


def free_blocks(pool: Sequence[IPNetwork], used: Sequence[IPNetwork]) -> list[IPNetwork]:
    """Free space as maximal CIDR blocks in Neutron's order: longest prefix first, then ascending address."""
    available = IPSet(p.cidr for p in pool) - IPSet(u.cidr for u in used)
    available.compact()
    # list.sort is stable, and stays stable with reverse=True: equal lengths keep address order.
    return sorted(available.iter_cidrs(), key=lambda c: c.prefixlen, reverse=True)


def allocate(pool: Sequence[IPNetwork], used: Sequence[IPNetwork], prefixlen: int) -> IPNetwork:
    """Best fit for an "any" request of size /prefixlen: the lowest /prefixlen of the smallest hole that fits."""
    canon = compact(pool)
    _check_request_len(prefixlen, canon[0].version if canon else None)
    blocks = free_blocks(canon, used)
    for block in blocks:
        if block.prefixlen <= prefixlen:
            return IPNetwork((block.first, prefixlen), block.version)
    raise _no_space(prefixlen, canon, min((b.prefixlen for b in blocks), default=None))


def allocate_specific(pool: Sequence[IPNetwork], used: Sequence[IPNetwork], cidr: IPNetwork) -> IPNetwork:
    """Grant ``cidr`` only if one free block holds all of it (docs/neutron.md#prefix-allocation), else say why not."""
    canon = compact(pool)
    cidr = cidr.cidr
    _check_request_version(cidr, canon[0].version if canon else None)
    for block in free_blocks(canon, used):
        if block.first <= cidr.first <= block.last and block.prefixlen <= cidr.prefixlen:
            return cidr
    if not IPSet([cidr]).issubset(IPSet(canon)):
        raise _outside(cidr, canon)
    hits = [u.cidr for u in used if u.version == cidr.version and u.first <= cidr.last and cidr.first <= u.last]
    raise _taken(cidr, min(hits, key=lambda u: (u.first, u.prefixlen)))


def check_prefixlen(prefixlen: int, *, min_prefixlen: int, max_prefixlen: int, ip_version: int) -> None:
    """Size check of an allocation request against the pool's bounds (rule 41), run before any search."""
    _check_request_len(prefixlen, ip_version)
    if prefixlen > max_prefixlen:
        raise BadRequest(
            f"Unable to allocate subnet with prefix length {prefixlen}, maximum allowed prefix is {max_prefixlen}.",
            type="MaxPrefixSubnetAllocationError",
            field="prefixlen",
        )
    if prefixlen < min_prefixlen:
        raise BadRequest(
            f"Unable to allocate subnet with prefix length {prefixlen}, minimum allowed prefix is {min_prefixlen}.",
            type="MinPrefixSubnetAllocationError",
            field="prefixlen",
        )


_Key = tuple[int, int, int]
"""An allocated CIDR as ``(version, first address, prefix length)``: sorts like Neutron's address order."""


class FreeBlocks:
    """One pool's free space, kept incrementally; answers exactly like ``allocate``/``allocate_specific``.

    Free blocks are ``(network int, prefixlen)``: ``_by_len[L]`` is the sorted list of free /L starts and
    ``_len_at`` maps a free block's start to its length (free blocks are disjoint, so starts are unique).
    Best fit is then "first non-empty ``_by_len[L], _by_len[L-1], ...``", and the block holding an address
    is one of at most 129 aligned candidates, each a dict look-up. Splitting leaves the buddies of the
    path as free blocks; releasing merges with a buddy while the buddy is free at exactly the same
    length. A pool prefix's own buddy is never free (the pool is compacted), so merging cannot grow a
    block beyond the pool prefixes. Inserts use ``bisect.insort``: O(log n) search plus a memmove that is
    negligible at any realistic pool size.

    Allocated CIDRs are kept as a multiset so that ``release`` knows what may be freed and error
    messages can name the allocation in the way, as the reference does. Allocations are expected to be
    disjoint (Postgres enforces it); overlapping or out-of-pool ``used`` entries are still handled the
    way ``IPSet`` subtraction handles them.
    """

    def __init__(self, pool: Sequence[IPNetwork], used: Sequence[IPNetwork]) -> None:
        self._pool = compact(pool)
        self._version: Version | None = self._pool[0].version if self._pool else None
        self._bits = MAX_PREFIXLEN[self._version] if self._version is not None else 128
        self._pool_at = {p.first: p.prefixlen for p in self._pool}
        self._by_len: list[list[int]] = [[] for _ in range(self._bits + 1)]
        self._len_at: dict[int, int] = {}
        self._free = 0
        self._used: Counter[_Key] = Counter()
        self._used_sorted: list[_Key] = []
        for u in used:
            self._track((u.version, u.cidr.first, u.prefixlen))
        for block in free_blocks(self._pool, used):
            self._add(block.first, block.prefixlen)

    # -- queries -------------------------------------------------------------------------------------

    def free_blocks(self) -> list[IPNetwork]:
        """Free space in Neutron's order (longest prefix first, then by address), like ``free_blocks()``."""
        version = self._version or 4
        return [IPNetwork((s, q), version) for q in range(self._bits, -1, -1) for s in self._by_len[q]]

    def free_addresses(self) -> int:
        """Number of free addresses in the pool (an int: IPv6 pools are far beyond float precision)."""
        return self._free

    # -- allocation ----------------------------------------------------------------------------------

    def allocate(self, prefixlen: int) -> IPNetwork:
        """Best fit: the lowest /prefixlen of the smallest free block that can hold one."""
        _check_request_len(prefixlen, self._version)
        for q in range(min(prefixlen, self._bits), -1, -1):
            if self._by_len[q]:
                start = self._by_len[q][0]
                break
        else:
            largest = next((q for q in range(self._bits + 1) if self._by_len[q]), None)
            raise _no_space(prefixlen, self._pool, largest)
        self._remove(start, q)
        for r in range(q + 1, prefixlen + 1):
            self._add(start + (1 << (self._bits - r)), r)
        return self._grant(start, prefixlen)

    def allocate_specific(self, cidr: IPNetwork) -> IPNetwork:
        """Take exactly ``cidr`` if one free block holds it; otherwise the reference's 409 or 400."""
        cidr = cidr.cidr
        _check_request_version(cidr, self._version)
        if self._version is None:
            raise _outside(cidr, self._pool)
        c, plen = cidr.first, cidr.prefixlen
        block = self._containing(c, plen, self._len_at)
        if block is None:
            if self._containing(c, plen, self._pool_at) is None:
                raise _outside(cidr, self._pool)
            raise _taken(cidr, self._first_overlap(cidr))
        start, q = block
        self._remove(start, q)
        for r in range(q + 1, plen + 1):
            shift = self._bits - r
            self._add(((c >> shift) ^ 1) << shift, r)
        return self._grant(c, plen)

    def release(self, cidr: IPNetwork) -> None:
        """Give an allocated CIDR back, merging buddies; the part outside the pool prefixes is ignored.

        Raises ``ValueError`` if ``cidr`` is not currently allocated: the in-memory copy disagrees with
        the database and the caller should rebuild it rather than guess.
        """
        cidr = cidr.cidr
        key = (cidr.version, cidr.first, cidr.prefixlen)
        if self._used[key] == 0:
            raise ValueError(f"{cidr} is not allocated from this pool")
        self._used[key] -= 1
        if self._used[key]:
            return  # a duplicate entry still holds the same space
        del self._used[key]
        del self._used_sorted[bisect_left(self._used_sorted, key)]
        if cidr.version != self._version:
            return
        pieces = self._in_pool(cidr)
        others = self._overlapping_used(cidr)
        if others:
            rest = IPSet(pieces) - IPSet(others)
            pieces = list(rest.iter_cidrs())
        for piece in pieces:
            self._insert_merged(piece.first, piece.prefixlen)

    # -- internals -----------------------------------------------------------------------------------

    def _add(self, start: int, plen: int) -> None:
        insort(self._by_len[plen], start)
        self._len_at[start] = plen
        self._free += 1 << (self._bits - plen)

    def _remove(self, start: int, plen: int) -> None:
        blocks = self._by_len[plen]
        del blocks[bisect_left(blocks, start)]
        del self._len_at[start]
        self._free -= 1 << (self._bits - plen)

    def _insert_merged(self, start: int, plen: int) -> None:
        while plen > 0:
            buddy = start ^ (1 << (self._bits - plen))
            if self._len_at.get(buddy) != plen:
                break
            self._remove(buddy, plen)
            start, plen = min(start, buddy), plen - 1
        self._add(start, plen)

    def _containing(self, addr: int, plen: int, index: dict[int, int]) -> tuple[int, int] | None:
        """The block of ``index`` (start -> length) that holds ``addr`` with length <= plen, if any."""
        for q in range(plen + 1):
            shift = self._bits - q
            start = addr >> shift << shift
            if index.get(start) == q:
                return start, q
        return None

    def _grant(self, start: int, plen: int) -> IPNetwork:
        assert self._version is not None
        self._track((self._version, start, plen))
        return IPNetwork((start, plen), self._version)

    def _track(self, key: _Key) -> None:
        if not self._used[key]:
            insort(self._used_sorted, key)
        self._used[key] += 1

    def _in_pool(self, cidr: IPNetwork) -> list[IPNetwork]:
        """``cidr`` intersected with the pool: itself, the pool prefixes inside it, or nothing."""
        assert self._version is not None
        if self._containing(cidr.first, cidr.prefixlen, self._pool_at) is not None:
            return [cidr]
        return [p for p in self._pool if cidr.first <= p.first <= cidr.last]

    def _overlapping_used(self, cidr: IPNetwork) -> list[IPNetwork]:
        """Tracked allocations overlapping ``cidr`` in (address, length) order: supernets, then those inside."""
        v, c, plen = cidr.version, cidr.first, cidr.prefixlen
        found: list[IPNetwork] = []
        for q in range(plen + 1):
            shift = self._bits - q
            if self._used[(v, c >> shift << shift, q)]:
                found.append(IPNetwork((c >> shift << shift, q), v))
        lo = bisect_left(self._used_sorted, (v, c, plen + 1))
        hi = bisect_right(self._used_sorted, (v, cidr.last, self._bits + 1))
        found.extend(IPNetwork((s, q), v) for _, s, q in self._used_sorted[lo:hi])
        return found

    def _first_overlap(self, cidr: IPNetwork) -> IPNetwork:
        return self._overlapping_used(cidr)[0]
