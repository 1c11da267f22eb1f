"""``/v2.0/extensions``: exactly the Neutron extensions this API implements.

Clients change what they send based on this list (openstackclient probes
``tag-ports-during-bulk-creation``, ``external-gateway-multihoming``, ``port-hints`` …), so an
alias appears here only when its behaviour is served. Topology-backed aliases appear once the
topology service's contracts are part of the build.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from scopenet.contracts.errors import NotFound
from scopenet.services.api.controller import json_response

_UPDATED = "2016-01-01T10:00:00-00:00"


@dataclass(frozen=True)
class Extension:
    alias: str
    name: str
    description: str

    def view(self) -> dict[str, object]:
        return {
            "alias": self.alias,
            "name": self.name,
            "description": self.description,
            "updated": _UPDATED,
            "links": [],
        }


COMMON = (
    Extension("address-scope", "Address scope", "Address scopes extension."),
    Extension("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    Extension(
        "subnetpool-prefix-ops",
        "Subnet Pool Prefix Operations",
        "Provides support for adjusting the prefix list of subnet pools",
    ),
    Extension(
        "rbac-policies",
        "RBAC Policies",
        "Allows creation and modification of policies that control tenant access to resources.",
    ),
    Extension("rbac-address-scope", "Add address_scope type to RBAC", "Add address_scope type to RBAC"),
    Extension("rbac-subnetpool", "Add subnetpool type to RBAC", "Add subnetpool type to RBAC"),
    Extension(
        "standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"
    ),
    Extension(
        "standard-attr-revisions",
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    Extension(
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
    ),
    Extension(
        "standard-attr-tag",
        "Tag support for resources with standard attribute: subnet, router, network, subnetpool, port, floatingip",
        "Enables to set tag on resources with standard attribute.",
    ),
    Extension(
        "revision-if-match",
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
    ),
    Extension("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    Extension("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    Extension("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    Extension("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
    Extension("quotas", "Quota management support", "Expose functions for quotas management per project"),
    Extension(
        "quota_details",
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
    ),
    Extension(
        "subnetpool-ip-availability",
        "Subnet pool IP availability",
        "scopenet: allocated vs free addresses of every subnet pool.",
    ),
    Extension(
        "subnetpool-usage-history",
        "Subnet pool usage and allocation history",
        "scopenet: GET /v2.0/subnetpools/{id}/usage (prefixes, free blocks, quota use per project) and "
        "/v2.0/subnetpools/{id}/history (every prefix taken or released, by whom, with which request).",
    ),
)

TOPOLOGY = (
    Extension("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    Extension(
        "network-ip-availability",
        "Network IP Availability",
        "Provides IP availability data for each network and subnet.",
    ),
    Extension(
        "network-ip-availability-details",
        "Network IP Availability Details Extension",
        "Add ip_availability_details attribute to network-ip-availabilities resource.",
    ),
    # Served by topology (it owns networks); IPAM adopts the subnets into the pool.
    Extension("subnet_onboard", "Subnet Onboard", "Provides support for onboarding subnets into subnet pools"),
    Extension("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    Extension(
        "router",
        "Neutron L3 Router",
        "Router abstraction for Layer 3 forwarding between L2 Neutron networks and access to "
        "external networks via a NAT gateway.",
    ),
    Extension(
        "ext-gw-mode",
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway",
    ),
    Extension("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    Extension(
        "extraroute-atomic",
        "Atomically add/remove extra routes",
        "Edit extra routes of a router on server side by atomically adding/removing extra routes",
    ),
    Extension(
        "default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."
    ),
    Extension(
        "floating-ip-port-forwarding",
        "Floating IP Port Forwarding",
        "Allow port forwarding from floating IP port to an internal port",
    ),
    Extension(
        "floating-ip-port-forwarding-port-ranges",
        "Floating IP Port Forwarding support port ranges",
        "Add support to port ranges",
    ),
    Extension(
        "floating-ip-port-forwarding-description",
        "Floating IP Port Forwarding new attribute description",
        "Add a description field to Port Forwarding rules",
    ),
    Extension(
        "bgp",
        "Neutron BGP Dynamic Routing Extension",
        "Discover and advertise routes for Neutron prefixes dynamically via BGP",
    ),
    Extension("bgp_4byte_asn", "4-byte ASN Support for BGP Dynamic Routing", "Support 4-byte ASN for BGP Speaker"),
)


def enabled(topology: bool) -> list[Extension]:
    return [*COMMON, *(TOPOLOGY if topology else ())]


def routes(topology: bool) -> list[web.RouteDef]:
    exts = {e.alias: e for e in enabled(topology)}

    async def list_(_: web.Request) -> web.Response:
        return json_response({"extensions": [e.view() for e in exts.values()]})

    async def show(request: web.Request) -> web.Response:
        alias = request.match_info["alias"]
        ext = exts.get(alias)
        if ext is None:
            raise NotFound(f"Extension with alias {alias[:64]} does not exist", type="HTTPNotFound")
        return json_response({"extension": ext.view()})

    return [
        web.get("/v2.0/extensions", list_, allow_head=False),
        web.get("/v2.0/extensions/{alias}", show, allow_head=False),
    ]
