"""Rules that tie a new subnet to the other subnets of its network (rules 48 and 49, docs/neutron.md#network-affinity).

Pure: the caller loads the network's subnets (under the network's lock) and asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from netaddr import IPNetwork

from scopenet.contracts.errors import BadRequest, InvalidInput


@dataclass(frozen=True)
class NetSubnet:
    id: UUID
    cidr: IPNetwork
    subnetpool_id: UUID | None
    address_scope_id: UUID | None


def check_new_subnet(
    network_id: UUID,
    existing: Sequence[NetSubnet],
    new: NetSubnet,
) -> None:
    """Raise if ``new`` may not join the network; ``existing`` are its current subnets."""
    for s in existing:
        if s.cidr.version == new.cidr.version and (
            s.cidr in new.cidr
            or new.cidr in s.cidr
            or (s.cidr.first <= new.cidr.last and new.cidr.first <= s.cidr.last)
        ):
            raise InvalidInput(
                f"Invalid input for operation: Requested subnet with cidr: {new.cidr} for network: {network_id} "
                f"overlaps with another subnet ({s.id}, {s.cidr}).",
                field="cidr",
            )
    same = [s for s in existing if s.cidr.version == new.cidr.version]
    network_scope = next((s.address_scope_id for s in same if s.address_scope_id is not None), None)
    if network_scope is not None:
        if new.subnetpool_id is None:
            raise BadRequest(
                f"Subnets hosted on the same network must be allocated from the same subnet pool: network "
                f"{network_id} is in address scope {network_scope}; a subnet without a pool cannot join it",
                type="NetworkSubnetPoolAffinityError",
                field="subnetpool_id",
            )
        if new.address_scope_id != network_scope:
            raise BadRequest(
                f"Subnets of an IP family on network {network_id} must all be in address scope {network_scope}; "
                f"subnet pool {new.subnetpool_id} is in "
                f"{new.address_scope_id if new.address_scope_id else 'no address scope'}",
                type="NetworkAddressScopeAffinityError",
                field="subnetpool_id",
            )
        return
    others = {s.subnetpool_id for s in same}
    if same and others != {new.subnetpool_id}:
        raise BadRequest(
            "Subnets hosted on the same network must be allocated from the same subnet pool: network "
            f"{network_id} already has IPv{new.cidr.version} subnets "
            f"{'from subnet pool ' + str(next(iter(others))) if None not in others else 'without a subnet pool'}",
            type="NetworkSubnetPoolAffinityError",
            field="subnetpool_id",
        )
