"""Topology's commands, one typed constant each (``scopenet.v1.topology.<resource>.<verb>``).

A resource with Neutron's five verbs is a ``Crud`` (``PORT.create``); any other command is
``<RESOURCE>_<VERB>``. ``ENDPOINTS`` lists them in the order of ``proto/index.json``.
"""

from __future__ import annotations

from typing import Any

from scopenet.contracts import bgp as bgp
from scopenet.contracts import consistency as cons
from scopenet.contracts import portforwarding as pf
from scopenet.contracts import reachability as reach
from scopenet.contracts import routerspec as rs
from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, DeleteCommand, Deleted, ListCommand, QueryCommand
from scopenet.contracts.endpoint import Endpoint, crud
from scopenet.contracts.quotas import quota_commands

NETWORK = crud(
    "topology",
    "network",
    create=t.NetworkCreate,
    update=t.NetworkUpdate,
    one=t.NetworkReply,
    many=t.NetworkList,
    delete=DeleteCommand,
    query=QueryCommand,
)
SUBNET = crud(
    "topology",
    "subnet",
    create=t.SubnetCreate,
    update=t.SubnetUpdate,
    one=t.SubnetReply,
    many=t.SubnetList,
    delete=DeleteCommand,
    query=QueryCommand,
)
PORT = crud(
    "topology",
    "port",
    create=t.PortCreate,
    update=t.PortUpdate,
    one=t.PortReply,
    many=t.PortList,
    delete=DeleteCommand,
    query=QueryCommand,
)
ROUTER = crud(
    "topology",
    "router",
    create=t.RouterCreate,
    update=t.RouterUpdate,
    one=t.RouterReply,
    many=t.RouterList,
    delete=DeleteCommand,
    query=QueryCommand,
)
ROUTER_ADD_ROUTER_INTERFACE = Endpoint(
    "topology",
    "router",
    "add_router_interface",
    t.RouterInterface,
    t.RouterInterfaceInfo,
    "attach a subnet (a port with the subnet's gateway IP) or an existing port to a router",
)
ROUTER_REMOVE_ROUTER_INTERFACE = Endpoint(
    "topology",
    "router",
    "remove_router_interface",
    t.RouterInterface,
    t.RouterInterfaceInfo,
    "detach a subnet or a port from a router",
)
ROUTER_ADD_EXTRAROUTES = Endpoint(
    "topology",
    "router",
    "add_extraroutes",
    t.RouterExtraRoutes,
    t.RouterReply,
    "add extra routes to a router atomically (extraroute-atomic); the reply is the whole router",
)
ROUTER_REMOVE_EXTRAROUTES = Endpoint(
    "topology",
    "router",
    "remove_extraroutes",
    t.RouterExtraRoutes,
    t.RouterReply,
    "remove extra routes from a router atomically (extraroute-atomic); the reply is the whole router",
)
ROUTER_SPEC = Endpoint(
    "topology", "router", "spec", ByIdCommand, rs.RouterSpec, "the router's current RouterSpec (admin)"
)
FLOATINGIP = crud(
    "topology",
    "floatingip",
    create=t.FloatingIpCreate,
    update=t.FloatingIpUpdate,
    one=t.FloatingIpReply,
    many=t.FloatingIpList,
    delete=DeleteCommand,
    query=QueryCommand,
)
# A sub-resource of floating IPs: every command names the floating IP too, so not a ``Crud``.
PORT_FORWARDING_CREATE = Endpoint(
    "topology",
    "port_forwarding",
    "create",
    pf.PortForwardingCreate,
    pf.PortForwardingReply,
    "forward a protocol and external port (or range) of a floating IP to an internal address and port",
)
PORT_FORWARDING_GET = Endpoint(
    "topology",
    "port_forwarding",
    "get",
    pf.PortForwardingGet,
    pf.PortForwardingReply,
    "show one port forwarding of a floating IP the caller may see",
)
PORT_FORWARDING_LIST = Endpoint(
    "topology",
    "port_forwarding",
    "list",
    pf.PortForwardingListCommand,
    pf.PortForwardingList,
    "every port forwarding of a floating IP the caller may see",
)
PORT_FORWARDING_UPDATE = Endpoint(
    "topology", "port_forwarding", "update", pf.PortForwardingUpdate, pf.PortForwardingReply, "change a port forwarding"
)
PORT_FORWARDING_DELETE = Endpoint(
    "topology", "port_forwarding", "delete", pf.PortForwardingDelete, Deleted, "delete a port forwarding"
)
RBAC_POLICY = crud(
    "topology",
    "rbac_policy",
    create=t.NetworkRbacCreate,
    update=t.NetworkRbacUpdate,
    one=t.NetworkRbacReply,
    many=t.NetworkRbacList,
    delete=DeleteCommand,
)
NETWORK_IP_AVAILABILITY_LIST = Endpoint(
    "topology",
    "network_ip_availability",
    "list",
    ListCommand,
    t.NetworkIpAvailabilityList,
    "Neutron's network-ip-availability: per network and subnet, addresses in the allocation pools and fixed "
    "IPs used (admin; filters network_id, network_name, project_id, tenant_id, ip_version take lists)",
)
AGENT_LIST = Endpoint(
    "topology", "agent", "list", ListCommand, t.AgentList, "L3 agents seen in the heartbeat bucket (admin)"
)
ROUTER_STATUS_REPORT = Endpoint(
    "topology",
    "router_status",
    "report",
    rs.RouterStatusReport,
    t.RouterStatusAck,
    "an agent reports the outcome of applying a RouterSpec (ACTIVE, or ERROR with a reason); each agent "
    "sends on its own subject (* = its agent_id) and may report only as itself",
    sender="agent_id",
)
BGP_SPEAKER = crud(
    "topology",
    "bgp_speaker",
    create=bgp.BgpSpeakerCreate,
    update=bgp.BgpSpeakerUpdate,
    one=bgp.BgpSpeakerReply,
    many=bgp.BgpSpeakerList,
    delete=DeleteCommand,
)
BGP_SPEAKER_ADD_BGP_PEER = Endpoint(
    "topology", "bgp_speaker", "add_bgp_peer", bgp.BgpSpeakerPeer, bgp.BgpPeerId, "let a speaker peer (admin)"
)
BGP_SPEAKER_REMOVE_BGP_PEER = Endpoint(
    "topology", "bgp_speaker", "remove_bgp_peer", bgp.BgpSpeakerPeer, bgp.BgpPeerId, "drop a speaker's peer (admin)"
)
BGP_SPEAKER_ADD_GATEWAY_NETWORK = Endpoint(
    "topology",
    "bgp_speaker",
    "add_gateway_network",
    bgp.BgpSpeakerNetwork,
    bgp.BgpNetworkId,
    "announce what routers with a gateway on this network may announce (admin)",
)
BGP_SPEAKER_REMOVE_GATEWAY_NETWORK = Endpoint(
    "topology",
    "bgp_speaker",
    "remove_gateway_network",
    bgp.BgpSpeakerNetwork,
    bgp.BgpNetworkId,
    "stop announcing for this gateway network (admin)",
)
BGP_SPEAKER_GET_ADVERTISED_ROUTES = Endpoint(
    "topology",
    "bgp_speaker",
    "get_advertised_routes",
    ByIdCommand,
    bgp.AdvertisedRoutes,
    "the routes the speaker announces: scoped tenant subnets and floating IP host routes (admin)",
)
BGP_SPEAKER_SPEC = Endpoint(
    "topology",
    "bgp_speaker",
    "spec",
    ByIdCommand,
    bgp.BgpSpeakerSpec,
    "the speaker's current BgpSpeakerSpec, peers' MD5 keys included: for the BGP daemon (admin)",
)
BGP_PEER = crud(
    "topology",
    "bgp_peer",
    create=bgp.BgpPeerCreate,
    update=bgp.BgpPeerUpdate,
    one=bgp.BgpPeerReply,
    many=bgp.BgpPeerList,
    delete=DeleteCommand,
)
SUBNETPOOL_ONBOARD_NETWORK_SUBNETS = Endpoint(
    "topology",
    "subnetpool",
    "onboard_network_subnets",
    t.OnboardNetworkSubnets,
    t.OnboardedSubnets,
    "onboard a network's existing subnets into a subnet pool and its address scope (subnet_onboard); the "
    "network's scope, RouterSpecs and BGP announcements follow",
)
MIRROR_WAIT = Endpoint(
    "topology",
    "mirror",
    "wait",
    cons.MirrorWait,
    cons.MirrorWaitReply,
    "read-your-writes after an IPAM pool write: answer once topology's mirror holds each pool at the revision "
    "IPAM's reply gave, or when the timeout runs out (caught_up=false)",
)
REACHABILITY_EXPLAIN = Endpoint(
    "topology",
    "reachability",
    "explain",
    reach.ReachabilityExplain,
    reach.Reachability,
    "why a packet from one port or address reaches another or not: the verdict, NAT, hops, reasons and fixes, "
    "from the model, with the deciding nftables rule and its counter from the agent hosting the router",
)
QUOTA = quota_commands("topology")

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    *NETWORK,
    *SUBNET,
    *PORT,
    *ROUTER,
    ROUTER_ADD_ROUTER_INTERFACE,
    ROUTER_REMOVE_ROUTER_INTERFACE,
    ROUTER_ADD_EXTRAROUTES,
    ROUTER_REMOVE_EXTRAROUTES,
    ROUTER_SPEC,
    *FLOATINGIP,
    PORT_FORWARDING_CREATE,
    PORT_FORWARDING_GET,
    PORT_FORWARDING_LIST,
    PORT_FORWARDING_UPDATE,
    PORT_FORWARDING_DELETE,
    *RBAC_POLICY,
    NETWORK_IP_AVAILABILITY_LIST,
    AGENT_LIST,
    ROUTER_STATUS_REPORT,
    *BGP_SPEAKER,
    BGP_SPEAKER_ADD_BGP_PEER,
    BGP_SPEAKER_REMOVE_BGP_PEER,
    BGP_SPEAKER_ADD_GATEWAY_NETWORK,
    BGP_SPEAKER_REMOVE_GATEWAY_NETWORK,
    BGP_SPEAKER_GET_ADVERTISED_ROUTES,
    BGP_SPEAKER_SPEC,
    *BGP_PEER,
    SUBNETPOOL_ONBOARD_NETWORK_SUBNETS,
    MIRROR_WAIT,
    REACHABILITY_EXPLAIN,
    *QUOTA,
)
