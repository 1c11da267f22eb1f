"""IPAM's commands, one typed constant each (``scopenet.v1.ipam.<resource>.<verb>``).

A resource with Neutron's five verbs is a ``Crud`` (``SUBNETPOOL.create``); any other command is
``<RESOURCE>_<VERB>``. ``ENDPOINTS`` lists them in the order of ``proto/index.json``.
"""

from __future__ import annotations

from typing import Any

from scopenet.contracts import ipam as m
from scopenet.contracts.base import ByIdCommand, DeleteCommand, Deleted, ListCommand, PagedListCommand
from scopenet.contracts.endpoint import Endpoint, crud
from scopenet.contracts.quotas import quota_commands

ADDRESS_SCOPE = crud(
    "ipam",
    "address_scope",
    create=m.AddressScopeCreate,
    update=m.AddressScopeUpdate,
    one=m.AddressScopeReply,
    many=m.AddressScopeList,
    delete=DeleteCommand,
)
SUBNETPOOL = crud(
    "ipam",
    "subnetpool",
    create=m.SubnetPoolCreate,
    update=m.SubnetPoolUpdate,
    one=m.SubnetPoolReply,
    many=m.SubnetPoolList,
    delete=m.SubnetPoolDelete,
)
SUBNETPOOL_ADD_PREFIXES = Endpoint(
    "ipam",
    "subnetpool",
    "add_prefixes",
    m.SubnetPoolPrefixes,
    m.PrefixesReply,
    "grow a pool (a pool update with prefixes = old + new)",
)
SUBNETPOOL_REMOVE_PREFIXES = Endpoint(
    "ipam",
    "subnetpool",
    "remove_prefixes",
    m.SubnetPoolPrefixes,
    m.PrefixesReply,
    "shrink a pool by prefixes no subnet uses",
)
SUBNETPOOL_ONBOARD_NETWORK_SUBNETS = Endpoint(
    "ipam",
    "subnetpool",
    "onboard_network_subnets",
    m.SubnetPoolOnboard,
    m.OnboardReply,
    "adopt a network's existing subnets of the pool's IP version into the pool (and its address scope): "
    "the pool's prefixes grow by their cidrs; 409 on overlap in the scope or subnets of another pool; "
    "idempotent",
)
SUBNETPOOL_USAGE = Endpoint(
    "ipam", "subnetpool", "usage", ListCommand, m.PoolUsageList, "allocated vs free addresses per pool"
)
SUBNETPOOL_SPACE = Endpoint(
    "ipam",
    "subnetpool",
    "space",
    ByIdCommand,
    m.PoolSpaceReply,
    "one pool's space: each prefix's allocations and free blocks (aligned CIDRs, address order), totals, and "
    "each project's use against default_quota (anyone who sees the pool; others' subnets anonymous unless "
    "admin or the pool's owner)",
)
SUBNETPOOL_HISTORY = Endpoint(
    "ipam",
    "subnetpool",
    "history",
    m.PoolHistoryQuery,
    m.PoolHistoryPage,
    "a page of the pool's allocation history: every prefix taken or released, with the caller, request, "
    "trace and event ids, written in the allocation's own transaction (complete, in commit order)",
)
SUBNET_ALLOCATE = Endpoint(
    "ipam",
    "subnet",
    "allocate",
    m.SubnetAllocate,
    m.SubnetReply,
    "allocate a subnet's prefix from a pool, or register an explicit cidr (idempotent on subnet_id)",
)
SUBNET_ALLOCATE_MANY = Endpoint(
    "ipam",
    "subnet",
    "allocate_many",
    m.SubnetAllocateMany,
    m.SubnetAllocateManyReply,
    "several subnet.allocate requests in one message, one result (subnet or error) each",
)
SUBNET_GET = Endpoint("ipam", "subnet", "get", ByIdCommand, m.SubnetReply, "one subnet allocation")
SUBNET_LIST = Endpoint(
    "ipam",
    "subnet",
    "list",
    PagedListCommand,
    m.SubnetList,
    "subnet allocations the caller may see (filters id, network_id, subnetpool_id, project_id take lists; "
    "limit/marker pages)",
)
SUBNET_UPDATE = Endpoint(
    "ipam", "subnet", "update", m.SubnetUpdate, m.SubnetReply, "change gateway or allocation pools"
)
SUBNET_RELEASE = Endpoint(
    "ipam",
    "subnet",
    "release",
    DeleteCommand,
    Deleted,
    "return a subnet's prefix to its pool (idempotent; 409 while addresses are allocated)",
)
IP_ALLOCATE = Endpoint(
    "ipam",
    "ip",
    "allocate",
    m.IpAllocate,
    m.IpAllocationReply,
    "a specific or the next free address for a port (idempotent)",
)
IP_ALLOCATE_MANY = Endpoint(
    "ipam",
    "ip",
    "allocate_many",
    m.IpAllocateMany,
    m.IpAllocateManyReply,
    "several ip.allocate requests in one message, one result (allocation or error) each",
)
IP_RELEASE = Endpoint(
    "ipam", "ip", "release", m.IpRelease, m.IpAllocationList, "release a port's addresses (idempotent)"
)
IP_LIST = Endpoint(
    "ipam",
    "ip",
    "list",
    PagedListCommand,
    m.IpAllocationList,
    "addresses allocated, by port(s) or subnet(s) (a filter value may be a list; limit/marker pages)",
)
RBAC_POLICY = crud(
    "ipam",
    "rbac_policy",
    create=m.RbacCreate,
    update=m.RbacUpdate,
    one=m.RbacReply,
    many=m.RbacList,
    delete=DeleteCommand,
)
QUOTA = quota_commands("ipam")

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    *ADDRESS_SCOPE,
    *SUBNETPOOL,
    SUBNETPOOL_ADD_PREFIXES,
    SUBNETPOOL_REMOVE_PREFIXES,
    SUBNETPOOL_ONBOARD_NETWORK_SUBNETS,
    SUBNETPOOL_USAGE,
    SUBNETPOOL_SPACE,
    SUBNETPOOL_HISTORY,
    SUBNET_ALLOCATE,
    SUBNET_ALLOCATE_MANY,
    SUBNET_GET,
    SUBNET_LIST,
    SUBNET_UPDATE,
    SUBNET_RELEASE,
    IP_ALLOCATE,
    IP_ALLOCATE_MANY,
    IP_RELEASE,
    IP_LIST,
    *RBAC_POLICY,
    *QUOTA,
)
