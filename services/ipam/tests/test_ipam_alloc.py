"""Prefix allocation from a pool (docs/neutron.md#prefix-allocation): the reference best fit and ``FreeBlocks``.

The property tests check the reference against a brute-force oracle built from plain sets of integer
addresses (no netaddr IPSet), then check ``FreeBlocks`` against the reference under random sequences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPNetwork, IPSet

from scopenet.contracts.errors import DomainError
from scopenet.services.ipam.rules.alloc import FreeBlocks, allocate, allocate_specific, check_prefixlen, free_blocks


def nets(*cidrs: str) -> list[IPNetwork]:
    return [IPNetwork(c) for c in cidrs]


Allocator = Callable[[list[IPNetwork], list[IPNetwork], int], IPNetwork]
SpecificAllocator = Callable[[list[IPNetwork], list[IPNetwork], IPNetwork], IPNetwork]


def fb_allocate(pool: list[IPNetwork], used: list[IPNetwork], plen: int) -> IPNetwork:
    return FreeBlocks(pool, used).allocate(plen)


def fb_allocate_specific(pool: list[IPNetwork], used: list[IPNetwork], cidr: IPNetwork) -> IPNetwork:
    return FreeBlocks(pool, used).allocate_specific(cidr)


both_allocators = pytest.mark.parametrize("alloc", [allocate, fb_allocate])


def expect(exc: pytest.ExceptionInfo[DomainError], code: int, type_: str) -> DomainError:
    assert (exc.value.code, exc.value.type) == (code, type_), exc.value.to_dict()
    return exc.value


# -- examples ---------------------------------------------------------------------------------------


def test_spec_probe_sequence() -> None:
    pool = nets("10.0.0.0/16", "192.168.0.0/24")
    used: list[IPNetwork] = []
    fb = FreeBlocks(pool, [])
    for plen, want in [
        (24, "192.168.0.0/24"),
        (24, "10.0.0.0/24"),
        (26, "10.0.1.0/26"),
        (26, "10.0.1.64/26"),
        (25, "10.0.1.128/25"),
    ]:
        got = allocate(pool, used, plen)
        assert got == IPNetwork(want)
        assert fb.allocate(plen) == got
        used.append(got)


def test_smallest_hole_first_then_lowest_address() -> None:
    pool = nets("10.0.0.0/24")
    used = nets("10.0.0.0/26", "10.0.0.128/27")  # free: .64/26, .160/27, .192/26
    assert [str(b) for b in free_blocks(pool, used)] == ["10.0.0.160/27", "10.0.0.64/26", "10.0.0.192/26"]
    assert allocate(pool, used, 28) == IPNetwork("10.0.0.160/28")
    assert allocate(pool, used, 26) == IPNetwork("10.0.0.64/26")  # equal length: lower address wins


def test_seed_pools() -> None:
    assert allocate(nets("203.0.113.0/24"), [], 26) == IPNetwork("203.0.113.0/26")
    assert allocate(nets("2001:db8:a583::/48"), [], 64) == IPNetwork("2001:db8:a583::/64")


def test_used_outside_the_pool_is_ignored() -> None:
    assert allocate(nets("10.0.0.0/24"), nets("172.16.0.0/24", "2001:db8::/64"), 24) == IPNetwork("10.0.0.0/24")


@both_allocators
def test_exhaustion_says_what_and_why(alloc: Allocator) -> None:
    pool = nets("203.0.113.0/24")
    used = nets("203.0.113.0/26", "203.0.113.64/26", "203.0.113.128/26", "203.0.113.192/27")
    with pytest.raises(DomainError) as exc:
        alloc(pool, used, 26)
    err = expect(exc, 409, "SubnetAllocationError")
    assert err.message == "No free /26 left in subnet pool prefixes 203.0.113.0/24 (largest free block: /27)"


def test_full_pool_and_empty_pool_messages() -> None:
    with pytest.raises(DomainError) as exc:
        allocate(nets("10.0.0.0/24"), nets("10.0.0.0/24"), 28)
    assert "(the pool is full)" in expect(exc, 409, "SubnetAllocationError").message
    with pytest.raises(DomainError) as exc:
        FreeBlocks([], []).allocate(24)
    assert "has no prefixes" in expect(exc, 409, "SubnetAllocationError").message


def test_long_prefix_lists_are_shortened_in_messages() -> None:
    pool = [IPNetwork(f"10.{i}.0.0/24") for i in range(0, 14, 2)]
    with pytest.raises(DomainError) as exc:
        allocate(pool, pool, 24)
    assert "10.8.0.0/24 and 2 more" in exc.value.message
    assert "10.12.0.0" not in exc.value.message


@pytest.mark.parametrize(("pool", "plen"), [("10.0.0.0/8", 33), ("10.0.0.0/8", -1), ("2001:db8::/32", 129)])
@both_allocators
def test_prefixlen_beyond_the_family_is_400(alloc: Allocator, pool: str, plen: int) -> None:
    with pytest.raises(DomainError) as exc:
        alloc(nets(pool), [], plen)
    expect(exc, 400, "AddrFormatError")


class TestSpecific:
    pool = nets("10.0.0.0/16")
    used = nets("10.0.1.0/24")

    def test_granted(self) -> None:
        assert allocate_specific(self.pool, self.used, IPNetwork("10.0.2.0/24")) == IPNetwork("10.0.2.0/24")

    def test_host_bits_dropped(self) -> None:
        assert allocate_specific(self.pool, self.used, IPNetwork("10.0.2.5/24")) == IPNetwork("10.0.2.0/24")

    @pytest.mark.parametrize("cidr", ["10.1.0.0/24", "10.0.0.0/15", "9.255.255.0/24"])
    def test_outside_the_pool(self, cidr: str) -> None:
        with pytest.raises(DomainError) as exc:
            allocate_specific(self.pool, self.used, IPNetwork(cidr))
        err = expect(exc, 409, "SubnetAllocationError")
        assert err.message == f"Cannot allocate {cidr}: it is outside the subnet pool's prefixes 10.0.0.0/16"

    @pytest.mark.parametrize("cidr", ["10.0.0.0/23", "10.0.1.0/24", "10.0.1.128/25", "10.0.0.0/16"])
    @pytest.mark.parametrize("specific", [allocate_specific, fb_allocate_specific])
    def test_overlaps_an_allocation(self, specific: SpecificAllocator, cidr: str) -> None:
        with pytest.raises(DomainError) as exc:
            specific(self.pool, self.used, IPNetwork(cidr))
        err = expect(exc, 409, "SubnetAllocationError")
        assert err.message == f"Cannot allocate {cidr}: it overlaps allocated subnet 10.0.1.0/24"

    def test_version_mismatch(self) -> None:
        with pytest.raises(DomainError) as exc:
            allocate_specific(self.pool, [], IPNetwork("2001:db8::/64"))
        assert "Cannot allocate IPv6 subnet from IPv4 subnet pool" in expect(exc, 400, "BadRequest").message


class TestCheckPrefixlen:
    def test_within_bounds(self) -> None:
        check_prefixlen(26, min_prefixlen=24, max_prefixlen=28, ip_version=4)

    def test_too_long(self) -> None:
        with pytest.raises(DomainError) as exc:
            check_prefixlen(29, min_prefixlen=24, max_prefixlen=28, ip_version=4)
        err = expect(exc, 400, "MaxPrefixSubnetAllocationError")
        assert err.message == "Unable to allocate subnet with prefix length 29, maximum allowed prefix is 28."

    def test_too_short(self) -> None:
        with pytest.raises(DomainError) as exc:
            check_prefixlen(23, min_prefixlen=24, max_prefixlen=28, ip_version=4)
        expect(exc, 400, "MinPrefixSubnetAllocationError")

    @pytest.mark.parametrize(("plen", "version"), [(33, 4), (-1, 4), (129, 6)])
    def test_beyond_the_family(self, plen: int, version: int) -> None:
        with pytest.raises(DomainError) as exc:
            check_prefixlen(plen, min_prefixlen=0, max_prefixlen=128, ip_version=version)
        expect(exc, 400, "AddrFormatError")


class TestFreeBlocksExamples:
    def test_release_merges_back_to_the_pool_prefixes(self) -> None:
        pool = nets("10.0.0.0/23", "10.0.4.0/24")
        fb = FreeBlocks(pool, [])
        got = [fb.allocate(26) for _ in range(12)]
        assert fb.free_blocks() == []
        assert fb.free_addresses() == 0
        for cidr in reversed(got):
            fb.release(cidr)
        assert fb.free_blocks() == nets("10.0.4.0/24", "10.0.0.0/23")  # Neutron order: longest first
        assert fb.free_addresses() == 768

    def test_release_of_unallocated_cidr(self) -> None:
        fb = FreeBlocks(nets("10.0.0.0/24"), nets("10.0.0.0/26"))
        with pytest.raises(ValueError, match="not allocated"):
            fb.release(IPNetwork("10.0.0.64/26"))
        with pytest.raises(ValueError):
            fb.release(IPNetwork("10.0.0.0/25"))

    def test_release_of_an_allocation_covering_a_whole_pool_prefix(self) -> None:
        fb = FreeBlocks(nets("10.0.0.0/24", "10.0.2.0/24"), nets("10.0.0.0/22"))
        assert fb.free_addresses() == 0
        fb.release(IPNetwork("10.0.0.0/22"))
        assert fb.free_blocks() == nets("10.0.0.0/24", "10.0.2.0/24")

    def test_ipv6_sizes_are_exact(self) -> None:
        fb = FreeBlocks(nets("2001:db8:a583::/48"), [])
        assert fb.allocate(64) == IPNetwork("2001:db8:a583::/64")
        assert fb.free_addresses() == (1 << 80) - (1 << 64)
        assert fb.allocate_specific(IPNetwork("2001:db8:a583:ffff::/64")) == IPNetwork("2001:db8:a583:ffff::/64")
        assert fb.allocate(128) == IPNetwork("2001:db8:a583:1::/128")


# -- properties against a brute-force oracle --------------------------------------------------------

REGION = IPNetwork("10.0.0.0/23")  # 512 addresses: small enough to reason about address by address


def in_region(min_len: int, max_len: int) -> st.SearchStrategy[IPNetwork]:
    def build(offset: int, plen: int) -> IPNetwork:
        size = 1 << (32 - plen)
        return IPNetwork((REGION.first + offset // size * size, plen), 4)

    return st.builds(build, st.integers(0, REGION.size - 1), st.integers(min_len, max_len))


def addrs(cidrs: list[IPNetwork]) -> set[int]:
    return {a for c in cidrs for a in range(c.first, c.last + 1)}


def maximal_free_blocks(free: set[int]) -> list[tuple[int, int]]:
    """Every aligned block that is wholly free while its parent is not: the canonical decomposition."""
    out = []
    for plen in range(REGION.prefixlen, 33):
        size = 1 << (32 - plen)
        for start in range(REGION.first, REGION.last + 1, size):
            parent = start & ~((size << 1) - 1)
            whole = all(a in free for a in range(start, start + size))
            parent_whole = all(a in free for a in range(parent, parent + 2 * size))
            if whole and not parent_whole:
                out.append((start, plen))
    return out


pools = st.lists(in_region(23, 28), min_size=1, max_size=4)
used_lists = st.lists(in_region(24, 32), max_size=8)


@given(pools, used_lists, st.integers(23, 32))
def test_allocate_is_best_fit(pool: list[IPNetwork], used: list[IPNetwork], plen: int) -> None:
    free = addrs(pool) - addrs(used)
    fitting = [(start, q) for start, q in maximal_free_blocks(free) if q <= plen]
    if not fitting:
        with pytest.raises(DomainError) as exc:
            allocate(pool, used, plen)
        expect(exc, 409, "SubnetAllocationError")
        return
    got = allocate(pool, used, plen)
    assert got.prefixlen == plen
    assert addrs([got]) <= free  # inside the pool, overlapping nothing allocated
    smallest = max(q for _, q in fitting)
    start = min(s for s, q in fitting if q == smallest)
    assert got.first == start  # lowest /plen of the smallest (then lowest) free block that fits


@given(pools, used_lists, in_region(23, 32))
def test_allocate_specific_iff_wholly_free(pool: list[IPNetwork], used: list[IPNetwork], cidr: IPNetwork) -> None:
    free = addrs(pool) - addrs(used)
    if addrs([cidr]) <= free:
        assert allocate_specific(pool, used, cidr) == cidr
    else:
        with pytest.raises(DomainError) as exc:
            allocate_specific(pool, used, cidr)
        err = expect(exc, 409, "SubnetAllocationError")
        assert ("outside" in err.message) == (not addrs([cidr]) <= addrs(pool))


@given(pools, st.lists(st.integers(24, 30), min_size=1, max_size=40))
def test_successive_allocations_never_overlap(pool: list[IPNetwork], lengths: list[int]) -> None:
    used: list[IPNetwork] = []
    for plen in lengths:
        try:
            got = allocate(pool, used, plen)
        except DomainError:
            assert all(q > plen for _, q in maximal_free_blocks(addrs(pool) - addrs(used)))
            continue
        assert addrs([got]) <= addrs(pool)
        assert not addrs([got]) & addrs(used)
        used.append(got)


# -- FreeBlocks is the reference, incrementally -----------------------------------------------------


@dataclass(frozen=True)
class Alloc:
    plen: int


@dataclass(frozen=True)
class Specific:
    cidr: IPNetwork


@dataclass(frozen=True)
class Release:
    index: int


def outcome(call: object) -> tuple[str, object]:
    assert callable(call)
    try:
        return ("ok", call())
    except DomainError as err:
        return ("err", (err.code, err.type, err.message))


def check_sequence(pool: list[IPNetwork], used0: list[IPNetwork], ops: list[object]) -> None:
    used = list(used0)
    fb = FreeBlocks(pool, used)
    for op in ops:
        if isinstance(op, Alloc):
            ref = outcome(lambda: allocate(pool, used, op.plen))  # noqa: B023
            inc = outcome(lambda: fb.allocate(op.plen))  # noqa: B023
        elif isinstance(op, Specific):
            ref = outcome(lambda: allocate_specific(pool, used, op.cidr))  # noqa: B023
            inc = outcome(lambda: fb.allocate_specific(op.cidr))  # noqa: B023
        else:
            assert isinstance(op, Release)
            if not used:
                continue
            cidr = used.pop(op.index % len(used))
            fb.release(cidr)
            ref = inc = ("ok", None)
        assert inc == ref
        if ref[0] == "ok" and ref[1] is not None:
            assert isinstance(ref[1], IPNetwork)
            used.append(ref[1])
        assert fb.free_blocks() == free_blocks(pool, used)
        assert fb.free_addresses() == (IPSet(pool) - IPSet(used)).size


def ops_for(cidrs: st.SearchStrategy[IPNetwork], lengths: st.SearchStrategy[int]) -> st.SearchStrategy[list[object]]:
    op = st.one_of(
        lengths.map(Alloc), cidrs.map(Specific), st.integers(0, 1000).map(Release), st.integers(0, 1000).map(Release)
    )
    return st.lists(op, max_size=40)


@settings(max_examples=150)
@given(pools, used_lists, ops_for(in_region(23, 32), st.integers(23, 32)))
def test_free_blocks_matches_reference_ipv4(pool: list[IPNetwork], used: list[IPNetwork], ops: list[object]) -> None:
    check_sequence(pool, used, ops)


V6 = IPNetwork("2001:db8:a583::/48")


def in_v6(min_len: int, max_len: int) -> st.SearchStrategy[IPNetwork]:
    def build(offset: int, plen: int) -> IPNetwork:
        size = 1 << (128 - plen)
        return IPNetwork((V6.first + (offset << 60) // size * size, plen), 6)

    return st.builds(build, st.integers(0, (1 << 20) - 1), st.integers(min_len, max_len))


@settings(max_examples=60)
@given(
    st.lists(in_v6(48, 56), min_size=1, max_size=3),
    st.lists(in_v6(52, 128), max_size=6),
    ops_for(in_v6(48, 128), st.sampled_from([48, 52, 56, 60, 63, 64, 100, 127, 128])),
)
def test_free_blocks_matches_reference_ipv6(pool: list[IPNetwork], used: list[IPNetwork], ops: list[object]) -> None:
    check_sequence(pool, used, ops)
