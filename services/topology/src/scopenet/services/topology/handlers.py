"""The topology routes: each endpoint of ``TOPOLOGY_ENDPOINTS`` bound to the method that serves it."""

from __future__ import annotations

from typing import Any

import asyncpg

from scopenet.bus.micro import Route
from scopenet.contracts import routerspec as rs
from scopenet.contracts.base import ByIdCommand
from scopenet.contracts.errors import NotAuthorized
from scopenet.contracts.subjects import TOPOLOGY_ENDPOINTS
from scopenet.policy.rules import not_found
from scopenet.services.topology import bgpspec
from scopenet.services.topology.agents import Agents
from scopenet.services.topology.bgp import BgpPeers, BgpSpeakers
from scopenet.services.topology.context import Deps
from scopenet.services.topology.floatingips import FloatingIps
from scopenet.services.topology.interfaces import Interfaces
from scopenet.services.topology.ipam_client import IpamClient
from scopenet.services.topology.networks import Networks
from scopenet.services.topology.ports import Ports
from scopenet.services.topology.rbac import NetworkRbac
from scopenet.services.topology.routers import Routers
from scopenet.services.topology.settings import TopologySettings
from scopenet.services.topology.specs import Specs
from scopenet.services.topology.subnets import Subnets
from scopenet.store.db import db_errors


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


def build(db: asyncpg.Pool, ipam: IpamClient, settings: TopologySettings) -> Deps:
    deps = Deps(db=db, ipam=ipam, settings=settings)
    deps.specs = Specs()
    deps.specs.hooks.append(bgpspec.republish_all)
    deps.ports = Ports(deps)
    deps.subnets = Subnets(deps)
    deps.agents = Agents(deps)
    deps.routers = Routers(deps)
    return deps


def routes(deps: Deps) -> list[Route]:
    routers = deps.routers
    interfaces = Interfaces(deps)
    by_resource: dict[str, Any] = {
        "network": Networks(deps),
        "subnet": deps.subnets,
        "port": deps.ports,
        "floatingip": FloatingIps(deps),
        "rbac_policy": NetworkRbac(deps),
        "agent": deps.agents,
        "router_status": deps.agents,
        "bgp_speaker": BgpSpeakers(deps),
        "bgp_peer": BgpPeers(deps),
    }
    out = []
    for ep in TOPOLOGY_ENDPOINTS:
        if ep.resource == "router":
            target: Any = {
                "add_router_interface": interfaces,
                "remove_router_interface": interfaces,
                "spec": RouterSpecs(deps),
            }.get(ep.verb, routers)
        else:
            target = by_resource[ep.resource]
        out.append(Route(ep, getattr(target, ep.verb)))
    return out
