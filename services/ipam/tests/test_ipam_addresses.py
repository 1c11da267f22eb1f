"""Gateway / allocation-pool defaults (rules 45-47) and address allocation (rules 54-58)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork, IPRange

from scopenet.contracts.errors import DomainError
from scopenet.services.ipam.rules.addresses import UNSET, FreeAddresses, Unset, subnet_defaults, validate_cidr
from scopenet.services.ipam.rules.alloc import allocate


def expect(exc: pytest.ExceptionInfo[DomainError], code: int, type_: str) -> DomainError:
    assert (exc.value.code, exc.value.type) == (code, type_), exc.value.to_dict()
    return exc.value


def rng(start: str, end: str) -> IPRange:
    return IPRange(start, end)


def defaults(
    cidr: str,
    gateway_ip: str | Unset | None = UNSET,
    pools: list[dict[str, str]] | None = None,
    *,
    any_: bool = False,
) -> tuple[str | None, list[str]]:
    gw, ranges = subnet_defaults(IPNetwork(cidr), gateway_ip=gateway_ip, allocation_pools=pools, from_pool_any=any_)
    return (None if gw is None else str(gw)), [str(r) for r in ranges]


# -- docs/neutron.md#gateway-and-allocation-pools ----------------------------------------------------------------


class TestDefaultsTable:
    def test_ipv4_cidr(self) -> None:
        assert defaults("10.0.0.0/24") == ("10.0.0.1", ["10.0.0.2-10.0.0.254"])

    def test_ipv6_cidr_gets_colon_colon_1_like_a_pool_subnet(self) -> None:
        # docs/neutron.md#the-ipv6-gateway-does-not-depend-on-how-the-subnet-was-asked-for: Neutron gives
        # an explicit IPv6 cidr the network address (``::``) as its gateway but a pool subnet ``::1``;
        # scopenet gives ``::1`` both ways (as the walkthrough shows).
        assert defaults("2001:db8:80d2:c4d3::/64") == (
            "2001:db8:80d2:c4d3::1",
            ["2001:db8:80d2:c4d3::2-2001:db8:80d2:c4d3:ffff:ffff:ffff:ffff"],
        )

    def test_seed_ipv4_pool_any(self) -> None:
        cidr = allocate([IPNetwork("203.0.113.0/24")], [], 26)
        gw, ranges = subnet_defaults(cidr, from_pool_any=True)
        assert (cidr, gw, ranges) == (
            IPNetwork("203.0.113.0/26"),
            IPAddress("203.0.113.1"),
            [rng("203.0.113.2", "203.0.113.62")],
        )

    def test_seed_ipv6_pool_any_uses_colon_colon_1(self) -> None:
        cidr = allocate([IPNetwork("2001:db8:a583::/48")], [], 64)
        gw, ranges = subnet_defaults(cidr, from_pool_any=True)
        assert gw == IPAddress("2001:db8:a583::1")
        assert ranges == [rng("2001:db8:a583::2", "2001:db8:a583:0:ffff:ffff:ffff:ffff")]

    @pytest.mark.parametrize(
        ("cidr", "want"),
        [("10.0.0.0/24", ["10.0.0.1-10.0.0.254"]), ("2001:db8::/64", ["2001:db8::1-2001:db8::ffff:ffff:ffff:ffff"])],
    )
    def test_null_gateway(self, cidr: str, want: list[str]) -> None:
        assert defaults(cidr, None) == (None, want)
        assert defaults(cidr, None, any_=True) == (None, want)

    @pytest.mark.parametrize(
        ("gw", "want"),
        [
            ("10.0.0.100", ["10.0.0.1-10.0.0.99", "10.0.0.101-10.0.0.254"]),
            ("10.0.0.254", ["10.0.0.1-10.0.0.253"]),
            ("10.0.0.1", ["10.0.0.2-10.0.0.254"]),
            ("192.168.1.1", ["10.0.0.1-10.0.0.254"]),  # outside the cidr: on-link, allowed
        ],
    )
    def test_explicit_gateway_splits_the_range(self, gw: str, want: list[str]) -> None:
        assert defaults("10.0.0.0/24", gw) == (gw, want)

    @pytest.mark.parametrize("gw", ["2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"])
    def test_ipv6_network_and_last_are_valid_gateways(self, gw: str) -> None:
        assert defaults("2001:db8::/64", gw)[0] == str(IPAddress(gw))


class TestGatewayValidation:
    @pytest.mark.parametrize("gw", ["10.0.0.0", "10.0.0.255"])
    def test_ipv4_network_or_broadcast(self, gw: str) -> None:
        with pytest.raises(DomainError) as exc:
            defaults("10.0.0.0/24", gw)
        err = expect(exc, 400, "InvalidInput")
        assert (err.message, err.field) == ("Gateway is not valid on subnet", "gateway_ip")

    def test_pool_request_with_network_gateway_is_ipam_value_invalid(self) -> None:
        with pytest.raises(DomainError) as exc:
            defaults("10.0.0.0/24", "10.0.0.0", any_=True)
        expect(exc, 409, "IpamValueInvalid")

    @pytest.mark.parametrize(("cidr", "gw"), [("10.0.0.0/24", "2001:db8::1"), ("2001:db8::/64", "10.0.0.1")])
    def test_version_mismatch(self, cidr: str, gw: str) -> None:
        with pytest.raises(DomainError) as exc:
            defaults(cidr, gw)
        assert expect(exc, 400, "InvalidInput").field == "gateway_ip"

    def test_not_an_address(self) -> None:
        with pytest.raises(DomainError) as exc:
            defaults("10.0.0.0/24", "10.0.0.x")
        expect(exc, 400, "InvalidInput")


class TestAllocationPools:
    def test_valid_pools_are_kept(self) -> None:
        pools = [{"start": "10.0.0.10", "end": "10.0.0.20"}, {"start": "10.0.0.30", "end": "10.0.0.40"}]
        assert defaults("10.0.0.0/24", pools=pools) == ("10.0.0.1", ["10.0.0.10-10.0.0.20", "10.0.0.30-10.0.0.40"])

    def test_empty_list_means_no_pools(self) -> None:
        assert defaults("10.0.0.0/24", pools=[]) == ("10.0.0.1", [])

    @pytest.mark.parametrize(
        "pool",
        [
            {"start": "10.0.0.x", "end": "10.0.0.20"},
            {"start": "10.0.0.20", "end": "10.0.0.10"},
            {"start": "2001:db8::1", "end": "2001:db8::5"},
            {"start": "10.0.0.10"},
            {"start": "10.0.0.10", "end": "10.0.0.20", "extra": "x"},
            {"start": 10, "end": 20},
            "10.0.0.10-10.0.0.20",
        ],
    )
    def test_invalid(self, pool: dict[str, str]) -> None:
        with pytest.raises(DomainError) as exc:
            defaults("10.0.0.0/24", pools=[pool])
        assert expect(exc, 400, "InvalidAllocationPool").field == "allocation_pools"

    @pytest.mark.parametrize(
        ("cidr", "start", "end"),
        [
            ("10.0.0.0/24", "10.0.0.0", "10.0.0.10"),  # network address
            ("10.0.0.0/24", "10.0.0.200", "10.0.0.255"),  # broadcast
            ("10.0.0.0/24", "10.0.0.200", "10.0.1.5"),
            ("2001:db8::/64", "2001:db8::", "2001:db8::9"),  # IPv6 network address
        ],
    )
    def test_out_of_bounds(self, cidr: str, start: str, end: str) -> None:
        with pytest.raises(DomainError) as exc:
            defaults(cidr, None, [{"start": start, "end": end}])
        err = expect(exc, 400, "OutOfBoundsAllocationPool")
        assert f"spans beyond the subnet cidr {cidr}" in err.message

    def test_ipv6_last_address_is_usable(self) -> None:
        pools = [{"start": "2001:db8::ffff:ffff:ffff:fff0", "end": "2001:db8::ffff:ffff:ffff:ffff"}]
        assert defaults("2001:db8::/64", pools=pools)[1] == [
            "2001:db8::ffff:ffff:ffff:fff0-2001:db8::ffff:ffff:ffff:ffff"
        ]

    def test_overlapping(self) -> None:
        pools = [
            {"start": "10.0.0.50", "end": "10.0.0.60"},
            {"start": "10.0.0.10", "end": "10.0.0.20"},
            {"start": "10.0.0.20", "end": "10.0.0.30"},
        ]
        with pytest.raises(DomainError) as exc:
            defaults("10.0.0.0/24", None, pools)
        err = expect(exc, 409, "OverlappingAllocationPools")
        assert err.message == (
            "Found overlapping allocation pools: 10.0.0.10-10.0.0.20 10.0.0.20-10.0.0.30 for subnet 10.0.0.0/24."
        )

    def test_explicit_gateway_inside_a_pool(self) -> None:
        with pytest.raises(DomainError) as exc:
            defaults("10.0.0.0/24", "10.0.0.15", [{"start": "10.0.0.10", "end": "10.0.0.20"}])
        err = expect(exc, 409, "GatewayConflictWithAllocationPools")
        assert err.message == "Gateway ip 10.0.0.15 conflicts with allocation pool 10.0.0.10-10.0.0.20"

    def test_default_gateway_inside_a_pool(self) -> None:
        with pytest.raises(DomainError) as exc:
            defaults("10.0.0.0/24", pools=[{"start": "10.0.0.1", "end": "10.0.0.20"}])
        expect(exc, 409, "GatewayConflictWithAllocationPools")
        assert defaults("10.0.0.0/24", None, [{"start": "10.0.0.1", "end": "10.0.0.20"}]) == (
            None,
            ["10.0.0.1-10.0.0.20"],
        )

    def test_only_for_specific_requests(self) -> None:
        with pytest.raises(DomainError) as exc:
            defaults("10.0.0.0/24", pools=[{"start": "10.0.0.10", "end": "10.0.0.20"}], any_=True)
        assert "allocation_pools allowed only for specific subnet requests." in expect(exc, 400, "BadRequest").message


class TestTinySubnets:
    """No automatic gateway on IPv4 /31-/32 and IPv6 /127-/128, the whole usable range is the pool.

    docs/neutron.md#point-to-point-subnets
    """

    @pytest.mark.parametrize("any_", [True, False])
    def test_slash_31(self, any_: bool) -> None:
        assert defaults("10.0.0.4/31", any_=any_) == (None, ["10.0.0.4-10.0.0.5"])

    @pytest.mark.parametrize("any_", [True, False])
    def test_slash_32(self, any_: bool) -> None:
        assert defaults("10.0.0.7/32", any_=any_) == (None, ["10.0.0.7-10.0.0.7"])

    def test_slash_31_from_a_pool(self) -> None:
        cidr = allocate([IPNetwork("10.0.0.0/24")], [], 31)
        gw, ranges = subnet_defaults(cidr, from_pool_any=True)
        assert (gw, ranges) == (None, [rng("10.0.0.0", "10.0.0.1")])
        fa = FreeAddresses(ranges, [], [], cidr=cidr)
        assert [fa.allocate(), fa.allocate()] == [IPAddress("10.0.0.0"), IPAddress("10.0.0.1")]

    def test_slash_31_accepts_either_address_as_explicit_gateway(self) -> None:
        assert defaults("10.0.0.4/31", "10.0.0.5") == ("10.0.0.5", ["10.0.0.4-10.0.0.4"])
        assert defaults("10.0.0.4/31", "10.0.0.4", any_=True) == ("10.0.0.4", ["10.0.0.5-10.0.0.5"])

    def test_ipv6_127_and_128(self) -> None:
        assert defaults("2001:db8::/127", any_=True) == (None, ["2001:db8::1-2001:db8::1"])
        assert defaults("2001:db8::/128", any_=True) == (None, [])

    def test_slash_30_keeps_neutron_behaviour(self) -> None:
        assert defaults("10.0.0.4/30", any_=True) == ("10.0.0.5", ["10.0.0.6-10.0.0.6"])


# -- rule 45 ----------------------------------------------------------------------------------------


class TestValidateCidr:
    def test_valid(self) -> None:
        assert validate_cidr("10.0.0.0/24", 4, enable_dhcp=True) == IPNetwork("10.0.0.0/24")
        assert validate_cidr("2001:db8::/64", 6, enable_dhcp=True) == IPNetwork("2001:db8::/64")

    def test_host_bits_dropped(self) -> None:
        assert validate_cidr("10.0.0.9/24", 4, enable_dhcp=True) == IPNetwork("10.0.0.0/24")

    @pytest.mark.parametrize(
        ("cidr", "version", "dhcp", "message"),
        [
            ("10.0.0.0/24", 6, True, "does not match the ip_version"),
            ("2001:db8::/64", 4, False, "does not match the ip_version"),
            ("0.0.0.0/0", 4, False, "0 is not allowed as CIDR prefix length"),
            ("::/0", 6, False, "0 is not allowed as CIDR prefix length"),
            ("::/64", 6, False, "'::'"),
            ("10.0.0.0/31", 4, True, "incompatible with DHCP"),
            ("10.0.0.0/32", 4, True, "incompatible with DHCP"),
            ("2001:db8::/127", 6, True, "incompatible with DHCP"),
            ("224.0.0.0/24", 4, True, "Multicast"),
            ("ff00::/64", 6, True, "Multicast"),
            ("127.0.0.0/8", 4, True, "Loopback"),
            ("0.0.0.0/8", 4, True, "0.0.0.0"),
            ("10.0.0.0", 4, True, "not a valid IP subnet"),
            ("banana/8", 4, True, "not a valid IP subnet"),
        ],
    )
    def test_refused(self, cidr: str, version: int, dhcp: bool, message: str) -> None:
        with pytest.raises(DomainError) as exc:
            validate_cidr(cidr, version, enable_dhcp=dhcp)
        err = expect(exc, 400, "InvalidInput")
        assert message in err.message
        assert err.field == "cidr"

    @pytest.mark.parametrize("cidr", ["10.0.0.0/31", "10.0.0.0/32", "224.0.0.0/24", "127.0.0.0/8", "0.0.0.0/8"])
    def test_allowed_without_dhcp(self, cidr: str) -> None:
        assert validate_cidr(cidr, 4, enable_dhcp=False) == IPNetwork(cidr)


# -- FreeAddresses ----------------------------------------------------------------------------------


def slash29() -> FreeAddresses:
    cidr = IPNetwork("10.0.0.0/29")
    gw, ranges = subnet_defaults(cidr)
    assert gw is not None
    return FreeAddresses(ranges, [], [gw], cidr=cidr)


class TestFreeAddresses:
    def test_lowest_first_then_exhaustion(self) -> None:
        fa = slash29()
        assert fa.free_count() == 5
        assert [str(fa.allocate()) for _ in range(5)] == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        assert fa.free_count() == 0
        with pytest.raises(DomainError) as exc:
            fa.allocate()
        err = expect(exc, 409, "IpAddressGenerationFailure")
        assert err.message == "No more IP addresses available on subnet 10.0.0.0/29."

    def test_initial_used_addresses_are_skipped(self) -> None:
        cidr = IPNetwork("10.0.0.0/29")
        fa = FreeAddresses([rng("10.0.0.2", "10.0.0.6")], [IPAddress("10.0.0.2"), IPAddress("10.0.0.4")], [], cidr=cidr)
        assert fa.free_count() == 3
        assert [str(fa.allocate()) for _ in range(3)] == ["10.0.0.3", "10.0.0.5", "10.0.0.6"]

    def test_gateway_is_reserved(self) -> None:
        fa = slash29()
        with pytest.raises(DomainError) as exc:
            fa.allocate_specific(IPAddress("10.0.0.1"))
        assert "gateway" in expect(exc, 409, "IpAddressAlreadyAllocated").message

    def test_specific_then_taken(self) -> None:
        fa = slash29()
        assert fa.allocate_specific("10.0.0.4") == IPAddress("10.0.0.4")
        assert fa.free_count() == 4
        with pytest.raises(DomainError) as exc:
            fa.allocate_specific("10.0.0.4")
        assert expect(exc, 409, "IpAddressAlreadyAllocated").message == (
            "IP address 10.0.0.4 already allocated in subnet 10.0.0.0/29."
        )
        assert [str(fa.allocate()) for _ in range(4)] == ["10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"]

    @pytest.mark.parametrize("ip", ["10.0.0.0", "10.0.0.7", "10.0.0.8", "192.168.0.1", "2001:db8::1"])
    def test_invalid_for_subnet(self, ip: str) -> None:
        with pytest.raises(DomainError) as exc:
            slash29().allocate_specific(ip)
        expect(exc, 400, "InvalidIpForSubnet")

    def test_not_an_address(self) -> None:
        with pytest.raises(DomainError) as exc:
            slash29().allocate_specific("10.0.0.x")
        assert exc.value.code == 400

    def test_outside_the_pools_but_inside_the_subnet(self) -> None:
        cidr = IPNetwork("10.0.0.0/29")
        fa = FreeAddresses([rng("10.0.0.2", "10.0.0.3")], [], [IPAddress("10.0.0.1")], cidr=cidr)
        assert fa.allocate_specific("10.0.0.6") == IPAddress("10.0.0.6")
        assert fa.free_count() == 2
        fa.release("10.0.0.6")
        assert fa.free_count() == 2  # not a pool address: never handed out by allocate()
        assert [str(fa.allocate()) for _ in range(2)] == ["10.0.0.2", "10.0.0.3"]
        with pytest.raises(DomainError):
            fa.allocate()

    def test_release_makes_the_address_lowest_again(self) -> None:
        fa = slash29()
        got = [fa.allocate() for _ in range(5)]
        fa.release(got[2])
        fa.release(got[0])
        assert fa.free_count() == 2
        assert [fa.allocate(), fa.allocate()] == [got[0], got[2]]

    def test_gateway_held_by_a_port_stays_reserved_after_release(self) -> None:
        # Data from before the reservation (docs/neutron.md#the-gateway-address-is-reserved): a port holds
        # the gateway; freeing it must not pool it.
        cidr = IPNetwork("10.0.0.0/29")
        gw = IPAddress("10.0.0.3")
        fa = FreeAddresses([rng("10.0.0.1", "10.0.0.6")], [gw], [gw], cidr=cidr)
        assert fa.free_count() == 5
        fa.release(gw)
        assert fa.free_count() == 5
        assert "10.0.0.3" not in [str(fa.allocate()) for _ in range(5)]

    def test_release_of_unallocated_address(self) -> None:
        fa = slash29()
        with pytest.raises(ValueError, match="not allocated"):
            fa.release("10.0.0.3")
        with pytest.raises(ValueError):
            fa.release("10.0.0.1")  # the reserved gateway was never allocated

    def test_ipv6_slash_64_is_never_enumerated(self) -> None:
        cidr = IPNetwork("2001:db8:a583::/64")
        gw, ranges = subnet_defaults(cidr, from_pool_any=True)
        assert gw is not None
        fa = FreeAddresses(ranges, [IPAddress("2001:db8:a583::5")], [gw], cidr=cidr)
        assert fa.free_count() == (1 << 64) - 3
        assert fa.allocate() == IPAddress("2001:db8:a583::2")
        assert fa.allocate_specific("2001:db8:a583::ffff:ffff:ffff:ffff") == IPAddress(
            "2001:db8:a583::ffff:ffff:ffff:ffff"
        )
        assert fa.free_count() == (1 << 64) - 5
        assert [str(fa.allocate()) for _ in range(3)] == ["2001:db8:a583::3", "2001:db8:a583::4", "2001:db8:a583::6"]


# -- FreeAddresses against a plain-set oracle -------------------------------------------------------

SUBNET = IPNetwork("10.0.0.0/27")


@dataclass(frozen=True)
class Take:
    pass


@dataclass(frozen=True)
class TakeIp:
    offset: int


@dataclass(frozen=True)
class Give:
    index: int


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(0, 8)), max_size=3),
    st.sets(st.integers(0, 31), max_size=8),
    st.sets(st.integers(1, 30), max_size=2),
    st.lists(st.one_of(st.just(Take()), st.integers(0, 31).map(TakeIp), st.integers(0, 100).map(Give)), max_size=60),
)
def test_free_addresses_against_oracle(
    pool_spans: list[tuple[int, int]], used0: set[int], reserved0: set[int], ops: list[object]
) -> None:
    base = SUBNET.first
    ranges = [IPRange(IPAddress(base + s, 4), IPAddress(base + min(s + n, 30), 4)) for s, n in pool_spans]
    in_pools = {a - base for r in ranges for a in range(r.first, r.last + 1)}
    fa = FreeAddresses(
        ranges, [IPAddress(base + u, 4) for u in used0], [IPAddress(base + r, 4) for r in reserved0], cidr=SUBNET
    )
    used = set(used0)
    for op in ops:
        free = in_pools - used - reserved0
        assert fa.free_count() == len(free)
        if isinstance(op, Take):
            if not free:
                with pytest.raises(DomainError) as exc:
                    fa.allocate()
                expect(exc, 409, "IpAddressGenerationFailure")
                continue
            got = int(fa.allocate()) - base
            assert got == min(free)
            used.add(got)
        elif isinstance(op, TakeIp):
            if op.offset in (0, 31):
                code, type_ = 400, "InvalidIpForSubnet"
            elif op.offset in used or op.offset in reserved0:
                code, type_ = 409, "IpAddressAlreadyAllocated"
            else:
                assert int(fa.allocate_specific(IPAddress(base + op.offset, 4))) - base == op.offset
                used.add(op.offset)
                continue
            with pytest.raises(DomainError) as exc:
                fa.allocate_specific(IPAddress(base + op.offset, 4))
            expect(exc, code, type_)
        else:
            assert isinstance(op, Give)
            if not used:
                continue
            victim = sorted(used)[op.index % len(used)]
            fa.release(IPAddress(base + victim, 4))
            used.remove(victim)
    assert fa.free_count() == len(in_pools - used - reserved0)
