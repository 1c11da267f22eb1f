"""``/v2.0/bgp-speakers`` and ``/v2.0/bgp-peers``: neutron-dynamic-routing's ``bgp`` extension.

Served by the topology service (``scopenet.v1.topology.bgp_speaker.*`` / ``bgp_peer.*``), admin
only as in neutron-dynamic-routing. The member actions are theirs: ``PUT add_bgp_peer`` /
``remove_bgp_peer`` with ``{"bgp_peer_id": …}``, ``PUT add_gateway_network`` /
``remove_gateway_network`` with ``{"network_id": …}``, and ``GET get_advertised_routes``. A peer's
``password`` is accepted on POST and PUT and never shown.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import CallContext
from scopenet.contracts.endpoint import Endpoint
from scopenet.contracts.errors import BadRequest
from scopenet.services.api.attrs import Attr, as_bool, as_int, as_ip_version, as_string, as_uuid, project_attrs, ro
from scopenet.services.api.gateway import Gateway
from scopenet.services.api.spec import Action, Resource
from scopenet.services.api.topology import TopologyBackend

MAX_AS = 4_294_967_295
Rep = TypeVar("Rep", bound=BaseModel)


def _member(gw: Gateway, endpoint: Endpoint[Any, Rep], key: str) -> Action:
    async def run(ctx: CallContext, id_: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) != {key}:
            raise BadRequest(
                f'Request body contains invalid data: expected {{"{key}": ...}}', type="HTTPBadRequest", field=key
            )
        reply = await gw.call(endpoint, ctx, id=id_, **{key: as_uuid()(key, body[key])})
        return 200, reply.model_dump(mode="json")

    return run


def _routes(gw: Gateway) -> Action:
    async def run(ctx: CallContext, id_: str, _: Any) -> tuple[int, Any]:
        return 200, (await gw.call(ep.BGP_SPEAKER_GET_ADVERTISED_ROUTES, ctx, id=id_)).model_dump(mode="json")

    return run


def resources(gw: Gateway) -> list[Resource]:
    s255, asn = as_string(255), as_int(minimum=1, maximum=MAX_AS)
    speakers = Resource(
        collection="bgp-speakers",
        plural="bgp_speakers",
        singular="bgp_speaker",
        attrs=(
            ro("id"),
            Attr("name", s255, put=True, default=""),
            Attr("local_as", asn, required=True),
            Attr("ip_version", as_ip_version, required=True),
            *project_attrs(),
            ro("peers", filter=False, sort=False),
            ro("networks", filter=False, sort=False),
            Attr("advertise_floating_ip_host_routes", as_bool, put=True),
            Attr("advertise_tenant_networks", as_bool, put=True),
            ro("created_at", sort=False),
            ro("updated_at", sort=False),
            ro("revision_number", as_int(), sort=False),
        ),
        backend=TopologyBackend(gw, ep.BGP_SPEAKER),
        not_found_type="BgpSpeakerNotFound",
        not_found_text="BGP speaker {} could not be found.",
        revisions=False,
        actions={
            "add_bgp_peer": _member(gw, ep.BGP_SPEAKER_ADD_BGP_PEER, "bgp_peer_id"),
            "remove_bgp_peer": _member(gw, ep.BGP_SPEAKER_REMOVE_BGP_PEER, "bgp_peer_id"),
            "add_gateway_network": _member(gw, ep.BGP_SPEAKER_ADD_GATEWAY_NETWORK, "network_id"),
            "remove_gateway_network": _member(gw, ep.BGP_SPEAKER_REMOVE_GATEWAY_NETWORK, "network_id"),
        },
        read_actions={"get_advertised_routes": _routes(gw)},
        doc="BGP speakers (admin): announce the tenant subnets in the gateway network's address scope.",
    )
    peers = Resource(
        collection="bgp-peers",
        plural="bgp_peers",
        singular="bgp_peer",
        attrs=(
            ro("id"),
            Attr("name", s255, put=True, default=""),
            Attr("peer_ip", as_string(64), required=True),
            Attr("remote_as", asn, required=True),
            Attr("auth_type", as_string(16)),
            Attr("password", as_string(80, nullable=True), put=True, filter=False, sort=False),
            *project_attrs(),
            ro("created_at", sort=False),
            ro("updated_at", sort=False),
            ro("revision_number", as_int(), sort=False),
        ),
        backend=TopologyBackend(gw, ep.BGP_PEER),
        not_found_type="BgpPeerNotFound",
        not_found_text="BGP peer {} could not be found.",
        revisions=False,
        hidden=frozenset({"password"}),
        doc="BGP peers (admin): the routers a speaker talks to; the MD5 password is never returned.",
    )
    return [speakers, peers]
