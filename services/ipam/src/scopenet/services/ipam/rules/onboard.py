"""Onboarding a network's subnets into a pool (docs/neutron.md#onboarding-subnets): what moves, and the
pool's prefixes after. Pure: the service loads the rows under the pool's and the network's locks.

Neutron's rule is "no onboarded cidr may overlap a subnet the pool already allocated"; the pool's
prefixes then grow by the cidrs. Where Neutron differs from this (and is wrong), docs/neutron.md says:
a subnet already in the pool is left alone (Neutron refuses the repeated call, as if the subnet
overlapped itself), and a subnet of *another* pool is refused rather than silently moved (Neutron
moves it, and its old pool, which still holds the prefix, can hand the same cidr out again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from netaddr import IPNetwork, IPSet

from scopenet.contracts.errors import Conflict
from scopenet.services.ipam.rules.network_rules import NetSubnet
from scopenet.services.ipam.rules.prefixes import merge_prefixes


@dataclass(frozen=True)
class OnboardPlan:
    moving: list[NetSubnet]
    """Subnets that join the pool now (empty: nothing changes)."""
    prefixes: list[IPNetwork]
    """The pool's prefixes afterwards (compacted)."""


def plan_onboard(
    *,
    pool_id: UUID,
    network_id: UUID,
    prefixes: Sequence[IPNetwork],
    allocated: Sequence[IPNetwork],
    subnets: Sequence[NetSubnet],
) -> OnboardPlan:
    """``subnets`` are the network's subnets of the pool's IP version; ``allocated`` the pool's subnets."""
    others = [s for s in subnets if s.subnetpool_id is not None and s.subnetpool_id != pool_id]
    if others:
        s = others[0]
        raise Conflict(
            f"Cannot onboard the subnets of network {network_id} into subnet pool {pool_id}: subnet {s.id} "
            f"({s.cidr}) belongs to subnet pool {s.subnetpool_id}, and the IPv{s.cidr.version} subnets of a "
            "network must all come from the same pool",
            type="NetworkSubnetPoolAffinityError",
            field="network_id",
        )
    moving = [s for s in subnets if s.subnetpool_id is None]
    taken = IPSet(allocated)
    for s in moving:
        if IPSet([s.cidr]) & taken:
            clash = next(a for a in allocated if a.first <= s.cidr.last and s.cidr.first <= a.last)
            raise Conflict(
                f"Onboarding subnet {s.id}: {s.cidr} conflicts with allocated prefix {clash} in subnet pool {pool_id}",
                type="IllegalSubnetPoolUpdate",
                field="network_id",
            )
    if not moving:
        return OnboardPlan([], list(prefixes))
    return OnboardPlan(moving, merge_prefixes(prefixes, [s.cidr for s in moving]))
