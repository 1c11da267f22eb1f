"""``/v2.0/rbac-policies``: one Neutron collection over two owners.

Entries on address scopes and subnet pools live in IPAM; entries on networks live in topology
(when that service is part of the deployment). A create is routed by ``object_type``; a read,
update or delete by id asks IPAM first and topology when IPAM does not know the id; a list
merges both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from scopenet.contracts import ipam_endpoints, topology_endpoints
from scopenet.contracts.base import CallContext
from scopenet.contracts.endpoint import Crud, Endpoint
from scopenet.contracts.errors import BadRequest, DomainError
from scopenet.services.api.attrs import Attr, as_string, as_uuid, project_attrs, ro
from scopenet.services.api.gateway import Gateway, has_service
from scopenet.services.api.spec import Resource, View

IPAM_TYPES = ("address_scope", "subnetpool")
TOPOLOGY_TYPES = ("network",)


#: Each owner's rbac_policy commands.
_CRUD: dict[str, Crud[Any, Any, Any, Any, Any]] = {
    "ipam": ipam_endpoints.RBAC_POLICY,
    "topology": topology_endpoints.RBAC_POLICY,
}
Pick = Callable[[Crud[Any, Any, Any, Any, Any]], Endpoint[Any, Any]]


def _owner(object_type: str) -> str:
    return "ipam" if object_type in IPAM_TYPES else "topology"


def _dump(item: Any) -> View:
    return dict(item)


class RbacPolicies:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def object_types(self) -> tuple[str, ...]:
        return IPAM_TYPES + (TOPOLOGY_TYPES if has_service("topology") else ())

    def _services(self) -> list[str]:
        return ["ipam", "topology"] if has_service("topology") else ["ipam"]

    async def create(self, ctx: CallContext, body: View) -> View:
        kind = body.get("object_type")
        if kind not in self.object_types():
            raise BadRequest(
                f"Invalid input for object_type. Reason: '{str(kind)[:64]}' is not in {list(self.object_types())}.",
                type="HTTPBadRequest",
                field="object_type",
            )
        reply = await self.gw.call_json(_CRUD[_owner(kind)].create, ctx, rbac_policy=body)
        return _dump(reply["rbac_policy"])

    async def _by_id(self, pick: Pick, ctx: CallContext, id_: str, **body: Any) -> dict[str, Any]:
        """``pick``'s command of the owner that knows ``id_`` (IPAM is asked first)."""
        last: DomainError | None = None
        for service in self._services():
            try:
                return await self.gw.call_json(pick(_CRUD[service]), ctx, id=id_, **body)
            except DomainError as exc:
                if exc.code != 404:
                    raise
                last = exc
        assert last is not None
        raise last

    async def get(self, ctx: CallContext, id_: str) -> View:
        return _dump((await self._by_id(lambda c: c.get, ctx, id_))["rbac_policy"])

    async def list(self, ctx: CallContext, filters: dict[str, list[Any]]) -> list[View]:
        replies = await asyncio.gather(*(self.gw.call_json(_CRUD[s].list, ctx) for s in self._services()))
        return [_dump(p) for r in replies for p in r["rbac_policies"]]

    async def update(self, ctx: CallContext, id_: str, body: View, *, if_revision: int | None) -> View:
        target = body.get("target_tenant") or body.get("target_project")
        if not target:
            raise BadRequest("Nothing to update: give target_tenant", type="HTTPBadRequest", field="target_tenant")
        return _dump((await self._by_id(lambda c: c.update, ctx, id_, target_tenant=target))["rbac_policy"])

    async def delete(self, ctx: CallContext, id_: str, *, if_revision: int | None) -> None:
        await self._by_id(lambda c: c.delete, ctx, id_)


def resource(gw: Gateway) -> Resource:
    target = as_string(255)
    return Resource(
        collection="rbac-policies",
        plural="rbac_policies",
        singular="rbac_policy",
        attrs=(
            ro("id"),
            Attr("object_type", as_string(255), required=True),
            Attr("object_id", as_uuid(), required=True),
            Attr("action", as_string(255), required=True),
            Attr("target_tenant", target, put=True),
            Attr("target_project", target, put=True),
            *project_attrs(),
        ),
        backend=RbacPolicies(gw),
        not_found_type="RbacPolicyNotFound",
        not_found_text="RBAC policy with id {} could not be found.",
        revisions=False,
        doc="Share address scopes, subnet pools and networks with one project or with everyone.",
    )
