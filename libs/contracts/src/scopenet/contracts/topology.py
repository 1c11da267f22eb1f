"""Topology contracts: networks, subnets, ports, routers, floating IPs, network RBAC, L3 agents.

Field names, defaults and meanings are Neutron's (docs/neutron.md); keys Neutron spells with a colon
(``router:external``, ``provider:segmentation_id``) are the same on the wire, with Python names
without it. Network ``ipv4_address_scope``/``ipv6_address_scope`` are derived and read-only
(docs/neutron.md#network-address-scopes). Prefixes and addresses come from IPAM; topology keeps the
Neutron view of them. Port forwardings, a floating IP's sub-resource, have a module of their own
(``portforwarding``).

"Absent" and ``null`` differ where Neutron makes them differ (``gateway_ip``, a router's
``external_gateway_info``, a floating IP's ``port_id``): absent keeps or defaults, ``null`` clears.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints

from scopenet.contracts.base import (
    ByIdCommand,
    Command,
    Contract,
    Description,
    Event,
    Name,
    ProjectId,
    Tags,
)
from scopenet.contracts.ipam import AllocationPool, IpVersion

# ---------------------------------------------------------------- constants

DEVICE_OWNER_ROUTER_INTERFACE = "network:router_interface"
DEVICE_OWNER_ROUTER_GATEWAY = "network:router_gateway"
DEVICE_OWNER_FLOATINGIP = "network:floatingip"
DEVICE_OWNER_DHCP = "network:dhcp"
ROUTER_DEVICE_OWNERS = (DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY)

DEFAULT_MTU = 1450
MAX_MTU = 1450
"""vxlan over a 1500-byte physical network (Neutron's ``global_physnet_mtu`` minus 50)."""

DLQ_STREAM = "SCOPENET_DLQ"
DLQ_SUBJECTS = "scopenet.v1.dlq.>"


def dlq_subject(consumer: str) -> str:
    """Where a consumer puts an event it cannot handle (malformed, unknown), with the reason."""
    return f"scopenet.v1.dlq.{consumer}"


ADVISORIES_STREAM = "SCOPENET_ADVISORIES"
"""The server's max-deliveries advisories about consumers of ``SCOPENET_EVENTS``, kept until topology
has parked each exhausted message on its dead-letter subject (``scopenet.bus.advisories``)."""


Ipv6Mode = Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]
DeviceField = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")]
ServiceType = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
RouterStatus = Literal["ACTIVE", "PENDING", "ERROR", "DOWN"]


class NeutronContract(Contract):
    """A contract with Neutron's colon keys: aliases on the wire, Python names in code."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class HostRoute(Contract):
    destination: str
    nexthop: str


class FixedIp(Contract):
    subnet_id: UUID
    ip_address: str


class FixedIpRequest(Contract):
    """One requested address: a subnet (next free address), an address, or both."""

    subnet_id: UUID | None = None
    ip_address: str | None = None


# ---------------------------------------------------------------- networks


class Network(NeutronContract):
    id: UUID
    name: str
    project_id: str
    tenant_id: str
    admin_state_up: bool
    shared: bool
    """Relative to the caller: an ``access_as_shared`` entry for ``*`` or the caller's project."""
    router_external: bool = Field(alias="router:external")
    mtu: int
    provider_network_type: str = Field(default="vxlan", alias="provider:network_type")
    provider_physical_network: str | None = Field(default=None, alias="provider:physical_network")
    provider_segmentation_id: int = Field(alias="provider:segmentation_id")
    status: str
    subnets: list[UUID]
    ipv4_address_scope: UUID | None
    """Derived: the scope of the network's IPv4 subnets' pool; null without one (docs/neutron.md)."""
    ipv6_address_scope: UUID | None
    port_security_enabled: bool = True
    description: str
    tags: list[str]
    revision_number: int
    created_at: datetime
    updated_at: datetime


class NetworkCreateBody(NeutronContract):
    name: Name = ""
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    admin_state_up: bool = True
    shared: bool = False
    router_external: bool = Field(default=False, alias="router:external")
    mtu: int | None = Field(default=None, ge=0, le=65535)
    """Default 1450; above 1450 → 400."""
    provider_network_type: Literal["vxlan"] | None = Field(default=None, alias="provider:network_type")
    provider_segmentation_id: int | None = Field(default=None, ge=1, le=16_777_215, alias="provider:segmentation_id")
    """Admin only; allocated (unique) when absent."""
    port_security_enabled: bool = True
    description: Description = ""
    tags: Tags = Field(default_factory=list)


class NetworkUpdateBody(NeutronContract):
    name: Name | None = None
    admin_state_up: bool | None = None
    shared: bool | None = None
    router_external: bool | None = Field(default=None, alias="router:external")
    mtu: int | None = Field(default=None, ge=0, le=65535)
    port_security_enabled: bool | None = None
    description: Description | None = None
    tags: Tags | None = None


class NetworkCreate(Command):
    type: Literal["scopenet.topology.v1.network.create"] = "scopenet.topology.v1.network.create"
    network: NetworkCreateBody


class NetworkUpdate(ByIdCommand):
    type: Literal["scopenet.topology.v1.network.update"] = "scopenet.topology.v1.network.update"
    network: NetworkUpdateBody
    if_revision: int | None = Field(default=None, ge=0)


class NetworkReply(Contract):
    network: Network


class NetworkList(Contract):
    networks: list[Network]
    has_more: bool = False
    """A ``QueryCommand`` with a ``limit`` left items out (another page follows)."""


# ---------------------------------------------------------------- subnets


class Subnet(Contract):
    id: UUID
    name: str
    network_id: UUID
    project_id: str
    tenant_id: str
    ip_version: IpVersion
    cidr: str
    subnetpool_id: UUID | None
    gateway_ip: str | None
    allocation_pools: list[AllocationPool]
    enable_dhcp: bool
    ipv6_ra_mode: Ipv6Mode | None
    ipv6_address_mode: Ipv6Mode | None
    dns_nameservers: list[str]
    host_routes: list[HostRoute]
    service_types: list[str]
    segment_id: UUID | None = None
    description: str
    tags: list[str]
    revision_number: int
    created_at: datetime
    updated_at: datetime


class SubnetCreateBody(Contract):
    network_id: UUID
    ip_version: IpVersion
    name: Name = ""
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    cidr: str | None = None
    subnetpool_id: UUID | None = None
    prefixlen: int | None = Field(default=None, ge=0)
    """Input only: the size of an "any" allocation from a pool."""
    use_default_subnetpool: bool = False
    gateway_ip: str | None = None
    """Absent: the default gateway (docs/neutron.md#gateway-and-allocation-pools); explicit null: no gateway."""
    allocation_pools: list[AllocationPool] | None = Field(default=None, max_length=1000)
    enable_dhcp: bool = True
    ipv6_ra_mode: Ipv6Mode | None = None
    ipv6_address_mode: Ipv6Mode | None = None
    dns_nameservers: list[str] = Field(default_factory=list, max_length=64)
    """At most 5 (400 ``DNSNameServersExhausted``)."""
    host_routes: list[HostRoute] = Field(default_factory=list, max_length=256)
    """At most 20 (400 ``HostRoutesExhausted``)."""
    service_types: list[ServiceType] = Field(default_factory=list, max_length=32)
    description: Description = ""
    tags: Tags = Field(default_factory=list)


class SubnetUpdateBody(Contract):
    name: Name | None = None
    description: Description | None = None
    gateway_ip: str | None = None
    """Absent: unchanged; null: no gateway."""
    allocation_pools: list[AllocationPool] | None = Field(default=None, max_length=1000)
    enable_dhcp: bool | None = None
    dns_nameservers: list[str] | None = Field(default=None, max_length=64)
    host_routes: list[HostRoute] | None = Field(default=None, max_length=256)
    service_types: list[ServiceType] | None = Field(default=None, max_length=32)
    tags: Tags | None = None


class SubnetCreate(Command):
    type: Literal["scopenet.topology.v1.subnet.create"] = "scopenet.topology.v1.subnet.create"
    subnet: SubnetCreateBody


class SubnetUpdate(ByIdCommand):
    type: Literal["scopenet.topology.v1.subnet.update"] = "scopenet.topology.v1.subnet.update"
    subnet: SubnetUpdateBody
    if_revision: int | None = Field(default=None, ge=0)


class SubnetReply(Contract):
    subnet: Subnet


class SubnetList(Contract):
    subnets: list[Subnet]
    has_more: bool = False
    """A ``QueryCommand`` with a ``limit`` left items out (another page follows)."""


class OnboardNetworkSubnets(ByIdCommand):
    """``subnetpool.onboard_network_subnets`` (``id`` is the pool): the network's subnets of the pool's
    IP version join the pool and its address scope; the network's scope, its routers' RouterSpecs and
    BGP follow (docs/neutron.md#onboarding-subnets)."""

    type: Literal["scopenet.topology.v1.subnetpool.onboard_network_subnets"] = (
        "scopenet.topology.v1.subnetpool.onboard_network_subnets"
    )
    network_id: UUID


class OnboardedSubnet(Contract):
    id: UUID
    cidr: str


class OnboardedSubnets(Contract):
    """Neutron's answer: each onboarded subnet's id and cidr."""

    subnets: list[OnboardedSubnet]


# ---------------------------------------------------------------- ports


class Port(Contract):
    id: UUID
    name: str
    network_id: UUID
    project_id: str
    tenant_id: str
    mac_address: str
    admin_state_up: bool
    status: str
    device_owner: str
    device_id: str
    fixed_ips: list[FixedIp]
    description: str
    tags: list[str]
    revision_number: int
    created_at: datetime
    updated_at: datetime


class PortCreateBody(Contract):
    network_id: UUID
    name: Name = ""
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    mac_address: str | None = None
    """Admin or network owner; a random ``fa:16:3e:..`` address when absent."""
    admin_state_up: bool = True
    device_owner: DeviceField = ""
    device_id: DeviceField = ""
    fixed_ips: list[FixedIpRequest] | None = Field(default=None, max_length=64)
    """Absent: one IPv4 and one IPv6 address from the network's subnets (docs/neutron.md); [] : none."""
    description: Description = ""
    tags: Tags = Field(default_factory=list)


class PortUpdateBody(Contract):
    name: Name | None = None
    admin_state_up: bool | None = None
    device_owner: DeviceField | None = None
    device_id: DeviceField | None = None
    fixed_ips: list[FixedIpRequest] | None = Field(default=None, max_length=64)
    description: Description | None = None
    tags: Tags | None = None


class PortCreate(Command):
    type: Literal["scopenet.topology.v1.port.create"] = "scopenet.topology.v1.port.create"
    port: PortCreateBody


class PortUpdate(ByIdCommand):
    type: Literal["scopenet.topology.v1.port.update"] = "scopenet.topology.v1.port.update"
    port: PortUpdateBody
    if_revision: int | None = Field(default=None, ge=0)


class PortReply(Contract):
    port: Port


class PortList(Contract):
    ports: list[Port]
    has_more: bool = False
    """A ``QueryCommand`` with a ``limit`` left items out (another page follows)."""


# ---------------------------------------------------------------- routers


class ExternalGatewayInfo(Contract):
    network_id: UUID
    enable_snat: bool
    external_fixed_ips: list[FixedIp]


class ExternalGatewayInfoRequest(Contract):
    network_id: UUID
    enable_snat: bool | None = None
    """Admin only (403 even when equal to the default, true)."""
    external_fixed_ips: list[FixedIpRequest] | None = Field(default=None, max_length=16)
    """Admin only."""


class Router(Contract):
    id: UUID
    name: str
    project_id: str
    tenant_id: str
    admin_state_up: bool
    status: RouterStatus
    """PENDING until an agent reports; ACTIVE or ERROR (with ``status_reason``) afterwards."""
    status_reason: str | None = None
    external_gateway_info: ExternalGatewayInfo | None
    routes: list[HostRoute]
    description: str
    tags: list[str]
    revision_number: int
    created_at: datetime
    updated_at: datetime


class RouterCreateBody(Contract):
    name: Name = ""
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    admin_state_up: bool = True
    external_gateway_info: ExternalGatewayInfoRequest | None = None
    description: Description = ""
    tags: Tags = Field(default_factory=list)


class RouterUpdateBody(Contract):
    name: Name | None = None
    admin_state_up: bool | None = None
    external_gateway_info: ExternalGatewayInfoRequest | None = None
    """Absent: unchanged; null (or ``{}`` mapped to null by the API): remove the gateway."""
    routes: list[HostRoute] | None = Field(default=None, max_length=256)
    """Replaces the router's extra routes: at most ``max_routes`` (400 ``RoutesExhausted``), every
    nexthop on a subnet where the router has an address and not one of its own addresses."""
    description: Description | None = None
    tags: Tags | None = None


class RouterCreate(Command):
    type: Literal["scopenet.topology.v1.router.create"] = "scopenet.topology.v1.router.create"
    router: RouterCreateBody


class RouterUpdate(ByIdCommand):
    type: Literal["scopenet.topology.v1.router.update"] = "scopenet.topology.v1.router.update"
    router: RouterUpdateBody
    if_revision: int | None = Field(default=None, ge=0)


class RouterReply(Contract):
    router: Router


class RouterList(Contract):
    routers: list[Router]
    has_more: bool = False
    """A ``QueryCommand`` with a ``limit`` left items out (another page follows)."""


class RouterInterface(ByIdCommand):
    """``add_router_interface`` / ``remove_router_interface``: exactly one of the two (400 otherwise)."""

    type: Literal["scopenet.topology.v1.router.interface"] = "scopenet.topology.v1.router.interface"
    subnet_id: UUID | None = None
    port_id: UUID | None = None


class RouterExtraRoutes(ByIdCommand):
    """``add_extraroutes`` / ``remove_extraroutes`` (Neutron's ``extraroute-atomic``): merge these
    routes into the router's, or take them out, in one step under the router's lock — two clients
    adding routes at once both keep theirs. Adding one already there, or removing one that is not,
    is no error; the resulting set is checked as a ``routes`` update would be."""

    type: Literal["scopenet.topology.v1.router.extraroutes"] = "scopenet.topology.v1.router.extraroutes"
    routes: list[HostRoute] = Field(max_length=256)


class RouterInterfaceInfo(Contract):
    id: UUID
    """The router's id."""
    project_id: str
    tenant_id: str
    port_id: UUID
    network_id: UUID
    subnet_id: UUID
    subnet_ids: list[UUID]


# ---------------------------------------------------------------- floating IPs


class FloatingIp(Contract):
    id: UUID
    project_id: str
    tenant_id: str
    floating_network_id: UUID
    floating_ip_address: str
    router_id: UUID | None
    port_id: UUID | None
    fixed_ip_address: str | None
    status: Literal["ACTIVE", "DOWN", "ERROR"]
    description: str
    tags: list[str]
    revision_number: int
    created_at: datetime
    updated_at: datetime


class FloatingIpCreateBody(Contract):
    floating_network_id: UUID
    floating_ip_address: str | None = None
    """Admin only."""
    subnet_id: UUID | None = None
    """Input only: which external subnet to take the address from."""
    port_id: UUID | None = None
    fixed_ip_address: str | None = None
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    description: Description = ""
    tags: Tags = Field(default_factory=list)


class FloatingIpUpdateBody(Contract):
    port_id: UUID | None = None
    """Absent: unchanged; null: disassociate; an id: associate (or move)."""
    fixed_ip_address: str | None = None
    description: Description | None = None
    tags: Tags | None = None


class FloatingIpCreate(Command):
    type: Literal["scopenet.topology.v1.floatingip.create"] = "scopenet.topology.v1.floatingip.create"
    floatingip: FloatingIpCreateBody


class FloatingIpUpdate(ByIdCommand):
    type: Literal["scopenet.topology.v1.floatingip.update"] = "scopenet.topology.v1.floatingip.update"
    floatingip: FloatingIpUpdateBody
    if_revision: int | None = Field(default=None, ge=0)


class FloatingIpReply(Contract):
    floatingip: FloatingIp


class FloatingIpList(Contract):
    floatingips: list[FloatingIp]
    has_more: bool = False
    """A ``QueryCommand`` with a ``limit`` left items out (another page follows)."""


# ---------------------------------------------------------------- network RBAC

NetworkRbacAction = Literal["access_as_shared", "access_as_external"]


class NetworkRbacPolicy(Contract):
    id: UUID
    object_type: Literal["network"]
    object_id: UUID
    project_id: str
    tenant_id: str
    target_tenant: str
    target_project: str
    action: NetworkRbacAction


class NetworkRbacCreateBody(Contract):
    object_type: Literal["network"]
    object_id: UUID
    action: NetworkRbacAction
    target_tenant: str | None = Field(default=None, max_length=255)
    target_project: str | None = Field(default=None, max_length=255)
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class NetworkRbacCreate(Command):
    type: Literal["scopenet.topology.v1.rbac_policy.create"] = "scopenet.topology.v1.rbac_policy.create"
    rbac_policy: NetworkRbacCreateBody


class NetworkRbacUpdate(ByIdCommand):
    type: Literal["scopenet.topology.v1.rbac_policy.update"] = "scopenet.topology.v1.rbac_policy.update"
    target_tenant: str = Field(max_length=255)


class NetworkRbacReply(Contract):
    rbac_policy: NetworkRbacPolicy


class NetworkRbacList(Contract):
    rbac_policies: list[NetworkRbacPolicy]


# ---------------------------------------------------------------- agents and router status


class Agent(Contract):
    """An L3 agent as topology sees it (from the ``scopenet_agents`` KV bucket)."""

    agent_id: str
    host: str
    alive: bool
    routers: int
    """Routers scheduled to it."""
    started_at: str
    last_seen: datetime | None


class AgentList(Contract):
    agents: list[Agent]


class RouterStatusAck(Contract):
    router_id: UUID
    accepted: bool
    """False when the reporting agent does not host the router (any more) or the report is stale."""


# ---------------------------------------------------------------- network IP availability


class IpAvailabilityDetails(Contract):
    """Neutron's ``network-ip-availability-details``: the counts with and without the allocation pools."""

    total_ips_in_subnet: int
    """The cidr's size, less network and broadcast for IPv4 (as Neutron counts, whatever the length)."""
    total_ips_in_allocation_pool: int
    used_ips_in_subnet: int
    used_ips_in_allocation_pool: int


class SubnetIpAvailability(Contract):
    subnet_id: UUID
    subnet_name: str
    cidr: str
    ip_version: IpVersion
    total_ips: int
    """Addresses in the subnet's allocation pools (the whole cidr when it has none), as Neutron counts."""
    used_ips: int
    """Fixed IPs allocated on the subnet, gateway interfaces included."""
    ip_availability_details: IpAvailabilityDetails


class NetworkIpAvailability(Contract):
    """Neutron's ``network-ip-availability`` resource (admin only)."""

    network_id: UUID
    network_name: str
    project_id: str
    tenant_id: str
    total_ips: int
    used_ips: int
    subnet_ip_availability: list[SubnetIpAvailability]
    ip_availability_details: IpAvailabilityDetails


class NetworkIpAvailabilityList(Contract):
    network_ip_availabilities: list[NetworkIpAvailability]


# ---------------------------------------------------------------- dead letters


class DeadLetter(Contract):
    """What a consumer could not handle, on ``scopenet.v1.dlq.<consumer>`` (stream ``SCOPENET_DLQ``)."""

    type: Literal["scopenet.v1.dead_letter"] = "scopenet.v1.dead_letter"
    consumer: str
    subject: str
    stream_sequence: int | None
    reason: str
    payload: str
    """The original message body (UTF-8, undecodable bytes replaced)."""
    headers: dict[str, str]
    stream: str | None = None
    """The stream the message was read from (``stream_sequence`` is its sequence there)."""
    deliveries: int | None = None
    """How many times it was delivered before it was given up."""


# ---------------------------------------------------------------- events


class NetworkEvent(Event):
    resource: Network
    previous: Network | None = None


class TopologySubnetEvent(Event):
    """Topology's (Neutron's) view of a subnet; IPAM's ``subnet`` events describe the allocation."""

    resource: Subnet
    previous: Subnet | None = None


class PortEvent(Event):
    resource: Port
    previous: Port | None = None


class RouterEvent(Event):
    resource: Router
    previous: Router | None = None


class FloatingIpEvent(Event):
    resource: FloatingIp
    previous: FloatingIp | None = None


class NetworkRbacEvent(Event):
    resource: NetworkRbacPolicy
    previous: NetworkRbacPolicy | None = None
