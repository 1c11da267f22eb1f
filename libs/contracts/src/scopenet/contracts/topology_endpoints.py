"""Topology's commands, one typed constant each (``scopenet.v1.topology.<resource>.<verb>``).

A resource with Neutron's five verbs is a ``Crud`` (``PORT.create``); any other command is
``<RESOURCE>_<VERB>``. ``ENDPOINTS`` lists them in the order of ``proto/index.json``.
"""

from __future__ import annotations

from typing import Any

from scopenet.contracts import bgp as bgp
from scopenet.contracts import routerspec as rs
from scopenet.contracts import topology as t
from scopenet.contracts.base import ByIdCommand, DeleteCommand, ListCommand
from scopenet.contracts.endpoint import Endpoint, crud

NETWORK = crud(
    "topology",
    "network",
    create=t.NetworkCreate,
    update=t.NetworkUpdate,
    one=t.NetworkReply,
    many=t.NetworkList,
    delete=DeleteCommand,
)
SUBNET = crud(
    "topology",
    "subnet",
    create=t.SubnetCreate,
    update=t.SubnetUpdate,
    one=t.SubnetReply,
    many=t.SubnetList,
    delete=DeleteCommand,
)
PORT = crud(
    "topology", "port", create=t.PortCreate, update=t.PortUpdate, one=t.PortReply, many=t.PortList, delete=DeleteCommand
)
ROUTER = crud(
    "topology",
    "router",
    create=t.RouterCreate,
    update=t.RouterUpdate,
    one=t.RouterReply,
    many=t.RouterList,
    delete=DeleteCommand,
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

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    *NETWORK,
    *SUBNET,
    *PORT,
    *ROUTER,
    ROUTER_ADD_ROUTER_INTERFACE,
    ROUTER_REMOVE_ROUTER_INTERFACE,
    ROUTER_SPEC,
    *FLOATINGIP,
    *RBAC_POLICY,
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
)
