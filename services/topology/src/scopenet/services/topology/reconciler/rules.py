"""The orphan sweep's decisions, pure: what IPAM holds that topology does not (and the reverse),
from one listing of IPAM and one snapshot of topology read after it.

A difference on a live port may be a port update in flight, so it is acted on only when the
previous pass saw it too (``suspects``); an allocation of a port topology does not have at all is
released at once (rows are committed before their IPAM call, so it has no owner).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from scopenet.contracts import ipam as im

Key = tuple[UUID, UUID, str]
"""(port, subnet, address)"""
Suspect = tuple[str, Key]
"""("extra" | "missing" | "subnet", key): a difference seen once"""


@dataclass(frozen=True)
class SubnetCopy:
    """Topology's row of a subnet, as far as the sweep compares it with IPAM's."""

    id: UUID
    network_id: UUID
    state: str
    gateway_ip: str | None
    allocation_pools: list[dict[str, Any]]


@dataclass(frozen=True)
class Snapshot:
    """Topology, in one read."""

    networks: Set[UUID]
    subnets: Mapping[UUID, SubnetCopy]
    ports: Mapping[UUID, str]
    """port → its state"""
    held: Set[Key]
    """Addresses active ports on active subnets hold in IPAM."""


@dataclass
class Sweep:
    release_ports: list[UUID] = field(default_factory=list)
    """Ports topology does not have: everything IPAM holds for them goes."""
    release_addresses: list[Key] = field(default_factory=list)
    """Addresses IPAM holds for a live port that does not have them (seen twice)."""
    restore_addresses: list[Key] = field(default_factory=list)
    """Addresses a live port has that IPAM lost (seen twice)."""
    release_subnets: list[UUID] = field(default_factory=list)
    """Subnet allocations topology does not have, with no address of a known port in them."""
    refresh: list[tuple[SubnetCopy, im.Subnet]] = field(default_factory=list)
    """Active subnets whose copy of IPAM's gateway and pools differs."""
    missing_subnets: list[UUID] = field(default_factory=list)
    """Active subnets IPAM has no allocation for (seen twice: reported, not repaired)."""
    suspects: set[Suspect] = field(default_factory=set)
    """What to confirm on the next pass."""


def differs(mine: SubnetCopy, theirs: im.Subnet) -> bool:
    """Whether topology's copy of the subnet's gateway and allocation pools is stale."""
    pools = [dict(p) for p in mine.allocation_pools]
    return mine.gateway_ip != theirs.gateway_ip or pools != [p.model_dump() for p in theirs.allocation_pools]


def sweep(
    ipam_subnets: Sequence[im.Subnet],
    ipam_ips: Sequence[im.IpAllocation],
    snap: Snapshot,
    suspects: Set[Suspect],
) -> Sweep:
    """What one pass repairs, and what it suspects for the next one."""
    out = Sweep()
    # Only what lives on topology's networks is topology's: other systems may use IPAM directly.
    subnets = [s for s in ipam_subnets if s.network_id in snap.networks]
    ours = {s.id for s in subnets}
    ips = [a for a in ipam_ips if a.subnet_id in ours]
    have = {(a.port_id, a.subnet_id, a.ip_address) for a in ips}
    out.release_ports = sorted({a.port_id for a in ips if a.port_id not in snap.ports})
    for key in sorted(have - snap.held):
        port_id, subnet_id, _ = key
        mine = snap.subnets.get(subnet_id)
        if snap.ports.get(port_id) == "active" and mine is not None and mine.state == "active":
            if ("extra", key) in suspects:
                out.release_addresses.append(key)
            else:
                out.suspects.add(("extra", key))
    for key in sorted(snap.held - have):
        if ("missing", key) in suspects:
            out.restore_addresses.append(key)
        else:
            out.suspects.add(("missing", key))
    busy = {a.subnet_id for a in ips if a.port_id in snap.ports}
    for s in subnets:
        mine = snap.subnets.get(s.id)
        if mine is None:
            if s.id not in busy:
                out.release_subnets.append(s.id)
        elif mine.state == "active" and differs(mine, s):
            out.refresh.append((mine, s))
    for sid, row in snap.subnets.items():
        if row.state == "active" and sid not in ours:
            # Created between IPAM's list and the snapshot, or really lost: the next pass tells.
            lost: Suspect = ("subnet", (sid, sid, ""))
            if lost in suspects:
                out.missing_subnets.append(sid)
            out.suspects.add(lost)
    return out
