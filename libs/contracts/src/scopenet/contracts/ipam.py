"""IPAM contracts: address scopes, subnet pools, subnet (prefix) and IP allocations, RBAC.

Field names and meanings are Neutron's (docs/neutron.md); ``mark_id`` is scopenet's: the address
scope's datapath mark id, allocated once in the database so every agent agrees.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from scopenet.contracts.base import (
    ByIdCommand,
    Command,
    Contract,
    DeleteCommand,
    Description,
    ErrorBody,
    Event,
    Name,
    ProjectId,
    Tags,
)

IpVersion = Literal[4, 6]
Cidr = str  # validated by the IPAM service's rules (a 400 naming the field), not by the schema
PrefixLen = int


# ---------------------------------------------------------------- address scopes


class AddressScope(Contract):
    id: UUID
    name: str
    project_id: str
    tenant_id: str
    shared: bool
    """Relative to the caller: true when shared with everyone or with the caller's project."""
    ip_version: IpVersion
    mark_id: int
    """Datapath mark id (mark = mark_id << 16); 1024 is "no scope", scopes get 1025 and up."""


class AddressScopeCreateBody(Contract):
    name: Name = ""
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    shared: bool = False
    ip_version: IpVersion


class AddressScopeUpdateBody(Contract):
    name: Name | None = None
    shared: bool | None = None


class AddressScopeCreate(Command):
    type: Literal["scopenet.ipam.v1.address_scope.create"] = "scopenet.ipam.v1.address_scope.create"
    address_scope: AddressScopeCreateBody


class AddressScopeUpdate(ByIdCommand):
    type: Literal["scopenet.ipam.v1.address_scope.update"] = "scopenet.ipam.v1.address_scope.update"
    address_scope: AddressScopeUpdateBody


class AddressScopeReply(Contract):
    address_scope: AddressScope


class AddressScopeList(Contract):
    address_scopes: list[AddressScope]


# ---------------------------------------------------------------- subnet pools


class SubnetPool(Contract):
    id: UUID
    name: str
    project_id: str
    tenant_id: str
    prefixes: list[Cidr]
    """Compacted (adjacent blocks merged) and sorted by address."""
    ip_version: IpVersion
    min_prefixlen: PrefixLen
    max_prefixlen: PrefixLen
    default_prefixlen: PrefixLen
    default_quota: int | None
    address_scope_id: UUID | None
    is_default: bool
    shared: bool
    description: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    revision_number: int


class SubnetPoolCreateBody(Contract):
    name: Name = Field(min_length=1)
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    prefixes: list[Cidr] = Field(max_length=10_000)
    min_prefixlen: PrefixLen | None = Field(default=None, ge=0)
    max_prefixlen: PrefixLen | None = Field(default=None, ge=0)
    default_prefixlen: PrefixLen | None = Field(default=None, ge=0)
    default_quota: int | None = Field(default=None, ge=0, le=2**31 - 1)
    address_scope_id: UUID | None = None
    is_default: bool = False
    shared: bool = False
    description: Description = ""
    tags: Tags = Field(default_factory=list)


class SubnetPoolUpdateBody(Contract):
    name: Name | None = Field(default=None, min_length=1)
    prefixes: list[Cidr] | None = Field(default=None, max_length=10_000)
    min_prefixlen: PrefixLen | None = Field(default=None, ge=0)
    max_prefixlen: PrefixLen | None = Field(default=None, ge=0)
    default_prefixlen: PrefixLen | None = Field(default=None, ge=0)
    default_quota: int | None = Field(default=None, ge=0, le=2**31 - 1)
    address_scope_id: UUID | None = None
    is_default: bool | None = None
    description: Description | None = None
    tags: Tags | None = None


class SubnetPoolCreate(Command):
    type: Literal["scopenet.ipam.v1.subnetpool.create"] = "scopenet.ipam.v1.subnetpool.create"
    subnetpool: SubnetPoolCreateBody


class SubnetPoolUpdate(ByIdCommand):
    type: Literal["scopenet.ipam.v1.subnetpool.update"] = "scopenet.ipam.v1.subnetpool.update"
    subnetpool: SubnetPoolUpdateBody
    if_revision: int | None = Field(default=None, ge=0)


class SubnetPoolPrefixes(ByIdCommand):
    """``add_prefixes`` / ``remove_prefixes``: the reply is the pool's new prefix list."""

    prefixes: list[Cidr] = Field(min_length=1, max_length=10_000)


class PrefixesReply(Contract):
    prefixes: list[Cidr]


class SubnetPoolReply(Contract):
    subnetpool: SubnetPool


class SubnetPoolList(Contract):
    subnetpools: list[SubnetPool]


class SubnetPoolDelete(DeleteCommand):
    pass


class PoolUsage(Contract):
    """Allocated vs free addresses of one pool (the API's availability view)."""

    subnetpool_id: UUID
    ip_version: IpVersion
    total_ips: int
    used_ips: int
    subnet_count: int


class PoolUsageList(Contract):
    usages: list[PoolUsage]


class PoolBlock(Contract):
    """One row of a pool prefix's space, in address order: a subnet's prefix or a free gap (an aligned
    CIDR; a gap that is not one is several rows)."""

    cidr: Cidr
    status: Literal["allocated", "free"]
    size: int
    """Addresses in the block."""
    subnet_id: UUID | None = None
    network_id: UUID | None = None
    project_id: str | None = None
    """The subnet's owner; null for a free block, and for another project's subnet when the caller
    is neither admin nor the pool's owner."""
    suggested: Cidr | None = None
    """Free blocks: the CIDR to offer for a new subnet here (the block if the pool allows its length,
    else the first /default_prefixlen inside it); null when no allowed length fits."""


class PoolPrefixSpace(Contract):
    cidr: Cidr
    total_ips: int
    used_ips: int
    free_ips: int
    used_percent: float
    blocks: list[PoolBlock]


class PoolProjectUse(Contract):
    """One project's allocations from the pool, against the pool's ``default_quota``."""

    project_id: str
    subnet_count: int
    used_ips: int
    quota_used: float
    """In quota units (``quota_unit`` of the pool); IPv6 subnets longer than /64 count fractions."""
    quota_limit: int | None
    quota_percent: float | None


class PoolSpace(Contract):
    """A pool's address space: prefixes with their allocations and free blocks, and each project's use."""

    subnetpool_id: UUID
    name: str
    project_id: str
    ip_version: IpVersion
    address_scope_id: UUID | None
    min_prefixlen: int
    max_prefixlen: int
    default_prefixlen: int
    default_quota: int | None
    quota_unit: Literal["address", "/64"]
    total_ips: int
    used_ips: int
    free_ips: int
    used_percent: float
    subnet_count: int
    prefixes: list[PoolPrefixSpace]
    projects: list[PoolProjectUse]


class PoolSpaceReply(Contract):
    subnetpool_usage: PoolSpace


HistoryAction = Literal["allocated", "released", "onboarded", "prefixes_added", "prefixes_removed"]


class PoolHistoryEntry(Contract):
    """One change to what a pool has handed out, written in the transaction that made it."""

    id: int
    """Increases with commit order on the pool (entries are written under the pool's row lock)."""
    subnetpool_id: UUID
    action: HistoryAction
    cidr: Cidr
    subnet_id: UUID | None
    network_id: UUID | None
    project_id: str | None
    """The subnet's owner (null for the pool's own prefix changes, and when hidden from the caller)."""
    caller_project_id: str | None
    caller_user_id: str | None
    request_id: str | None
    trace_id: str | None
    event_id: UUID | None
    """The event of the same change on ``SCOPENET_EVENTS`` (its CloudEvents ``id``)."""
    at: datetime


class PoolHistoryQuery(ByIdCommand):
    """A page of a pool's history. ``marker`` is the last ``id`` of the previous page."""

    limit: int = Field(default=100, ge=1, le=1000)
    marker: int | None = Field(default=None, ge=0, le=2**63 - 1)
    descending: bool = True
    project_id: ProjectId | None = None
    """Entries about this project's subnets, or made by it."""
    action: HistoryAction | None = None
    since: datetime | None = None
    """Inclusive; a time without a zone is UTC (as is ``until``)."""
    until: datetime | None = None


class PoolHistoryPage(Contract):
    entries: list[PoolHistoryEntry]
    next_marker: int | None


# ---------------------------------------------------------------- subnets (prefix allocations)


class AllocationPool(Contract):
    start: str
    end: str


class Subnet(Contract):
    """IPAM's view of a subnet: its prefix allocation, gateway and allocation pools."""

    id: UUID
    network_id: UUID
    project_id: str
    ip_version: IpVersion
    cidr: Cidr
    subnetpool_id: UUID | None
    address_scope_id: UUID | None
    gateway_ip: str | None
    allocation_pools: list[AllocationPool]


class SubnetAllocate(Command):
    """Allocate (or register) a subnet's prefix. Idempotent on ``subnet_id``: a retry of the
    same request returns the allocation already made, never a second one."""

    type: Literal["scopenet.ipam.v1.subnet.allocate"] = "scopenet.ipam.v1.subnet.allocate"
    subnet_id: UUID
    network_id: UUID
    project_id: ProjectId
    ip_version: IpVersion
    subnetpool_id: UUID | None = None
    use_default_subnetpool: bool = False
    cidr: Cidr | None = None
    prefixlen: PrefixLen | None = None
    gateway_ip: str | None = None
    """Absent: the default gateway (docs/neutron.md#gateway-and-allocation-pools); explicit null: no gateway."""
    allocation_pools: list[AllocationPool] | None = Field(default=None, max_length=1000)
    enable_dhcp: bool = True


class SubnetUpdate(ByIdCommand):
    type: Literal["scopenet.ipam.v1.subnet.update"] = "scopenet.ipam.v1.subnet.update"
    gateway_ip: str | None = None
    allocation_pools: list[AllocationPool] | None = Field(default=None, max_length=1000)


class SubnetReply(Contract):
    subnet: Subnet


class SubnetList(Contract):
    subnets: list[Subnet]
    next_marker: str | None = None
    """Set when the command had a ``limit`` and more subnets may follow (pass it as ``marker``)."""


#: Requests of one ``*.allocate_many`` command (its reply must fit the NATS max payload too).
MAX_BATCH = 500


class SubnetPoolOnboard(ByIdCommand):
    """``onboard_network_subnets`` (``id`` is the pool): adopt every subnet of the network that has the
    pool's IP version into the pool, and through it into the pool's address scope; all or nothing."""

    type: Literal["scopenet.ipam.v1.subnetpool.onboard_network_subnets"] = (
        "scopenet.ipam.v1.subnetpool.onboard_network_subnets"
    )
    network_id: UUID


class OnboardReply(Contract):
    """The pool after onboarding (its prefixes grown by the subnets' cidrs) and the network's subnets of
    the pool's IP version, all in the pool now (a repeated onboard answers the same, changing nothing)."""

    subnetpool: SubnetPool
    subnets: list[Subnet]


class SubnetAllocateMany(Command):
    """Several ``subnet.allocate`` requests in one message: each is decided exactly as if it came
    alone (its own context, its own idempotency on ``subnet_id``), and each gets its own result.
    The envelope's context is the sender's; it grants nothing by itself."""

    type: Literal["scopenet.ipam.v1.subnet.allocate_many"] = "scopenet.ipam.v1.subnet.allocate_many"
    requests: list[SubnetAllocate] = Field(min_length=1, max_length=MAX_BATCH)


class SubnetAllocateResult(Contract):
    """Exactly one of ``subnet`` (allocated) and ``error`` (the reply ``subnet.allocate`` would give)."""

    subnet: Subnet | None = None
    error: ErrorBody | None = None


class SubnetAllocateManyReply(Contract):
    results: list[SubnetAllocateResult]
    """In the order of the requests."""


# ---------------------------------------------------------------- IP allocations


class IpAllocation(Contract):
    subnet_id: UUID
    port_id: UUID
    ip_address: str


class IpAllocate(Command):
    """One address for ``port_id`` on ``subnet_id``: ``ip_address`` or the next free one.
    Idempotent on (port, subnet, address)."""

    type: Literal["scopenet.ipam.v1.ip.allocate"] = "scopenet.ipam.v1.ip.allocate"
    subnet_id: UUID
    port_id: UUID
    ip_address: str | None = None


class IpRelease(Command):
    """Release the port's addresses (all, or only those on ``subnet_id`` / ``ip_address``)."""

    type: Literal["scopenet.ipam.v1.ip.release"] = "scopenet.ipam.v1.ip.release"
    port_id: UUID
    subnet_id: UUID | None = None
    ip_address: str | None = None


class IpAllocateMany(Command):
    """Several ``ip.allocate`` requests in one message, decided in order, each as if it came alone.
    Requests for one port on one subnet keep their relative order (a later "next free" request of
    the port there replays the address an earlier one got, as a repeated ``ip.allocate`` would)."""

    type: Literal["scopenet.ipam.v1.ip.allocate_many"] = "scopenet.ipam.v1.ip.allocate_many"
    requests: list[IpAllocate] = Field(min_length=1, max_length=MAX_BATCH)


class IpAllocateResult(Contract):
    """Exactly one of ``allocation`` and ``error`` (the reply ``ip.allocate`` would give)."""

    allocation: IpAllocation | None = None
    error: ErrorBody | None = None


class IpAllocateManyReply(Contract):
    results: list[IpAllocateResult]
    """In the order of the requests."""


class IpAllocationReply(Contract):
    allocation: IpAllocation


class IpAllocationList(Contract):
    allocations: list[IpAllocation]
    next_marker: str | None = None
    """Set when the command had a ``limit`` and more allocations may follow (pass it as ``marker``)."""


# ---------------------------------------------------------------- RBAC (scopes and pools)

RbacObjectType = Literal["address_scope", "subnetpool"]


class RbacPolicy(Contract):
    id: UUID
    object_type: RbacObjectType
    object_id: UUID
    project_id: str
    tenant_id: str
    target_tenant: str
    target_project: str
    action: Literal["access_as_shared"]


class RbacCreateBody(Contract):
    object_type: RbacObjectType
    object_id: UUID
    action: Literal["access_as_shared"]
    target_tenant: str | None = Field(default=None, max_length=255)
    target_project: str | None = Field(default=None, max_length=255)
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class RbacCreate(Command):
    type: Literal["scopenet.ipam.v1.rbac_policy.create"] = "scopenet.ipam.v1.rbac_policy.create"
    rbac_policy: RbacCreateBody


class RbacUpdate(ByIdCommand):
    type: Literal["scopenet.ipam.v1.rbac_policy.update"] = "scopenet.ipam.v1.rbac_policy.update"
    target_tenant: str = Field(max_length=255)


class RbacReply(Contract):
    rbac_policy: RbacPolicy


class RbacList(Contract):
    rbac_policies: list[RbacPolicy]


# ---------------------------------------------------------------- events


class AddressScopeEvent(Event):
    resource: AddressScope
    previous: AddressScope | None = None


class SubnetPoolEvent(Event):
    resource: SubnetPool
    previous: SubnetPool | None = None


class SubnetEvent(Event):
    resource: Subnet
    previous: Subnet | None = None


class IpAllocationEvent(Event):
    resource: IpAllocation
    previous: None = None


class RbacEvent(Event):
    resource: RbacPolicy
    previous: RbacPolicy | None = None


__all__ = [
    "AddressScopeCreate",
    "ByIdCommand",
    "Command",
    "DeleteCommand",
    "ProjectId",
]
