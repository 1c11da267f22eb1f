"""The topology routes: each endpoint of ``TOPOLOGY_ENDPOINTS`` bound to the method that serves it.

``Route.bind`` is typed: a method that does not take the endpoint's request model or does not return
its reply model is a type error. ``bound_once`` refuses to start if an endpoint is left unbound.
"""

from __future__ import annotations

import asyncpg

from scopenet.bus.client import BusClient
from scopenet.bus.micro import Route, bound_once
from scopenet.contracts import routerspec as rs
from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import ByIdCommand
from scopenet.contracts.errors import NotAuthorized
from scopenet.contracts.subjects import TOPOLOGY_ENDPOINTS
from scopenet.policy.rules import not_found
from scopenet.services.topology import quotas
from scopenet.services.topology.agents.service import Agents
from scopenet.services.topology.bgp import speakerspecs as bgpspec
from scopenet.services.topology.bgp.service import BgpPeers, BgpSpeakers
from scopenet.services.topology.context import Deps
from scopenet.services.topology.floatingips.service import FloatingIps
from scopenet.services.topology.ipam_client import IpamClient
from scopenet.services.topology.networks.availability import IpAvailability
from scopenet.services.topology.networks.service import Networks
from scopenet.services.topology.portforwardings.service import PortForwardings
from scopenet.services.topology.ports.service import Ports
from scopenet.services.topology.rbac.service import NetworkRbac
from scopenet.services.topology.reachability.service import Reachability
from scopenet.services.topology.routers.extraroutes import ExtraRoutes
from scopenet.services.topology.routers.interfaces import Interfaces
from scopenet.services.topology.routers.service import Routers
from scopenet.services.topology.scopes.waits import MirrorWaits
from scopenet.services.topology.settings import TopologySettings
from scopenet.services.topology.specs.service import Specs
from scopenet.services.topology.subnets.onboard import Onboarding
from scopenet.services.topology.subnets.service import Subnets
from scopenet.store.db import db_errors
from scopenet.store.quotas import QuotaService


class RouterSpecs:
    """``router.spec``: what the router's agent should have right now (admin; for tools and tests)."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def spec(self, cmd: ByIdCommand) -> rs.RouterSpec:
        if not cmd.context.is_admin:
            raise NotAuthorized("rule:get_router_spec is disallowed by policy")
        async with db_errors(), self.d.db.acquire() as conn:
            spec = await self.d.specs.current(conn, cmd.id)
        if spec is None:
            raise not_found("router", cmd.id)
        return spec


def build(
    db: asyncpg.Pool, ipam: IpamClient, settings: TopologySettings, *, agent_bus: BusClient | None = None
) -> Deps:
    deps = Deps(db=db, ipam=ipam, settings=settings, agent_bus=agent_bus)
    deps.quotas = quotas.book(settings.quota_defaults())
    deps.specs = Specs()
    deps.specs.hooks.append(bgpspec.republish_all)
    deps.ports = Ports(deps)
    deps.subnets = Subnets(deps)
    deps.agents = Agents(deps)
    deps.routers = Routers(deps)
    deps.mirror_waits = MirrorWaits(db)
    return deps


def routes(deps: Deps) -> list[Route]:
    networks, subnets, ports, routers = Networks(deps), deps.subnets, deps.ports, deps.routers
    interfaces, specs, floatingips, rbac = Interfaces(deps), RouterSpecs(deps), FloatingIps(deps), NetworkRbac(deps)
    agents, speakers, peers = deps.agents, BgpSpeakers(deps), BgpPeers(deps)
    quota = QuotaService(deps.db, deps.quotas, event_resource=quotas.EVENT_RESOURCE, service="topology")
    extraroutes = ExtraRoutes(deps)
    portforwardings = PortForwardings(deps)
    return bound_once(
        [
            Route.bind(ep.NETWORK.create, networks.create),
            Route.bind(ep.NETWORK.get, networks.get),
            Route.bind(ep.NETWORK.list, networks.list),
            Route.bind(ep.NETWORK.update, networks.update),
            Route.bind(ep.NETWORK.delete, networks.delete),
            Route.bind(ep.SUBNET.create, subnets.create),
            Route.bind(ep.SUBNET.get, subnets.get),
            Route.bind(ep.SUBNET.list, subnets.list),
            Route.bind(ep.SUBNET.update, subnets.update),
            Route.bind(ep.SUBNET.delete, subnets.delete),
            Route.bind(ep.PORT.create, ports.create),
            Route.bind(ep.PORT.get, ports.get),
            Route.bind(ep.PORT.list, ports.list),
            Route.bind(ep.PORT.update, ports.update),
            Route.bind(ep.PORT.delete, ports.delete),
            Route.bind(ep.ROUTER.create, routers.create),
            Route.bind(ep.ROUTER.get, routers.get),
            Route.bind(ep.ROUTER.list, routers.list),
            Route.bind(ep.ROUTER.update, routers.update),
            Route.bind(ep.ROUTER.delete, routers.delete),
            Route.bind(ep.ROUTER_ADD_ROUTER_INTERFACE, interfaces.add_router_interface),
            Route.bind(ep.ROUTER_REMOVE_ROUTER_INTERFACE, interfaces.remove_router_interface),
            Route.bind(ep.ROUTER_ADD_EXTRAROUTES, extraroutes.add_extraroutes),
            Route.bind(ep.ROUTER_REMOVE_EXTRAROUTES, extraroutes.remove_extraroutes),
            Route.bind(ep.ROUTER_SPEC, specs.spec),
            Route.bind(ep.FLOATINGIP.create, floatingips.create),
            Route.bind(ep.FLOATINGIP.get, floatingips.get),
            Route.bind(ep.FLOATINGIP.list, floatingips.list),
            Route.bind(ep.FLOATINGIP.update, floatingips.update),
            Route.bind(ep.FLOATINGIP.delete, floatingips.delete),
            Route.bind(ep.PORT_FORWARDING_CREATE, portforwardings.create),
            Route.bind(ep.PORT_FORWARDING_GET, portforwardings.get),
            Route.bind(ep.PORT_FORWARDING_LIST, portforwardings.list),
            Route.bind(ep.PORT_FORWARDING_UPDATE, portforwardings.update),
            Route.bind(ep.PORT_FORWARDING_DELETE, portforwardings.delete),
            Route.bind(ep.RBAC_POLICY.create, rbac.create),
            Route.bind(ep.RBAC_POLICY.get, rbac.get),
            Route.bind(ep.RBAC_POLICY.list, rbac.list),
            Route.bind(ep.RBAC_POLICY.update, rbac.update),
            Route.bind(ep.RBAC_POLICY.delete, rbac.delete),
            Route.bind(ep.NETWORK_IP_AVAILABILITY_LIST, IpAvailability(deps.db).list),
            Route.bind(ep.AGENT_LIST, agents.list),
            Route.bind(ep.ROUTER_STATUS_REPORT, agents.report),
            Route.bind(ep.BGP_SPEAKER.create, speakers.create),
            Route.bind(ep.BGP_SPEAKER.get, speakers.get),
            Route.bind(ep.BGP_SPEAKER.list, speakers.list),
            Route.bind(ep.BGP_SPEAKER.update, speakers.update),
            Route.bind(ep.BGP_SPEAKER.delete, speakers.delete),
            Route.bind(ep.BGP_SPEAKER_ADD_BGP_PEER, speakers.add_bgp_peer),
            Route.bind(ep.BGP_SPEAKER_REMOVE_BGP_PEER, speakers.remove_bgp_peer),
            Route.bind(ep.BGP_SPEAKER_ADD_GATEWAY_NETWORK, speakers.add_gateway_network),
            Route.bind(ep.BGP_SPEAKER_REMOVE_GATEWAY_NETWORK, speakers.remove_gateway_network),
            Route.bind(ep.BGP_SPEAKER_GET_ADVERTISED_ROUTES, speakers.get_advertised_routes),
            Route.bind(ep.BGP_SPEAKER_SPEC, speakers.spec),
            Route.bind(ep.BGP_PEER.create, peers.create),
            Route.bind(ep.BGP_PEER.get, peers.get),
            Route.bind(ep.BGP_PEER.list, peers.list),
            Route.bind(ep.BGP_PEER.update, peers.update),
            Route.bind(ep.BGP_PEER.delete, peers.delete),
            Route.bind(ep.SUBNETPOOL_ONBOARD_NETWORK_SUBNETS, Onboarding(deps).onboard_network_subnets),
            Route.bind(ep.MIRROR_WAIT, deps.mirror_waits.wait),
            Route.bind(ep.REACHABILITY_EXPLAIN, Reachability(deps).explain),
            Route.bind(ep.QUOTA.get, quota.get),
            Route.bind(ep.QUOTA.defaults, quota.defaults),
            Route.bind(ep.QUOTA.details, quota.details),
            Route.bind(ep.QUOTA.list, quota.list),
            Route.bind(ep.QUOTA.update, quota.update),
            Route.bind(ep.QUOTA.delete, quota.delete),
        ],
        TOPOLOGY_ENDPOINTS,
    )
