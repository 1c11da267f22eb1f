"""A pool's space as the usage view lays it out: allocations and free gaps in address order, free
gaps as aligned CIDRs, the subnet a free block suggests, quota units per project."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPNetwork, IPSet

from scopenet.services.ipam.rules import space


def net(text: str) -> IPNetwork:
    return IPNetwork(text)


def test_blocks_interleave_allocations_and_free_gaps_in_address_order() -> None:
    (p,) = space.layout([net("10.0.0.0/22")], {net("10.0.1.0/24"): "a", net("10.0.3.128/25"): "b"})
    rows = [(str(b.cidr), b.owner) for b in p.blocks]
    assert rows == [
        ("10.0.0.0/24", None),
        ("10.0.1.0/24", "a"),
        ("10.0.2.0/24", None),
        ("10.0.3.0/25", None),
        ("10.0.3.128/25", "b"),
    ]
    assert (p.total, p.used) == (1024, 384)


def test_a_gap_that_is_not_one_cidr_is_split_into_aligned_blocks() -> None:
    # 10.0.0.64 - 10.0.0.255 free: a /26 and a /25, never one row that is not a CIDR.
    (p,) = space.layout([net("10.0.0.0/24")], {net("10.0.0.0/26"): "a"})
    assert [str(b.cidr) for b in p.blocks if b.owner is None] == ["10.0.0.64/26", "10.0.0.128/25"]


def test_each_prefix_holds_only_its_own_allocations() -> None:
    spaces = space.layout([net("10.9.0.0/24"), net("10.1.0.0/24")], {net("10.9.0.0/25"): "x"})
    assert [str(s.prefix) for s in spaces] == ["10.1.0.0/24", "10.9.0.0/24"]
    assert [s.used for s in spaces] == [0, 128]


@given(st.sets(st.integers(0, 63), max_size=40), st.integers(26, 30))
def test_blocks_tile_the_prefix_exactly(starts: set[int], length: int) -> None:
    prefix = net("10.20.0.0/24")
    size = 1 << (32 - length)
    allocations: dict[IPNetwork, str] = {}
    taken = IPSet()
    for s in sorted(starts):
        cidr = IPNetwork((prefix.first + (s * size) % 256, length), 4)
        if cidr.cidr not in taken and not (IPSet([cidr.cidr]) & taken):
            allocations[cidr.cidr] = "p"
            taken.add(cidr.cidr)
    (p,) = space.layout([prefix], allocations)
    firsts = [b.cidr.first for b in p.blocks]
    assert firsts == sorted(firsts)
    assert sum(int(b.cidr.size) for b in p.blocks) == 256  # disjoint and covering: they tile it
    assert IPSet(b.cidr for b in p.blocks) == IPSet([prefix])


def test_suggested_subnet_for_a_free_block() -> None:
    bounds = {"min_prefixlen": 24, "max_prefixlen": 28, "default_prefixlen": 26}
    assert str(space.suggested(net("10.0.0.0/24"), **bounds)) == "10.0.0.0/24"  # allowed as it is
    assert str(space.suggested(net("10.0.2.0/23"), **bounds)) == "10.0.2.0/26"  # too big: first default
    assert space.suggested(net("10.0.0.16/29"), **bounds) is None  # smaller than any allowed subnet
    wide = {"min_prefixlen": 16, "max_prefixlen": 28, "default_prefixlen": 24}
    assert str(space.suggested(net("10.0.0.0/8"), **wide)) == "10.0.0.0/24"


def test_project_use_counts_quota_units() -> None:
    uses = space.project_use([("b", net("2001:db8::/64")), ("a", net("10.0.0.0/26")), ("b", net("2001:db8:1::/65"))])
    assert list(uses) == ["a", "b"]
    assert (uses["a"].subnets, uses["a"].addresses, uses["a"].units) == (1, 64, 64)
    assert uses["b"].subnets == 2
    assert uses["b"].units == Fraction(3, 2)  # a /64 is one unit, a /65 half of one


def test_percent_two_decimals_and_empty_pool() -> None:
    assert space.percent(352, 1280) == 27.5
    assert space.percent(1, 3) == 33.33
    assert space.percent(0, 0) == 0.0


def test_prefix_delta_is_address_space_not_text() -> None:
    added, removed = space.prefix_delta([net("10.0.1.0/24")], [net("10.0.0.0/23")])
    assert ([str(c) for c in added], removed) == (["10.0.0.0/24"], [])
    added, removed = space.prefix_delta([net("10.0.0.0/23"), net("10.5.0.0/24")], [net("10.0.0.0/24")])
    assert (added, [str(c) for c in removed]) == ([], ["10.0.1.0/24", "10.5.0.0/24"])
