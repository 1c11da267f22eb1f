"""Everything the UI reads, fetched as the caller through the API's own resources (their backends
and ``present``, which hides admin-only keys), ``IpViews`` and ``Explainer``: a page never sees
more than the JSON API would show the same identity."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from scopenet.contracts.base import CallContext
from scopenet.services.api import query as lq
from scopenet.services.api.ipviews import IpViews
from scopenet.services.api.reachability import Explainer
from scopenet.services.api.spec import Resource, View

#: Ports the map needs: a router's interfaces and gateway (not every instance port).
ROUTER_OWNERS = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
    "network:router_gateway",
)


PAGE = 1000
#: What the map reads of each list (less to carry, parse and hold at ten thousand items).
FIELDS = {
    "networks": ("id", "name", "project_id", "router:external", "subnets", "ipv4_address_scope", "ipv6_address_scope"),
    "subnets": ("id", "name", "project_id", "network_id", "cidr", "ip_version", "subnetpool_id"),
    "routers": ("id", "name", "project_id", "external_gateway_info", "admin_state_up"),
    "floatingips": ("id", "floating_ip_address", "fixed_ip_address", "port_id", "floating_network_id", "router_id"),
    "ports": ("id", "device_owner", "device_id", "network_id", "fixed_ips"),
}


@dataclass
class Snapshot:
    """What the caller may see, as the JSON API's list answers."""

    scopes: list[View] = field(default_factory=list)
    pools: list[View] = field(default_factory=list)
    """``subnetpool-ip-availabilities`` items: a pool with its usage (``used_ips``, ``total_ips``)."""
    networks: list[View] = field(default_factory=list)
    subnets: list[View] = field(default_factory=list)
    routers: list[View] = field(default_factory=list)
    router_ports: list[View] = field(default_factory=list)
    floatingips: list[View] = field(default_factory=list)


class UiData:
    def __init__(self, gw: Any, resources: list[Resource]) -> None:
        self.by = {r.collection: r for r in resources}
        self.views = IpViews(gw)
        self.explainer = Explainer(gw)

    def has(self, collection: str) -> bool:
        return collection in self.by

    async def list(
        self,
        ctx: CallContext,
        collection: str,
        filters: dict[str, list[Any]] | None = None,
        fields: tuple[str, ...] = (),
    ) -> list[View]:
        """Every visible item, read in pages as a client would (a whole list of ten thousand ports
        is more than one NATS message may carry), with only ``fields`` when given."""
        if collection not in self.by:
            return []  # an API without topology: no networks, routers, ...
        r = self.by[collection]
        if not isinstance(r.backend, lq.PagedBackend):
            return [r.present(v, "list", ctx) for v in await r.backend.list(ctx, filters or {})]
        out: list[View] = []
        marker: str | None = None
        while True:
            q = lq.ListQuery(filters=dict(filters or {}), fields=list(fields), sort=[("id", True)], limit=PAGE)
            q.marker = marker
            page = await r.backend.query(ctx, q)
            out += [r.present(v, "list", ctx) for v in page.items]
            if not page.has_more or not page.items:
                return out
            marker = str(page.items[-1]["id"])

    async def get(self, ctx: CallContext, collection: str, id_: str) -> View:
        r = self.by[collection]
        return r.present(await r.backend.get(ctx, id_), "show", ctx)

    async def create(self, ctx: CallContext, collection: str, item: Any) -> View:
        """Through the controller's own create path (body rules, policy, backend)."""
        from scopenet.services.api.controller import Controller

        return await Controller(self.by[collection]).create_item(ctx, item)

    async def snapshot(self, ctx: CallContext) -> Snapshot:
        names = ("address-scopes", "subnetpool-ip-availabilities", "networks", "subnets", "routers", "floatingips")
        lists = await asyncio.gather(
            *(self.list(ctx, n, fields=FIELDS.get(n, ())) for n in names),
            self.list(ctx, "ports", {"device_owner": list(ROUTER_OWNERS)}, FIELDS["ports"]),
        )
        scopes, pools, networks, subnets, routers, fips, ports = lists
        return Snapshot(scopes, pools, networks, subnets, routers, ports, fips)

    async def pool(self, ctx: CallContext, pool_id: str) -> tuple[View, dict[str, Any], dict[str, Any]]:
        """The pool (404 as the API answers), its usage and its newest allocation history."""
        pool, usage, history = await asyncio.gather(
            self.get(ctx, "subnetpools", pool_id),
            self.views.pool_usage(ctx, pool_id),
            self.views.pool_history(ctx, pool_id, limit=50),
        )
        return pool, usage, history

    async def explain(self, ctx: CallContext, **query: Any) -> dict[str, Any]:
        return await self.explainer.explain(ctx, **query)
