"""Which subnets may share a network (``rules.network_rules.check_new_subnet``).

Pins the invariant the rule keeps, checked against networks built one generated subnet at a time:
within one IP family, the subnets of a network never overlap, and they all come from one subnet
pool or all sit in one address scope (a scoped network takes no subnet without a pool). A refusal
happens exactly when accepting would break that invariant, and names the field to fix: ``cidr`` for
an overlap (400 InvalidInput), ``subnetpool_id`` for the pool/scope affinity (Neutron's
NetworkSubnetPoolAffinityError / NetworkAddressScopeAffinityError). Families never interfere.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPNetwork

from scopenet.contracts.errors import BadRequest, InvalidInput
from scopenet.services.ipam.rules.network_rules import NetSubnet, check_new_subnet

NET = uuid.uuid4()
SCOPE_A, SCOPE_B = uuid.uuid4(), uuid.uuid4()
#: pool -> its address scope (None: no pool / an unscoped pool)
POOLS: dict[uuid.UUID | None, uuid.UUID | None] = {
    None: None,
    uuid.uuid4(): None,
    uuid.uuid4(): None,
    uuid.uuid4(): SCOPE_A,
    uuid.uuid4(): SCOPE_A,
    uuid.uuid4(): SCOPE_B,
}


def subnet(cidr: str, pool: uuid.UUID | None = None) -> NetSubnet:
    return NetSubnet(uuid.uuid4(), IPNetwork(cidr), pool, POOLS[pool])


def v4() -> st.SearchStrategy[str]:
    return st.builds(
        lambda plen, n: str(IPNetwork(f"10.0.0.{n}/{plen}").cidr), st.integers(26, 28), st.integers(0, 255)
    )


def v6() -> st.SearchStrategy[str]:
    return st.builds(
        lambda plen, n: str(IPNetwork(f"2001:db8::{n:x}/{plen}").cidr), st.integers(124, 126), st.integers(0, 63)
    )


CANDIDATES = st.builds(subnet, st.one_of(v4(), v6()), st.sampled_from(list(POOLS)))


def consistent(subnets: Sequence[NetSubnet]) -> bool:
    for version in (4, 6):
        family = [s for s in subnets if s.cidr.version == version]
        for i, a in enumerate(family):
            for b in family[i + 1 :]:
                if a.cidr.first <= b.cidr.last and b.cidr.first <= a.cidr.last:
                    return False
        one_pool = len({s.subnetpool_id for s in family}) <= 1
        one_scope = len({s.address_scope_id for s in family}) <= 1 and None not in {s.address_scope_id for s in family}
        if not (one_pool or one_scope):
            return False
    return True


@settings(max_examples=100)
@given(st.lists(CANDIDATES, max_size=12))
def test_refused_exactly_when_the_network_would_become_inconsistent(candidates: list[NetSubnet]) -> None:
    network: list[NetSubnet] = []
    for new in candidates:
        try:
            check_new_subnet(NET, network, new)
        except BadRequest as exc:
            assert not consistent([*network, new])
            overlap = any(
                s.cidr.version == new.cidr.version and s.cidr.first <= new.cidr.last and new.cidr.first <= s.cidr.last
                for s in network
            )
            assert exc.field == ("cidr" if overlap else "subnetpool_id")
            continue
        network.append(new)
        assert consistent(network)


def test_overlap_names_both_subnets() -> None:
    first = subnet("10.0.0.0/24")
    with pytest.raises(InvalidInput) as exc:
        check_new_subnet(NET, [first], subnet("10.0.0.128/25"))
    assert exc.value.field == "cidr" and str(first.id) in exc.value.message and "10.0.0.0/24" in exc.value.message
    check_new_subnet(NET, [first], subnet("2001:db8::/64", list(POOLS)[3]))  # another family: no conflict


def test_scoped_network_refuses_a_subnet_without_pool_or_from_another_scope() -> None:
    a1, a2, b = list(POOLS)[3], list(POOLS)[4], list(POOLS)[5]
    network = [subnet("10.0.0.0/26", a1)]
    check_new_subnet(NET, network, subnet("10.0.0.64/26", a2))  # another pool of the same scope
    with pytest.raises(BadRequest) as exc:
        check_new_subnet(NET, network, subnet("10.0.0.64/26"))
    assert exc.value.type == "NetworkSubnetPoolAffinityError" and exc.value.field == "subnetpool_id"
    with pytest.raises(BadRequest) as exc:
        check_new_subnet(NET, network, subnet("10.0.0.64/26", b))
    assert exc.value.type == "NetworkAddressScopeAffinityError" and str(SCOPE_A) in exc.value.message


def test_unscoped_network_keeps_to_one_pool() -> None:
    p1, p2 = list(POOLS)[1], list(POOLS)[2]
    check_new_subnet(NET, [subnet("10.0.0.0/26")], subnet("10.0.0.64/26"))  # plain subnets together
    with pytest.raises(BadRequest) as exc:
        check_new_subnet(NET, [subnet("10.0.0.0/26", p1)], subnet("10.0.0.64/26", p2))
    assert exc.value.type == "NetworkSubnetPoolAffinityError" and str(p1) in exc.value.message
    with pytest.raises(BadRequest) as exc:
        check_new_subnet(NET, [subnet("10.0.0.0/26")], subnet("10.0.0.64/26", p1))
    assert "without a subnet pool" in exc.value.message
