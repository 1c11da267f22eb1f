"""Subnet-pool prefix rules (docs/neutron.md#subnet-pools): parsing, bounds, growth, removal, quota, overlap."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPNetwork, IPSet

from scopenet.contracts.errors import DomainError
from scopenet.services.ipam.rules.prefixes import (
    MAX_PREFIXES,
    check_prefix_update,
    check_quota,
    compact,
    merge_prefixes,
    normalize_prefixes,
    overlaps,
    prefix_bounds,
    quota_units,
    remove_prefixes,
    used_units,
)


def nets(*cidrs: str) -> list[IPNetwork]:
    return [IPNetwork(c) for c in cidrs]


def expect(exc: pytest.ExceptionInfo[DomainError], code: int, type_: str) -> DomainError:
    assert (exc.value.code, exc.value.type) == (code, type_), exc.value.to_dict()
    return exc.value


# Random CIDRs inside 10.0.0.0/20 (and its IPv6 twin ::a00:0/116, same integers), dense enough to collide.
def cidrs_in(base: str, min_len: int, max_len: int) -> st.SearchStrategy[IPNetwork]:
    root = IPNetwork(base)
    bits = 32 if root.version == 4 else 128

    def build(offset: int, plen: int) -> IPNetwork:
        size = 1 << (bits - plen)
        return IPNetwork((root.first + (offset % root.size) // size * size, plen), root.version)

    return st.builds(build, st.integers(0, root.size - 1), st.integers(min_len, max_len))


v4_cidrs = cidrs_in("10.0.0.0/20", 20, 28)


class TestNormalizePrefixes:
    def test_host_bits_dropped(self) -> None:
        assert normalize_prefixes(["10.1.2.3/16"]) == nets("10.1.0.0/16")

    def test_adjacent_blocks_compacted(self) -> None:
        assert normalize_prefixes(["10.0.1.0/24", "10.0.0.0/24"]) == nets("10.0.0.0/23")

    def test_overlapping_blocks_absorbed_and_sorted(self) -> None:
        got = normalize_prefixes(["192.168.0.0/24", "10.1.0.0/16", "10.0.0.0/8"])
        assert got == nets("10.0.0.0/8", "192.168.0.0/24")

    def test_ipv6(self) -> None:
        assert normalize_prefixes(["2001:db8:a583::/48"]) == nets("2001:db8:a583::/48")

    def test_empty_list(self) -> None:
        with pytest.raises(DomainError) as exc:
            normalize_prefixes([])
        expect(exc, 400, "EmptySubnetPoolPrefixList")

    def test_mixed_versions(self) -> None:
        with pytest.raises(DomainError) as exc:
            normalize_prefixes(["10.0.0.0/8", "2001:db8::/32"])
        expect(exc, 400, "PrefixVersionMismatch")

    def test_duplicates_name_the_field(self) -> None:
        with pytest.raises(DomainError) as exc:
            normalize_prefixes(["10.0.0.0/24", "10.0.0.0/24"], field="add_prefixes")
        err = expect(exc, 400, "InvalidInput")
        assert err.field == "add_prefixes"
        assert "10.0.0.0/24" in err.message

    def test_same_network_written_differently_is_not_a_duplicate(self) -> None:
        assert normalize_prefixes(["10.0.0.0/24", "10.0.0.1/24"]) == nets("10.0.0.0/24")

    @pytest.mark.parametrize("raw", ["0.0.0.0/0", "::/0", "10.0.0.0/0"])
    def test_slash_zero_refused(self, raw: str) -> None:
        with pytest.raises(DomainError) as exc:
            normalize_prefixes([raw])
        assert exc.value.code == 400
        assert exc.value.field == "prefixes"

    @pytest.mark.parametrize(
        "raw", ["10.0.0.0", "10.0.0.300/24", "foo", "10.0.0.0/33", " 10.0.0.0/8", "2001:db8::/129", "10/8", 5, None]
    )
    def test_invalid_cidr(self, raw: object) -> None:
        with pytest.raises(DomainError) as exc:
            normalize_prefixes([raw])  # type: ignore[list-item]
        assert exc.value.code == 400

    def test_not_a_list(self) -> None:
        with pytest.raises(DomainError) as exc:
            normalize_prefixes("10.0.0.0/8")  # type: ignore[arg-type]
        assert exc.value.code == 400

    def test_size_limit(self) -> None:
        many = [f"10.{i // 256}.{i % 256}.0/24" for i in range(MAX_PREFIXES + 1)]
        assert IPSet(normalize_prefixes(many[:MAX_PREFIXES])).size == MAX_PREFIXES * 256
        with pytest.raises(DomainError) as exc:
            normalize_prefixes(many)
        assert exc.value.code == 400

    @given(st.lists(v4_cidrs, min_size=1, max_size=12, unique=True))
    def test_result_is_canonical_and_covers_the_same_addresses(self, cidrs: list[IPNetwork]) -> None:
        got = normalize_prefixes([str(c) for c in cidrs])
        assert IPSet(got) == IPSet(cidrs)
        assert got == sorted(got, key=lambda n: n.first)
        for a, b in itertools.pairwise(got):
            assert a.last < b.first  # disjoint
            # maximal: two buddies would have been merged into their parent
            assert not (a.prefixlen == b.prefixlen and a.supernet(a.prefixlen - 1) == b.supernet(b.prefixlen - 1))


class TestPrefixBounds:
    def test_defaults(self) -> None:
        assert prefix_bounds(4, min_prefixlen=None, max_prefixlen=None, default_prefixlen=None) == (8, 32, 8)
        assert prefix_bounds(6, min_prefixlen=None, max_prefixlen=None, default_prefixlen=None) == (64, 128, 64)

    def test_default_follows_given_min(self) -> None:
        assert prefix_bounds(4, min_prefixlen=24, max_prefixlen=None, default_prefixlen=None) == (24, 32, 24)

    def test_min_zero_computes_default(self) -> None:
        # Neutron: 500 there (docs/neutron.md#min_prefixlen-0-works); here the default is computed.
        assert prefix_bounds(4, min_prefixlen=0, max_prefixlen=None, default_prefixlen=None) == (0, 32, 0)

    def test_explicit(self) -> None:
        assert prefix_bounds(6, min_prefixlen=48, max_prefixlen=128, default_prefixlen=64) == (48, 128, 64)

    @pytest.mark.parametrize(
        ("version", "mn", "mx", "df", "message"),
        [
            (4, 30, 24, None, "Illegal prefix bounds: min_prefixlen=30, max_prefixlen=24."),
            (4, None, 33, None, "Illegal prefix bounds: max_prefixlen=33, ip_version_max=32."),
            (6, None, 129, None, "Illegal prefix bounds: max_prefixlen=129, ip_version_max=128."),
            (4, 16, 28, 8, "Illegal prefix bounds: default_prefixlen=8, min_prefixlen=16."),
            (4, 16, 28, 29, "Illegal prefix bounds: default_prefixlen=29, max_prefixlen=28."),
            (4, None, None, 0, "Illegal prefix bounds: default_prefixlen=0, min_prefixlen=8."),
        ],
    )
    def test_illegal_bounds(self, version: int, mn: int | None, mx: int | None, df: int | None, message: str) -> None:
        with pytest.raises(DomainError) as exc:
            prefix_bounds(version, min_prefixlen=mn, max_prefixlen=mx, default_prefixlen=df)
        assert expect(exc, 400, "IllegalSubnetPoolPrefixBounds").message == message

    @pytest.mark.parametrize("field", ["min_prefixlen", "max_prefixlen", "default_prefixlen"])
    @pytest.mark.parametrize("value", [-1, "24", True, 2.0])
    def test_non_integer_or_negative(self, field: str, value: object) -> None:
        with pytest.raises(DomainError) as exc:
            prefix_bounds(4, **{"min_prefixlen": None, "max_prefixlen": None, "default_prefixlen": None, field: value})  # type: ignore[arg-type]
        assert expect(exc, 400, "InvalidInput").field == field

    def test_bad_ip_version(self) -> None:
        with pytest.raises(DomainError) as exc:
            prefix_bounds(5, min_prefixlen=None, max_prefixlen=None, default_prefixlen=None)
        assert exc.value.code == 400


class TestPrefixUpdate:
    def test_growth_allowed(self) -> None:
        check_prefix_update(nets("10.0.0.0/24"), nets("10.0.0.0/24", "10.9.0.0/16"))
        check_prefix_update(nets("10.0.0.0/24"), nets("10.0.0.0/16"))  # absorbed by a covering prefix

    @pytest.mark.parametrize("new", [["10.0.0.0/25"], ["10.1.0.0/24"]])
    def test_shrink_or_replace_refused(self, new: list[str]) -> None:
        with pytest.raises(DomainError) as exc:
            check_prefix_update(nets("10.0.0.0/24"), nets(*new))
        err = expect(exc, 400, "IllegalSubnetPoolPrefixUpdate")
        assert "Existing prefixes must be a subset of the new prefixes" in err.message

    def test_version_mismatch(self) -> None:
        with pytest.raises(DomainError) as exc:
            check_prefix_update(nets("10.0.0.0/24"), nets("10.0.0.0/24", "2001:db8::/64"))
        expect(exc, 400, "PrefixVersionMismatch")

    def test_merge_prefixes(self) -> None:
        got = merge_prefixes(nets("10.0.0.0/24"), nets("10.0.1.0/24", "10.0.0.128/25", "192.168.0.0/24"))
        assert got == nets("10.0.0.0/23", "192.168.0.0/24")

    def test_merge_version_mismatch(self) -> None:
        with pytest.raises(DomainError) as exc:
            merge_prefixes(nets("10.0.0.0/24"), nets("2001:db8::/64"))
        expect(exc, 400, "PrefixVersionMismatch")


class TestRemovePrefixes:
    def test_partial_block(self) -> None:
        assert remove_prefixes(nets("192.168.0.0/24"), nets("192.168.0.128/25"), []) == nets("192.168.0.0/25")

    def test_hole_in_the_middle(self) -> None:
        got = remove_prefixes(nets("10.0.0.0/24"), nets("10.0.0.64/26"), nets("10.0.0.0/26"))
        assert got == nets("10.0.0.0/26", "10.0.0.128/25")

    def test_disjoint_request_is_a_no_op(self) -> None:
        current = nets("10.0.0.0/24", "10.0.1.0/24")
        assert remove_prefixes(current, nets("172.16.0.0/12"), nets("10.0.0.0/24")) == nets("10.0.0.0/23")

    def test_in_use(self) -> None:
        with pytest.raises(DomainError) as exc:
            remove_prefixes(nets("10.0.0.0/16"), nets("10.0.0.0/24"), nets("10.0.0.128/26"))
        err = expect(exc, 400, "IllegalSubnetPoolPrefixUpdate")
        assert "One or more the prefixes to be removed is in use by a subnet." in err.message

    def test_allocation_covering_the_removal_is_in_use(self) -> None:
        with pytest.raises(DomainError):
            remove_prefixes(nets("10.0.0.0/16"), nets("10.0.0.128/26"), nets("10.0.0.0/24"))

    def test_everything_can_go(self) -> None:
        assert remove_prefixes(nets("10.0.0.0/24"), nets("10.0.0.0/8"), []) == []

    def test_version_mismatch(self) -> None:
        with pytest.raises(DomainError) as exc:
            remove_prefixes(nets("10.0.0.0/24"), nets("2001:db8::/64"), [])
        expect(exc, 400, "PrefixVersionMismatch")

    @given(st.lists(v4_cidrs, min_size=1, max_size=6), st.lists(v4_cidrs, min_size=1, max_size=4))
    def test_is_set_subtraction(self, pool: list[IPNetwork], removed: list[IPNetwork]) -> None:
        got = remove_prefixes(pool, removed, [])
        assert IPSet(got) == IPSet(pool) - IPSet(removed)
        assert got == compact(got)  # already canonical


class TestQuota:
    @pytest.mark.parametrize(
        ("cidr", "units"),
        [
            ("10.0.0.0/24", 256),
            ("10.0.0.7/32", 1),
            ("10.0.0.0/8", 1 << 24),
            ("2001:db8::/64", 1),
            ("2001:db8::/48", 65536),
            ("2001:db8::/65", Fraction(1, 2)),
            ("2001:db8::1/128", Fraction(1, 1 << 64)),
        ],
    )
    def test_units(self, cidr: str, units: int | Fraction) -> None:
        got = quota_units(IPNetwork(cidr))
        assert got == units
        assert type(got) is type(units)

    def test_fractions_add_up_exactly(self) -> None:
        assert used_units(nets("2001:db8::/65", "2001:db8:0:0:8000::/65")) == 1
        assert used_units(nets("2001:db8::/128") * 3) == Fraction(3, 1 << 64)

    @pytest.mark.parametrize("quota", [None, 0])
    def test_null_and_zero_are_unlimited(self, quota: int | None) -> None:
        check_quota(quota, 10**9, 8, 4)

    def test_quota_4_fits_a_slash_30(self) -> None:
        check_quota(4, 0, 30, 4)
        with pytest.raises(DomainError):
            check_quota(4, 1, 30, 4)

    def test_two_slash_21_against_2048(self) -> None:
        check_quota(2048, used_units([]), 21, 4)
        with pytest.raises(DomainError) as exc:
            check_quota(2048, used_units(nets("10.0.0.0/21")), 21, 4)
        err = expect(exc, 409, "SubnetPoolQuotaExceeded")
        assert err.message == "Per-project subnet pool prefix quota exceeded."

    def test_ipv6_fraction_fills_exactly(self) -> None:
        check_quota(1, Fraction(1, 2), 65, 6)
        with pytest.raises(DomainError):
            check_quota(1, Fraction(1, 2), 64, 6)


class TestOverlaps:
    def test_names_both_sides_in_order(self) -> None:
        got = overlaps(nets("10.0.0.0/16", "192.168.0.0/24"), nets("10.0.5.0/24", "10.1.0.0/16", "10.0.0.0/8"))
        assert got == [
            (IPNetwork("10.0.0.0/16"), IPNetwork("10.0.0.0/8")),
            (IPNetwork("10.0.0.0/16"), IPNetwork("10.0.5.0/24")),
        ]

    def test_versions_never_overlap(self) -> None:
        assert overlaps(nets("10.0.0.0/16"), nets("::a00:0/112")) == []

    def test_adjacent_is_not_overlap(self) -> None:
        assert overlaps(nets("10.0.0.0/24"), nets("10.0.1.0/24")) == []

    @given(st.lists(v4_cidrs, max_size=8), st.lists(v4_cidrs, max_size=8))
    def test_matches_brute_force(self, a: list[IPNetwork], b: list[IPNetwork]) -> None:
        expected = {(x, y) for x in a for y in b if x.first <= y.last and y.first <= x.last}
        got = overlaps(a, b)
        assert set(got) == expected
        assert len(got) == len(expected)
