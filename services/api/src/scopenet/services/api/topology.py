"""Resources served by the topology service: networks, subnets, ports, routers (+ interfaces) and
floating IPs (docs/neutron.md).

One generic backend serves all five: the command names follow ``topology.<resource>.<verb>`` and
the bodies are wrapped under the resource's singular key, exactly as Neutron wraps them. Their lists
are ``PagedTopology``: the whole query goes to topology, whose SQL answers it one page at a time.
"""

from __future__ import annotations

from typing import Any

from scopenet.contracts import topology as t
from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import CallContext
from scopenet.contracts.endpoint import Crud, Endpoint
from scopenet.contracts.errors import BadRequest, NotAuthorized
from scopenet.services.api import query as lq
from scopenet.services.api.attrs import (
    Attr,
    as_bool,
    as_dict,
    as_int,
    as_ip_version,
    as_list,
    as_list_of_dicts,
    as_string,
    as_uuid,
    project_attrs,
    ro,
    standard_attrs,
)
from scopenet.services.api.gateway import Gateway
from scopenet.services.api.ipam import dump
from scopenet.services.api.spec import Resource, View

PUSHDOWN = frozenset(
    {"id", "name", "network_id", "device_id", "device_owner", "subnetpool_id", "router_id", "port_id",
     "floating_network_id", "project_id", "tenant_id"}
)  # fmt: skip


class TopologyBackend:
    def __init__(self, gw: Gateway, crud: Crud[Any, Any, Any, Any, Any]) -> None:
        self.gw = gw
        self.crud = crud
        self.resource = crud.create.resource

    def _one(self, reply: Any) -> View:
        return dump(reply[self.resource])

    async def create(self, ctx: CallContext, body: View) -> View:
        return self._one(await self.gw.call_json(self.crud.create, ctx, **{self.resource: body}))

    async def get(self, ctx: CallContext, id_: str) -> View:
        return self._one(await self.gw.call_json(self.crud.get, ctx, id=id_))

    async def list(self, ctx: CallContext, filters: dict[str, list[Any]]) -> list[View]:
        # Plain id/name equality narrows the service's answer (a port list by network or device
        # is the common case); everything else is filtered here, and these filters again too.
        pushed = {k: [str(x) for x in v] for k, v in filters.items() if k in PUSHDOWN}
        reply = await self.gw.call_json(self.crud.list, ctx, filters=pushed)
        return [dump(item) for item in reply[self.resource + "s"]]

    async def update(self, ctx: CallContext, id_: str, body: View, *, if_revision: int | None) -> View:
        extra = {"if_revision": if_revision} if if_revision is not None else {}
        reply = await self.gw.call_json(self.crud.update, ctx, id=id_, **{self.resource: body}, **extra)
        return self._one(reply)

    async def delete(self, ctx: CallContext, id_: str, *, if_revision: int | None) -> None:
        extra = {"if_revision": if_revision} if if_revision is not None else {}
        await self.gw.call(self.crud.delete, ctx, id=id_, **extra)


class PagedTopology(TopologyBackend):
    """A resource whose service answers the whole list query in SQL (``QueryCommand``): nothing is
    filtered, sorted or paged here, and a page costs the same however large the collection."""

    async def query(self, ctx: CallContext, q: lq.ListQuery) -> lq.Page:
        filters: dict[str, Any] = dict(q.filters)
        for key, wanted in q.extra.items():
            filters[key] = [_fixed_ip_object(w) for w in wanted]  # ports' fixed_ips, the only extra filter
        reply = await self.gw.call_json(
            self.crud.list,
            ctx,
            filters=filters,
            sort=[{"key": k, "ascending": asc} for k, asc in q.sort],
            limit=q.limit or None,
            marker=q.marker,
            page_reverse=q.page_reverse,
            tags=sorted(q.tag_filters.get("tags", ())),
            tags_any=sorted(q.tag_filters.get("tags-any", ())),
            not_tags=sorted(q.tag_filters.get("not-tags", ())),
            not_tags_any=sorted(q.tag_filters.get("not-tags-any", ())),
            fields=q.fields if len(q.fields) <= 64 else [],
        )
        return lq.Page([dump(item) for item in reply[self.resource + "s"]], bool(reply.get("has_more")))


def _fixed_ip_object(want: str) -> dict[str, str]:
    """``ip_address=10.0.0.3`` → ``{"ip_address": "10.0.0.3"}`` (the service's fixed_ips filter)."""
    key, _, value = want.partition("=")
    if key not in ("ip_address", "subnet_id", "ip_address_substr"):
        raise BadRequest(f"Invalid fixed_ips filter '{want[:64]}'", type="HTTPBadRequest", field="fixed_ips")
    return {key: value}


class Routers(PagedTopology):
    """Routers: ``{}`` as a gateway means "no gateway" (openstackclient's ``router unset``)."""

    def __init__(self, gw: Gateway) -> None:
        super().__init__(gw, ep.ROUTER)

    @staticmethod
    def _gateway(ctx: CallContext, body: View, verb: str) -> View:
        info = body.get("external_gateway_info")
        if info == {}:
            body = {**body, "external_gateway_info": None}
        elif isinstance(info, dict) and not ctx.is_admin:
            for key in ("enable_snat", "external_fixed_ips"):
                if key in info:
                    raise NotAuthorized(
                        f"(rule:{verb}_router and rule:{verb}_router:external_gateway_info:{key}) "
                        "is disallowed by policy"
                    )
        return body

    async def create(self, ctx: CallContext, body: View) -> View:
        return await super().create(ctx, self._gateway(ctx, body, "create"))

    async def update(self, ctx: CallContext, id_: str, body: View, *, if_revision: int | None) -> View:
        try:
            body = self._gateway(ctx, body, "update")
        except NotAuthorized:
            await self.get(ctx, id_)  # a router the caller cannot see is not found (rule 6)
            raise
        return await super().update(ctx, id_, body, if_revision=if_revision)

    def interface(self, endpoint: Endpoint[t.RouterInterface, t.RouterInterfaceInfo]) -> Any:
        async def run(ctx: CallContext, id_: str, body: Any) -> tuple[int, Any]:
            if not isinstance(body, dict) or set(body) - {"subnet_id", "port_id"}:
                raise BadRequest(
                    'Request body contains invalid data: expected {"subnet_id": ...} or {"port_id": ...}',
                    type="HTTPBadRequest",
                )
            ids = {k: as_uuid()(k, v) for k, v in body.items()}
            reply = await self.gw.call(endpoint, ctx, id=id_, **ids)
            return 200, reply.model_dump(mode="json")

        return run

    def extraroutes(self, endpoint: Endpoint[t.RouterExtraRoutes, t.RouterReply]) -> Any:
        """``PUT /routers/{id}/add_extraroutes`` and ``remove_extraroutes`` (extraroute-atomic): the
        body is ``{"router": {"routes": [...]}}``, the answer the whole router."""

        def routes_of(body: Any) -> Any:
            inner = body.get("router") if isinstance(body, dict) and set(body) == {"router"} else None
            if not isinstance(inner, dict) or set(inner) != {"routes"}:
                raise BadRequest(
                    'Request body contains invalid data: expected {"router": {"routes": [...]}}',
                    type="HTTPBadRequest",
                )
            return as_list_of_dicts(max_items=256)("routes", inner["routes"])

        async def run(ctx: CallContext, id_: str, body: Any) -> tuple[int, Any]:
            try:
                routes = routes_of(body)
            except BadRequest:
                await self.get(ctx, id_)  # a router the caller cannot see is not found (rule 6)
                raise
            reply = await self.gw.call_json(endpoint, ctx, id=id_, routes=routes)
            return 200, {"router": self._one(reply)}

        return run


def _fixed_ips_filter(item: View, wanted: list[str]) -> bool:
    """``fixed_ips=ip_address=10.0.0.3`` / ``fixed_ips=subnet_id=<id>`` (repeatable: any of)."""
    for want in wanted:
        key, _, value = want.partition("=")
        if key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise BadRequest(f"Invalid fixed_ips filter '{want[:64]}'", type="HTTPBadRequest", field="fixed_ips")
        for ip in item.get("fixed_ips") or []:
            have = str(ip.get("ip_address" if key == "ip_address_substr" else key))
            if (key == "ip_address_substr" and value in have) or have == value:
                return True
    return False


def resources(gw: Gateway) -> list[Resource]:
    s255, uuid_ = as_string(255), as_uuid()
    nullable_str = as_string(255, nullable=True)
    networks = Resource(
        collection="networks",
        plural="networks",
        singular="network",
        attrs=(
            ro("id"),
            Attr("name", s255, put=True, default=""),
            *project_attrs(),
            Attr("admin_state_up", as_bool, put=True, filter_convert=True),
            Attr("shared", as_bool, put=True, default=False, admin_post=True, admin_put=True, filter_convert=True),
            Attr(
                "router:external",
                as_bool,
                put=True,
                default=False,
                admin_post=True,
                admin_put=True,
                filter_convert=True,
            ),
            Attr("mtu", as_int(), put=True, filter_convert=True),
            Attr("provider:network_type", s255, default=None, admin_post=True),
            ro("provider:physical_network"),
            Attr("provider:segmentation_id", as_int(minimum=1), default=None, admin_post=True, filter_convert=True),
            ro("status"),
            ro("subnets", sort=False),
            ro("ipv4_address_scope", filter=False, sort=False),
            ro("ipv6_address_scope", filter=False, sort=False),
            Attr("port_security_enabled", as_bool, put=True, filter_convert=True),
            *standard_attrs(),
        ),
        backend=PagedTopology(gw, ep.NETWORK),
        admin_view=frozenset({"provider:network_type", "provider:physical_network", "provider:segmentation_id"}),
        not_found_type="NetworkNotFound",
        not_found_text="Network {} could not be found.",
        tags=True,
        doc="Networks; ipv4_address_scope/ipv6_address_scope follow the pools of their subnets.",
    )
    subnets = Resource(
        collection="subnets",
        plural="subnets",
        singular="subnet",
        attrs=(
            ro("id"),
            Attr("name", s255, put=True, default=""),
            Attr("network_id", uuid_, required=True),
            *project_attrs(),
            Attr("ip_version", as_ip_version, required=True, filter_convert=True),
            Attr("cidr", as_string(64, nullable=True)),
            Attr("subnetpool_id", as_uuid(nullable=True)),
            Attr("prefixlen", as_int(), filter=False, sort=False),
            Attr("use_default_subnetpool", as_bool, filter=False, sort=False),
            Attr("gateway_ip", as_string(64, nullable=True), put=True),
            Attr("allocation_pools", as_list_of_dicts(), put=True, filter=False, sort=False),
            Attr("enable_dhcp", as_bool, put=True, filter_convert=True),
            Attr("ipv6_ra_mode", as_string(32, nullable=True)),
            Attr("ipv6_address_mode", as_string(32, nullable=True)),
            Attr("dns_nameservers", as_list(as_string(255), max_items=64), put=True, filter=False, sort=False),
            Attr("host_routes", as_list_of_dicts(max_items=256), put=True, filter=False, sort=False),
            # Admin only, on POST and PUT alike (create_subnet:service_types, update_subnet:service_types).
            Attr(
                "service_types",
                as_list(as_string(255), max_items=32),
                put=True,
                admin_post=True,
                admin_put=True,
                filter=False,
                sort=False,
            ),
            ro("segment_id"),
            *standard_attrs(),
        ),
        backend=PagedTopology(gw, ep.SUBNET),
        not_found_type="SubnetNotFound",
        not_found_text="Subnet {} could not be found.",
        tags=True,
        doc="Subnets: an explicit cidr, or a prefix allocated from a subnet pool.",
    )
    ports = Resource(
        collection="ports",
        plural="ports",
        singular="port",
        attrs=(
            ro("id"),
            Attr("name", s255, put=True, default=""),
            Attr("network_id", uuid_, required=True),
            *project_attrs(),
            Attr("mac_address", as_string(32)),
            Attr("admin_state_up", as_bool, put=True, filter_convert=True),
            ro("status"),
            Attr("device_owner", s255, put=True),
            Attr("device_id", s255, put=True),
            Attr("fixed_ips", as_list_of_dicts(max_items=64), put=True, filter=False, sort=False),
            *standard_attrs(),
        ),
        backend=PagedTopology(gw, ep.PORT),
        not_found_type="PortNotFound",
        not_found_text="Port {} could not be found.",
        tags=True,
        extra_filters={"fixed_ips": _fixed_ips_filter},
        doc="Ports and their fixed IPs (allocated by IPAM).",
    )
    routers_backend = Routers(gw)
    routers = Resource(
        collection="routers",
        plural="routers",
        singular="router",
        attrs=(
            ro("id"),
            Attr("name", s255, put=True, default=""),
            *project_attrs(),
            Attr("admin_state_up", as_bool, put=True, filter_convert=True),
            ro("status"),
            ro("status_reason", filter=False, sort=False),
            Attr("external_gateway_info", as_dict(nullable=True), put=True, filter=False, sort=False),
            Attr("routes", as_list_of_dicts(max_items=256), post=False, put=True, filter=False, sort=False),
            *standard_attrs(),
        ),
        backend=routers_backend,
        not_found_type="RouterNotFound",
        not_found_text="Router {} could not be found.",
        tags=True,
        actions={
            "add_router_interface": routers_backend.interface(ep.ROUTER_ADD_ROUTER_INTERFACE),
            "remove_router_interface": routers_backend.interface(ep.ROUTER_REMOVE_ROUTER_INTERFACE),
            "add_extraroutes": routers_backend.extraroutes(ep.ROUTER_ADD_EXTRAROUTES),
            "remove_extraroutes": routers_backend.extraroutes(ep.ROUTER_REMOVE_EXTRAROUTES),
        },
        doc="Routers: interfaces, an external gateway (SNAT when scopes differ).",
    )
    floatingips = Resource(
        collection="floatingips",
        plural="floatingips",
        singular="floatingip",
        attrs=(
            ro("id"),
            Attr("floating_network_id", uuid_, required=True),
            Attr("floating_ip_address", as_string(64)),
            Attr("subnet_id", uuid_, filter=False, sort=False),
            Attr("port_id", as_uuid(nullable=True), put=True),
            Attr("fixed_ip_address", nullable_str, put=True),
            ro("router_id"),
            ro("status"),
            *project_attrs(),
            *standard_attrs(),
        ),
        backend=PagedTopology(gw, ep.FLOATINGIP),
        not_found_type="FloatingIPNotFound",
        not_found_text="Floating IP {} could not be found",
        tags=True,
        doc="Floating IPs: one-to-one NAT of an external address to a port's fixed IP.",
    )
    return [networks, subnets, ports, routers, floatingips]
