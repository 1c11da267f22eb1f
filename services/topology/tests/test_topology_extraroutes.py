"""Extra routes without a database: Neutron's syntax, next-hop and count checks, and the atomic
add/remove merges (docs/neutron.md#extra-routes)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts import topology as t
from scopenet.contracts.errors import BadRequest, InvalidInput
from scopenet.services.topology.routers import extraroutes, rules

R1 = uuid.UUID(int=1)


def r(dst: str, hop: str) -> dict[str, str]:
    return {"destination": dst, "nexthop": hop}


def test_nexthop_must_be_on_a_subnet_of_the_router_and_not_its_own_address() -> None:
    cidrs, own = ["10.0.0.0/24", "2001:db8::/64"], ["10.0.0.1", "2001:db8::1"]
    rules.check_nexthops([r("172.16.0.0/12", "10.0.0.9"), r("2001:db8:1::/48", "2001:db8::9")], cidrs, own)
    with pytest.raises(BadRequest) as err:
        rules.check_nexthops([r("172.16.0.0/12", "10.0.0.9"), r("0.0.0.0/0", "10.9.0.9")], cidrs, own)
    assert err.value.type == "InvalidRoutes"
    # Neutron quotes the whole list, then the reason.
    assert str(err.value) == (
        "Invalid format for routes: [{'destination': '172.16.0.0/12', 'nexthop': '10.0.0.9'}, "
        "{'destination': '0.0.0.0/0', 'nexthop': '10.9.0.9'}], the nexthop is not connected with router"
    )
    with pytest.raises(BadRequest) as err:
        rules.check_nexthops([r("172.16.0.0/12", "10.0.0.1")], cidrs, own)
    assert str(err.value).endswith("the nexthop is used by router")


def test_route_count_is_bounded_by_max_routes() -> None:
    rules.check_route_count(R1, [r("10.0.0.0/24", "10.0.0.9")] * 30, 30)
    with pytest.raises(BadRequest) as err:
        rules.check_route_count(R1, [r("10.0.0.0/24", "10.0.0.9")] * 31, 30)
    assert err.value.type == "RoutesExhausted"
    assert str(err.value) == f"Unable to complete operation for {R1}. The number of routes exceeds the maximum 30."


@pytest.mark.parametrize(
    ("dst", "reason"),
    [
        ("10.0.0.1/24", "is not a valid CIDR"),  # host bits
        ("10.0.0.0", "is not a valid CIDR"),  # no prefix length
        ("nope/8", "is not a valid CIDR"),
        ("127.0.0.0/8", "is not a routable CIDR"),
        ("::1/128", "is not a routable CIDR"),
    ],
)
def test_destinations_as_neutron_takes_them(dst: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        extraroutes.normalised([t.HostRoute(destination=dst, nexthop="10.0.0.9")])
    assert reason in str(err.value)


def test_syntax_normalises_and_refuses_duplicates_and_mixed_families() -> None:
    assert extraroutes.normalised([t.HostRoute(destination="2001:DB8::/32", nexthop="2001:db8::0009")]) == [
        r("2001:db8::/32", "2001:db8::9")
    ]
    with pytest.raises(InvalidInput, match="Duplicate"):
        extraroutes.normalised([t.HostRoute(destination="10.1.0.0/16", nexthop="10.0.0.9")] * 2)
    with pytest.raises(InvalidInput, match="mixed IP versions"):
        extraroutes.normalised([t.HostRoute(destination="10.1.0.0/16", nexthop="2001:db8::9")])


def test_add_merges_exact_duplicates_and_keeps_other_nexthops() -> None:
    old = [r("10.1.0.0/16", "10.0.0.9")]
    assert rules.add_routes(old, [r("10.1.0.0/16", "10.0.0.9"), r("10.1.0.0/16", "10.0.0.8")]) == [
        r("10.1.0.0/16", "10.0.0.9"),
        r("10.1.0.0/16", "10.0.0.8"),
    ]


def test_remove_ignores_what_is_not_there() -> None:
    old = [r("10.1.0.0/16", "10.0.0.9"), r("10.2.0.0/16", "10.0.0.9")]
    assert rules.remove_routes(old, [r("10.1.0.0/16", "10.0.0.9"), r("10.3.0.0/16", "10.0.0.9")]) == [
        r("10.2.0.0/16", "10.0.0.9")
    ]
    assert rules.remove_routes(old, [r("10.1.0.0/16", "10.0.0.8")]) == old  # same destination, other hop


ROUTES = st.lists(
    st.builds(
        r, st.sampled_from(["10.1.0.0/16", "10.2.0.0/16", "0.0.0.0/0"]), st.sampled_from(["10.0.0.8", "10.0.0.9"])
    ),
    max_size=6,
)


@given(old=ROUTES, add=ROUTES, remove=ROUTES)
def test_add_then_remove_are_set_operations(
    old: list[dict[str, str]], add: list[dict[str, str]], remove: list[dict[str, str]]
) -> None:
    def key(routes: list[dict[str, str]]) -> set[tuple[str, str]]:
        return {(x["destination"], x["nexthop"]) for x in routes}

    unique_old = rules.add_routes([], old)
    added = rules.add_routes(unique_old, add)
    assert key(added) == key(old) | key(add) and len(added) == len(key(added))
    assert added[: len(unique_old)] == unique_old  # existing routes keep their place
    assert key(rules.remove_routes(added, remove)) == key(added) - key(remove)
