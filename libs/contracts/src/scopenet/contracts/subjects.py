"""The index of subjects: every command with its request and reply model, every event.

Services register their endpoints from this table and ``proto/`` is generated from it, so a
subject cannot exist on the wire without a schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel

from scopenet.contracts import bgp as bgp
from scopenet.contracts import ipam as m
from scopenet.contracts import routerspec as rs
from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, DeleteCommand, Deleted, ErrorReply, ListCommand, PagedListCommand
from scopenet.contracts.errors import InvalidInput, NotAuthorized

PREFIX = "scopenet.v1"
EVENTS_STREAM = "SCOPENET_EVENTS"
EVENTS_SUBJECTS = f"{PREFIX}.evt.>"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Endpoint:
    service: str
    resource: str
    verb: str
    request: type[BaseModel]
    reply: type[BaseModel]
    doc: str
    sender: str | None = None
    """For a command each sender sends on a subject of its own: the request field naming the sender
    (an agent's report: ``agent_id``). NATS permissions cannot tie a body to its sender, but they can
    tie a subject to a user: the command is sent on ``<subject>.<that field>`` (``subject_for``),
    each sender may publish only to its own, and the service, serving ``<subject>.*`` (``pattern``),
    refuses a request whose field names someone other than its subject does (``check_sender``)."""

    @property
    def subject(self) -> str:
        """The command's subject (for a per-sender command, the stem of its senders' subjects)."""
        return f"{PREFIX}.{self.service}.{self.resource}.{self.verb}"

    @property
    def pattern(self) -> str:
        """What the serving service subscribes to, and ``proto/index.json`` lists."""
        return f"{self.subject}.*" if self.sender else self.subject

    def sender_subject(self, sender: str) -> str:
        """The subject ``sender`` sends this per-sender command on (its NATS user may publish there)."""
        if self.sender is None:
            raise ValueError(f"{self.subject} is not sent per sender")
        if not _TOKEN.match(sender):
            raise InvalidInput(
                f"{self.sender} {sender!r}: 1 to 64 letters, digits, '-' or '_' (it is a subject token)",
                field=self.sender,
            )
        return f"{self.subject}.{sender}"

    def subject_for(self, request: BaseModel) -> str:
        """The subject ``request`` is sent on: the command's, or its sender's own."""
        return self.sender_subject(str(getattr(request, self.sender))) if self.sender else self.subject

    def check_sender(self, subject: str, request: BaseModel) -> None:
        """NotAuthorized unless ``request``, received on ``subject``, names the sender of that subject."""
        if self.sender is None:
            return
        token = subject.rpartition(".")[2]
        claimed = str(getattr(request, self.sender))
        if claimed != token:
            raise NotAuthorized(
                f"{self.resource}.{self.verb} sent on {subject} ({self.sender} {token!r}) names "
                f"{self.sender} {claimed!r}: a sender may only send as itself, on {self.subject}.<its {self.sender}>",
                field=self.sender,
            )

    @property
    def name(self) -> str:
        """nats.micro endpoint name (alphanumeric, ``-`` and ``_`` only)."""
        return f"{self.resource}-{self.verb}"


@dataclass(frozen=True)
class EventSpec:
    resource: str
    action: str
    model: type[BaseModel]

    @property
    def subject(self) -> str:
        return f"{PREFIX}.evt.{self.resource}.{self.action}"

    @property
    def type(self) -> str:
        return f"scopenet.v1.{self.resource}.{self.action}"


def _crud(
    service: str,
    resource: str,
    *,
    create: type[BaseModel],
    update: type[BaseModel],
    one: type[BaseModel],
    many: type[BaseModel],
    delete: type[BaseModel] = DeleteCommand,
) -> list[Endpoint]:
    return [
        Endpoint(service, resource, "create", create, one, f"create a {resource}"),
        Endpoint(service, resource, "get", ByIdCommand, one, f"show one {resource} the caller may see"),
        Endpoint(service, resource, "list", ListCommand, many, f"every {resource} the caller may see"),
        Endpoint(service, resource, "update", update, one, f"change a {resource}"),
        Endpoint(service, resource, "delete", delete, Deleted, f"delete a {resource}"),
    ]


IPAM_ENDPOINTS: tuple[Endpoint, ...] = (
    *_crud(
        "ipam",
        "address_scope",
        create=m.AddressScopeCreate,
        update=m.AddressScopeUpdate,
        one=m.AddressScopeReply,
        many=m.AddressScopeList,
    ),
    *_crud(
        "ipam",
        "subnetpool",
        create=m.SubnetPoolCreate,
        update=m.SubnetPoolUpdate,
        one=m.SubnetPoolReply,
        many=m.SubnetPoolList,
        delete=m.SubnetPoolDelete,
    ),
    Endpoint(
        "ipam",
        "subnetpool",
        "add_prefixes",
        m.SubnetPoolPrefixes,
        m.PrefixesReply,
        "grow a pool (a pool update with prefixes = old + new)",
    ),
    Endpoint(
        "ipam",
        "subnetpool",
        "remove_prefixes",
        m.SubnetPoolPrefixes,
        m.PrefixesReply,
        "shrink a pool by prefixes no subnet uses",
    ),
    Endpoint("ipam", "subnetpool", "usage", ListCommand, m.PoolUsageList, "allocated vs free addresses per pool"),
    Endpoint(
        "ipam",
        "subnet",
        "allocate",
        m.SubnetAllocate,
        m.SubnetReply,
        "allocate a subnet's prefix from a pool, or register an explicit cidr (idempotent on subnet_id)",
    ),
    Endpoint(
        "ipam",
        "subnet",
        "allocate_many",
        m.SubnetAllocateMany,
        m.SubnetAllocateManyReply,
        "several subnet.allocate requests in one message, one result (subnet or error) each",
    ),
    Endpoint("ipam", "subnet", "get", ByIdCommand, m.SubnetReply, "one subnet allocation"),
    Endpoint(
        "ipam",
        "subnet",
        "list",
        PagedListCommand,
        m.SubnetList,
        "subnet allocations the caller may see (filters id, network_id, subnetpool_id, project_id take lists; "
        "limit/marker pages)",
    ),
    Endpoint("ipam", "subnet", "update", m.SubnetUpdate, m.SubnetReply, "change gateway or allocation pools"),
    Endpoint(
        "ipam",
        "subnet",
        "release",
        DeleteCommand,
        Deleted,
        "return a subnet's prefix to its pool (idempotent; 409 while addresses are allocated)",
    ),
    Endpoint(
        "ipam",
        "ip",
        "allocate",
        m.IpAllocate,
        m.IpAllocationReply,
        "a specific or the next free address for a port (idempotent)",
    ),
    Endpoint(
        "ipam",
        "ip",
        "allocate_many",
        m.IpAllocateMany,
        m.IpAllocateManyReply,
        "several ip.allocate requests in one message, one result (allocation or error) each",
    ),
    Endpoint("ipam", "ip", "release", m.IpRelease, m.IpAllocationList, "release a port's addresses (idempotent)"),
    Endpoint(
        "ipam",
        "ip",
        "list",
        PagedListCommand,
        m.IpAllocationList,
        "addresses allocated, by port(s) or subnet(s) (a filter value may be a list; limit/marker pages)",
    ),
    *_crud("ipam", "rbac_policy", create=m.RbacCreate, update=m.RbacUpdate, one=m.RbacReply, many=m.RbacList),
)

IPAM_EVENTS: tuple[EventSpec, ...] = tuple(
    EventSpec(resource, action, model)
    for resource, model in (
        ("address_scope", m.AddressScopeEvent),
        ("subnetpool", m.SubnetPoolEvent),
        ("subnet", m.SubnetEvent),
        ("ip_allocation", m.IpAllocationEvent),
        ("rbac_policy", m.RbacEvent),
    )
    for action in ("created", "updated", "deleted")
    if not (resource == "ip_allocation" and action == "updated")
)

TOPOLOGY_ENDPOINTS: tuple[Endpoint, ...] = (
    *_crud(
        "topology", "network", create=t.NetworkCreate, update=t.NetworkUpdate, one=t.NetworkReply, many=t.NetworkList
    ),
    *_crud("topology", "subnet", create=t.SubnetCreate, update=t.SubnetUpdate, one=t.SubnetReply, many=t.SubnetList),
    *_crud("topology", "port", create=t.PortCreate, update=t.PortUpdate, one=t.PortReply, many=t.PortList),
    *_crud("topology", "router", create=t.RouterCreate, update=t.RouterUpdate, one=t.RouterReply, many=t.RouterList),
    Endpoint(
        "topology",
        "router",
        "add_router_interface",
        t.RouterInterface,
        t.RouterInterfaceInfo,
        "attach a subnet (a port with the subnet's gateway IP) or an existing port to a router",
    ),
    Endpoint(
        "topology",
        "router",
        "remove_router_interface",
        t.RouterInterface,
        t.RouterInterfaceInfo,
        "detach a subnet or a port from a router",
    ),
    Endpoint("topology", "router", "spec", ByIdCommand, rs.RouterSpec, "the router's current RouterSpec (admin)"),
    *_crud(
        "topology",
        "floatingip",
        create=t.FloatingIpCreate,
        update=t.FloatingIpUpdate,
        one=t.FloatingIpReply,
        many=t.FloatingIpList,
    ),
    *_crud(
        "topology",
        "rbac_policy",
        create=t.NetworkRbacCreate,
        update=t.NetworkRbacUpdate,
        one=t.NetworkRbacReply,
        many=t.NetworkRbacList,
    ),
    Endpoint("topology", "agent", "list", ListCommand, t.AgentList, "L3 agents seen in the heartbeat bucket (admin)"),
    Endpoint(
        "topology",
        "router_status",
        "report",
        rs.RouterStatusReport,
        t.RouterStatusAck,
        "an agent reports the outcome of applying a RouterSpec (ACTIVE, or ERROR with a reason); each agent "
        "sends on its own subject (* = its agent_id) and may report only as itself",
        sender="agent_id",
    ),
    *_crud(
        "topology",
        "bgp_speaker",
        create=bgp.BgpSpeakerCreate,
        update=bgp.BgpSpeakerUpdate,
        one=bgp.BgpSpeakerReply,
        many=bgp.BgpSpeakerList,
    ),
    Endpoint(
        "topology", "bgp_speaker", "add_bgp_peer", bgp.BgpSpeakerPeer, bgp.BgpPeerId, "let a speaker peer (admin)"
    ),
    Endpoint(
        "topology", "bgp_speaker", "remove_bgp_peer", bgp.BgpSpeakerPeer, bgp.BgpPeerId, "drop a speaker's peer (admin)"
    ),
    Endpoint(
        "topology",
        "bgp_speaker",
        "add_gateway_network",
        bgp.BgpSpeakerNetwork,
        bgp.BgpNetworkId,
        "announce what routers with a gateway on this network may announce (admin)",
    ),
    Endpoint(
        "topology",
        "bgp_speaker",
        "remove_gateway_network",
        bgp.BgpSpeakerNetwork,
        bgp.BgpNetworkId,
        "stop announcing for this gateway network (admin)",
    ),
    Endpoint(
        "topology",
        "bgp_speaker",
        "get_advertised_routes",
        ByIdCommand,
        bgp.AdvertisedRoutes,
        "the routes the speaker announces: scoped tenant subnets and floating IP host routes (admin)",
    ),
    Endpoint(
        "topology",
        "bgp_speaker",
        "spec",
        ByIdCommand,
        bgp.BgpSpeakerSpec,
        "the speaker's current BgpSpeakerSpec, peers' MD5 keys included: for the BGP daemon (admin)",
    ),
    *_crud(
        "topology",
        "bgp_peer",
        create=bgp.BgpPeerCreate,
        update=bgp.BgpPeerUpdate,
        one=bgp.BgpPeerReply,
        many=bgp.BgpPeerList,
    ),
)

TOPOLOGY_EVENTS: tuple[EventSpec, ...] = tuple(
    EventSpec(resource, action, model)
    for resource, model in (
        ("network", t.NetworkEvent),
        ("topology_subnet", t.TopologySubnetEvent),
        ("port", t.PortEvent),
        ("router", t.RouterEvent),
        ("floatingip", t.FloatingIpEvent),
        ("network_rbac", t.NetworkRbacEvent),
    )
    for action in ("created", "updated", "deleted")
)

ALL_ENDPOINTS: tuple[Endpoint, ...] = IPAM_ENDPOINTS + TOPOLOGY_ENDPOINTS
ALL_EVENTS: tuple[EventSpec, ...] = IPAM_EVENTS + TOPOLOGY_EVENTS
ERROR_REPLY = ErrorReply


def event(resource: str, action: str) -> EventSpec:
    for spec in ALL_EVENTS:
        if spec.resource == resource and spec.action == action:
            return spec
    raise KeyError(f"no event {resource}.{action}")
