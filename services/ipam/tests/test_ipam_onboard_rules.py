"""What onboarding a network's subnets decides (``rules.onboard.plan_onboard``), without I/O.

Property: for any pool allocations and unpooled network subnets, the plan either refuses (409,
naming a subnet that overlaps an allocation) or moves exactly the unpooled subnets and grows the
pool's prefixes to cover both the old prefixes and every moved cidr. Subnets already in the pool
are left alone (a repeat is a no-op); a subnet of another pool refuses the whole onboard.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPNetwork, IPSet

from scopenet.contracts.errors import Conflict
from scopenet.services.ipam.rules.network_rules import NetSubnet
from scopenet.services.ipam.rules.onboard import plan_onboard

POOL, NET, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def sub(cidr: str, pool: uuid.UUID | None = None) -> NetSubnet:
    return NetSubnet(uuid.uuid4(), IPNetwork(cidr), pool, None)


def plan(prefixes: list[str], allocated: list[str], subnets: list[NetSubnet]) -> object:
    return plan_onboard(
        pool_id=POOL,
        network_id=NET,
        prefixes=[IPNetwork(p) for p in prefixes],
        allocated=[IPNetwork(a) for a in allocated],
        subnets=subnets,
    )


def test_moves_unpooled_subnets_and_grows_the_prefixes() -> None:
    a, b = sub("172.16.0.0/24"), sub("172.16.1.0/24")
    p = plan_onboard(pool_id=POOL, network_id=NET, prefixes=[IPNetwork("10.0.0.0/16")], allocated=[], subnets=[a, b])
    assert p.moving == [a, b]
    assert [str(x) for x in p.prefixes] == ["10.0.0.0/16", "172.16.0.0/23"]  # compacted


def test_a_repeat_changes_nothing() -> None:
    p = plan_onboard(
        pool_id=POOL,
        network_id=NET,
        prefixes=[IPNetwork("10.0.0.0/16"), IPNetwork("172.16.0.0/24")],
        allocated=[IPNetwork("172.16.0.0/24")],
        subnets=[sub("172.16.0.0/24", POOL)],
    )
    assert p.moving == [] and [str(x) for x in p.prefixes] == ["10.0.0.0/16", "172.16.0.0/24"]


def test_a_subnet_of_another_pool_refuses_everything() -> None:
    with pytest.raises(Conflict) as err:
        plan(["10.0.0.0/16"], [], [sub("172.16.0.0/24"), sub("10.9.0.0/24", OTHER)])
    assert err.value.type == "NetworkSubnetPoolAffinityError" and str(OTHER) in err.value.message


def test_overlap_with_an_allocation_is_refused() -> None:
    with pytest.raises(Conflict) as err:
        plan(["10.0.0.0/16"], ["10.0.4.0/22"], [sub("10.0.5.0/24")])
    assert err.value.type == "IllegalSubnetPoolUpdate" and "10.0.4.0/22" in err.value.message


@given(
    allocated=st.lists(st.integers(0, 63), max_size=8, unique=True),
    wanted=st.lists(st.integers(0, 63), min_size=1, max_size=8, unique=True),
)
def test_refused_exactly_on_overlap_else_covers_everything(allocated: list[int], wanted: list[int]) -> None:
    alloc = [IPNetwork(f"10.1.{i}.0/24") for i in allocated]
    subs = [sub(f"10.1.{i}.0/24") for i in wanted]
    prefixes = [IPNetwork("10.1.0.0/18")] if allocated else []
    clash = bool(set(allocated) & set(wanted))
    try:
        p = plan_onboard(pool_id=POOL, network_id=NET, prefixes=prefixes, allocated=alloc, subnets=subs)
    except Conflict:
        assert clash
        return
    assert not clash and p.moving == subs
    assert IPSet(p.prefixes) == IPSet(prefixes) | IPSet(s.cidr for s in subs)
