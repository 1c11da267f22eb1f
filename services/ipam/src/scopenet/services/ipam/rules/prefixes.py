"""Subnet-pool prefix lists: parsing, bounds, growth/shrink rules, quota units and overlap reports.

Neutron stores a pool's ``prefixes`` compacted (``cidr_merge``) and sorted, and allows a PUT only to grow
them (docs/neutron.md#subnet-pools). These functions hold those rules so that the pool service, the
``add_prefixes``/``remove_prefixes`` actions and onboarding all give the same answers. Where Neutron
answers 500 on bad input (an invalid CIDR in ``add_prefixes``, ``min_prefixlen=0``) we answer 400 or
simply compute the value, on purpose (docs/neutron.md#where-scopenet-differs).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Literal

from netaddr import AddrFormatError, IPNetwork, IPSet, cidr_merge

from scopenet.contracts.errors import BadRequest, Conflict, InvalidInput

MAX_PREFIXES = 1000
"""Upper bound on prefixes in one request: a 10,000-item body would cost seconds of IPSet work per call."""

DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}
"""Neutron's ``IPv4_MIN_PREFIXLEN`` / ``IPv6_MIN_PREFIXLEN`` pool defaults."""

MAX_PREFIXLEN = {4: 32, 6: 128}

Version = Literal[4, 6]
"""An IP version as netaddr types it."""

QuotaUnits = int | Fraction
"""Quota is counted in IPv4 addresses or IPv6 /64s; an IPv6 prefix longer than /64 is an exact Fraction."""


def parse_cidr(raw: object, *, field: str = "prefixes") -> IPNetwork:
    """Parse one CIDR string the way neutron-lib's ``validate_subnet`` does, normalising host bits.

    The string must contain "/" and, for IPv4, round-trip through netaddr (so "010.0.0.0/8" or
    "10/8" are refused rather than silently reinterpreted). Host bits are allowed and dropped.
    """
    if not isinstance(raw, str) or raw != raw.strip() or "/" not in raw:
        raise BadRequest(f"'{raw}' is not a valid IP subnet", type="InvalidInput", field=field)
    try:
        net = IPNetwork(raw)
    except (AddrFormatError, ValueError, TypeError):
        raise BadRequest(f"'{raw}' is not a valid IP subnet", type="InvalidInput", field=field) from None
    if net.version == 4 and str(net) != raw:
        raise BadRequest(
            f"'{raw}' isn't a recognized IP subnet cidr, '{net.cidr}' is recommended", type="InvalidInput", field=field
        )
    return net.cidr


def _check_same_version(nets: Iterable[IPNetwork], *, field: str) -> int | None:
    versions = {n.version for n in nets}
    if len(versions) > 1:
        raise BadRequest(
            "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.", type="PrefixVersionMismatch", field=field
        )
    return versions.pop() if versions else None


def compact(nets: Iterable[IPNetwork]) -> list[IPNetwork]:
    """Merge adjacent/overlapping blocks and sort by address: the canonical stored form of a prefix list."""
    return sorted(cidr_merge([n.cidr for n in nets]))


def normalize_prefixes(raw: list[str], *, field: str = "prefixes") -> list[IPNetwork]:
    """Validate a request's prefix list and return it compacted and sorted (rule 16).

    Duplicates are judged on the strings as sent, as neutron-lib's list validator does: "10.0.0.0/24"
    and "10.0.0.1/24" are distinct strings that merge into one prefix, and are accepted.
    """
    if not isinstance(raw, list):
        raise BadRequest(f"Invalid data format for {field}: a list of CIDR strings is required", field=field)
    if not raw:
        raise BadRequest("Empty subnet pool prefix list.", type="EmptySubnetPoolPrefixList", field=field)
    if len(raw) > MAX_PREFIXES:
        raise BadRequest(f"Too many prefixes: {len(raw)} given, at most {MAX_PREFIXES} allowed", field=field)
    seen: set[str] = set()
    dups: list[str] = []
    for item in raw:
        if isinstance(item, str):
            if item in seen:
                dups.append(item)
            seen.add(item)
    if dups:
        raise BadRequest(f"Duplicate items in the list: '{', '.join(dups)}'", type="InvalidInput", field=field)
    nets = [parse_cidr(item, field=field) for item in raw]
    _check_same_version(nets, field=field)
    for net in nets:
        if net.prefixlen == 0:
            raise BadRequest(f"Prefix {net} is not allowed: a subnet pool cannot cover the whole /0", field=field)
    return compact(nets)


def _check_len(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"'{value}' is not an integer", field=name)
    if value < 0:
        raise InvalidInput(f"'{value}' should be non-negative", field=name)
    return value


def _bounds_error(prefix_type: str, prefixlen: int, base_type: str, base_len: int) -> BadRequest:
    return BadRequest(
        f"Illegal prefix bounds: {prefix_type}={prefixlen}, {base_type}={base_len}.",
        type="IllegalSubnetPoolPrefixBounds",
        field=prefix_type,
    )


def prefix_bounds(
    ip_version: int, *, min_prefixlen: int | None, max_prefixlen: int | None, default_prefixlen: int | None
) -> tuple[int, int, int]:
    """Fill in and check ``(min, max, default)`` prefix lengths (rule 18, re-run on update per rule 26).

    Missing values default to 8/64, 32/128 and default = min. Unlike Neutron, which tests the given
    values for truthiness, ``None`` alone means "missing": ``min_prefixlen=0`` gives ``default=0``
    instead of a 500 (docs/neutron.md#min_prefixlen-0-works). No check ties the bounds to the pool's
    prefix sizes (rule 19).
    """
    if ip_version not in MAX_PREFIXLEN:
        raise InvalidInput(f"Invalid IP version {ip_version}", field="ip_version")
    mn = _check_len("min_prefixlen", min_prefixlen)
    mx = _check_len("max_prefixlen", max_prefixlen)
    df = _check_len("default_prefixlen", default_prefixlen)
    mn = DEFAULT_MIN_PREFIXLEN[ip_version] if mn is None else mn
    mx = MAX_PREFIXLEN[ip_version] if mx is None else mx
    df = mn if df is None else df
    if mx > MAX_PREFIXLEN[ip_version]:
        raise _bounds_error("max_prefixlen", mx, "ip_version_max", MAX_PREFIXLEN[ip_version])
    if mn > mx:
        raise _bounds_error("min_prefixlen", mn, "max_prefixlen", mx)
    if df < mn:
        raise _bounds_error("default_prefixlen", df, "min_prefixlen", mn)
    if df > mx:
        raise _bounds_error("default_prefixlen", df, "max_prefixlen", mx)
    return mn, mx, df


def check_prefix_update(old: Sequence[IPNetwork], new: Sequence[IPNetwork]) -> None:
    """A PUT may only grow a pool: every old address must still be covered (rule 25)."""
    _check_same_version([*old, *new], field="prefixes")
    if not IPSet(old).issubset(IPSet(new)):
        raise BadRequest(
            "Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes",
            type="IllegalSubnetPoolPrefixUpdate",
            field="prefixes",
        )


def merge_prefixes(old: Sequence[IPNetwork], added: Sequence[IPNetwork]) -> list[IPNetwork]:
    """``add_prefixes`` is a pool update with ``old + added`` (rule 33); overlap with itself just compacts."""
    _check_same_version([*old, *added], field="prefixes")
    return compact([*old, *added])


def remove_prefixes(
    current: Sequence[IPNetwork], removed: Sequence[IPNetwork], allocated: Sequence[IPNetwork]
) -> list[IPNetwork]:
    """Subtract address space from a pool (rule 34); partial blocks are allowed.

    A request that misses the pool entirely is a no-op, one touching any allocated subnet is refused
    as a whole. Like Neutron we let a pool lose every prefix; the service decides whether to allow that.
    """
    _check_same_version([*current, *removed], field="prefixes")
    to_remove = IPSet(removed)
    pool = IPSet(current)
    if to_remove.isdisjoint(pool):
        return compact(current)
    if not to_remove.isdisjoint(IPSet(allocated)):
        raise BadRequest(
            "Illegal update to prefixes: One or more the prefixes to be removed is in use by a subnet.",
            type="IllegalSubnetPoolPrefixUpdate",
            field="prefixes",
        )
    left = pool - to_remove
    left.compact()
    return sorted(left.iter_cidrs())


def quota_units(cidr: IPNetwork) -> QuotaUnits:
    """Size of a prefix in quota units (docs/neutron.md#pool-quota): IPv4 addresses, IPv6 /64s.

    An IPv6 prefix longer than /64 is worth ``Fraction(1, 2**(len-64))`` so that sums stay exact: a
    float would drift, and rounding up to 1 would make a /127 cost as much as a /64.
    """
    plen: int = cidr.prefixlen
    if cidr.version == 4:
        return 1 << (32 - plen)
    if plen <= 64:
        return 1 << (64 - plen)
    return Fraction(1, 1 << (plen - 64))


def used_units(cidrs: Iterable[IPNetwork]) -> QuotaUnits:
    """Sum of ``quota_units``; the caller picks which subnets count (docs/neutron.md#pool-quota)."""
    total: QuotaUnits = 0
    for c in cidrs:
        total += quota_units(c)
    return total


def check_quota(default_quota: int | None, used_units: QuotaUnits, requested_len: int, ip_version: int) -> None:
    """Refuse an allocation that would push usage over ``default_quota`` (rule 42); null and 0 are unlimited."""
    if not default_quota:
        return
    requested = quota_units(IPNetwork(f"{'0.0.0.0' if ip_version == 4 else '::'}/{requested_len}"))
    if used_units + requested > default_quota:
        raise Conflict("Per-project subnet pool prefix quota exceeded.", type="SubnetPoolQuotaExceeded")


def overlaps(a: Sequence[IPNetwork], b: Sequence[IPNetwork]) -> list[tuple[IPNetwork, IPNetwork]]:
    """Every overlapping pair ``(x in a, y in b)``, sorted, so a 409 can name the conflicting prefixes.

    CIDRs either nest or are disjoint, so ``y`` overlaps ``x`` iff ``y`` is a supernet of ``x`` (found by
    at most 129 dict look-ups) or ``y`` starts inside ``x`` (a slice of ``b`` sorted by address). That
    keeps scope-wide checks near-linear instead of ``len(a) * len(b)``.
    """
    by_key: dict[tuple[int, int, int], list[IPNetwork]] = {}
    for y in b:
        y = y.cidr
        by_key.setdefault((y.version, y.first, y.prefixlen), []).append(y)
    ordered = sorted((y.cidr for y in b), key=lambda n: (n.version, n.first, n.prefixlen))
    keys = [(n.version, n.first) for n in ordered]
    found: set[tuple[IPNetwork, IPNetwork]] = set()
    for x in a:
        x = x.cidr
        bits = MAX_PREFIXLEN[x.version]
        for plen in range(x.prefixlen):
            start = x.first >> (bits - plen) << (bits - plen)
            for y in by_key.get((x.version, start, plen), []):
                found.add((x, y))
        lo = bisect_left(keys, (x.version, x.first))
        hi = bisect_right(keys, (x.version, x.last))
        for y in ordered[lo:hi]:
            found.add((x, y))
    return sorted(found, key=lambda p: (p[0].version, p[0].first, p[0].prefixlen, p[1].first, p[1].prefixlen))
