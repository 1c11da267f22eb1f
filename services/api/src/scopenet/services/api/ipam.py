"""Resources served by the IPAM service: address scopes, subnet pools (+ prefix operations) and a
read-only usage view of every pool (docs/neutron.md#address-scopes, #subnet-pools)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from scopenet.contracts import ipam as m
from scopenet.contracts import ipam_endpoints as ep
from scopenet.contracts import topology_endpoints as tep
from scopenet.contracts.base import CallContext
from scopenet.contracts.consistency import moves_scope
from scopenet.contracts.endpoint import Endpoint
from scopenet.contracts.errors import BadRequest, NotAuthorized, NotFound
from scopenet.services.api import consistency
from scopenet.services.api.attrs import (
    Attr,
    as_bool,
    as_int,
    as_ip_version,
    as_list,
    as_string,
    as_uuid,
    project_attrs,
    ro,
    standard_attrs,
)
from scopenet.services.api.gateway import Gateway
from scopenet.services.api.spec import Resource, View

_PREFIXLENS = ("min_prefixlen", "max_prefixlen", "default_prefixlen")


def dump(item: Any) -> View:
    """An item of a reply (parsed JSON) as an internal view, with Neutron's timestamp format."""
    out: View = dict(item)
    for key in ("created_at", "updated_at"):
        if isinstance(out.get(key), str):
            out[key] = _neutron_time(out[key])
    return out


def _neutron_time(iso: str) -> str:
    """``2016-12-13T22:53:30.123456Z`` → ``2016-12-13T22:53:30Z`` (Neutron's format, UTC)."""
    if len(iso) >= 19 and (iso.endswith("Z") or iso.endswith("+00:00")):
        return iso[:19] + "Z"
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class AddressScopes:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def create(self, ctx: CallContext, body: View) -> View:
        return dump((await self.gw.call_json(ep.ADDRESS_SCOPE.create, ctx, address_scope=body))["address_scope"])

    async def get(self, ctx: CallContext, id_: str) -> View:
        return dump((await self.gw.call_json(ep.ADDRESS_SCOPE.get, ctx, id=id_))["address_scope"])

    async def list(self, ctx: CallContext, filters: dict[str, list[Any]]) -> list[View]:
        reply = await self.gw.call_json(ep.ADDRESS_SCOPE.list, ctx)
        return [dump(s) for s in reply["address_scopes"]]

    async def update(self, ctx: CallContext, id_: str, body: View, *, if_revision: int | None) -> View:
        reply = await self.gw.call_json(ep.ADDRESS_SCOPE.update, ctx, id=id_, address_scope=body)
        return dump(reply["address_scope"])

    async def delete(self, ctx: CallContext, id_: str, *, if_revision: int | None) -> None:
        await self.gw.call(ep.ADDRESS_SCOPE.delete, ctx, id=id_)


class SubnetPools:
    def __init__(self, gw: Gateway, *, read_your_writes_timeout: float = 2.0) -> None:
        self.gw = gw
        self.read_your_writes_timeout = read_your_writes_timeout

    async def create(self, ctx: CallContext, body: View) -> View:
        return dump((await self.gw.call_json(ep.SUBNETPOOL.create, ctx, subnetpool=body))["subnetpool"])

    async def get(self, ctx: CallContext, id_: str) -> View:
        return dump((await self.gw.call_json(ep.SUBNETPOOL.get, ctx, id=id_))["subnetpool"])

    async def list(self, ctx: CallContext, filters: dict[str, list[Any]]) -> list[View]:
        return [dump(p) for p in (await self.gw.call_json(ep.SUBNETPOOL.list, ctx))["subnetpools"]]

    async def update(self, ctx: CallContext, id_: str, body: View, *, if_revision: int | None) -> View:
        extra = {"if_revision": if_revision} if if_revision is not None else {}
        reply = await self.gw.call_json(ep.SUBNETPOOL.update, ctx, id=id_, subnetpool=body, **extra)
        if moves_scope(body):  # the networks of its subnets may change scope: topology's data
            await consistency.pool_seen_by_topology(
                self.gw, ctx, reply["subnetpool"], timeout=self.read_your_writes_timeout
            )
        return dump(reply["subnetpool"])

    async def delete(self, ctx: CallContext, id_: str, *, if_revision: int | None) -> None:
        extra = {"if_revision": if_revision} if if_revision is not None else {}
        await self.gw.call(ep.SUBNETPOOL.delete, ctx, id=id_, **extra)

    async def onboard(self, ctx: CallContext, id_: str, body: Any) -> tuple[int, Any]:
        """``PUT /v2.0/subnetpools/{id}/onboard_network_subnets`` with ``{"network_id": ...}``: topology's
        command (it owns networks); Neutron answers each onboarded subnet's id and cidr, as a list."""
        network_id = body.get("network_id") if isinstance(body, dict) else None
        if network_id is None:
            raise BadRequest("network_id must be specified.", type="InvalidInput", field="network_id")
        network_id = as_uuid()("network_id", network_id)
        # Neutron's order: the pool's policy first (404 unseen, 403 not its owner), then the network.
        if not ctx.is_admin and (await self.get(ctx, id_))["project_id"] != ctx.project_id:
            raise NotAuthorized("rule:onboard_network_subnets is disallowed by policy")
        reply = await self.gw.call(tep.SUBNETPOOL_ONBOARD_NETWORK_SUBNETS, ctx, id=id_, network_id=network_id)
        return 200, [{"id": str(s.id), "cidr": s.cidr} for s in reply.subnets]

    def action(self, endpoint: Endpoint[m.SubnetPoolPrefixes, m.PrefixesReply]) -> Any:
        async def run(ctx: CallContext, id_: str, body: Any) -> tuple[int, Any]:
            prefixes = body.get("prefixes") if isinstance(body, dict) else None
            if not isinstance(prefixes, list) or not prefixes or not all(isinstance(p, str) for p in prefixes):
                raise BadRequest(
                    'Request body contains invalid data: expected {"prefixes": [<cidr>, ...]}',
                    type="HTTPBadRequest",
                    field="prefixes",
                )
            reply = await self.gw.call(endpoint, ctx, id=id_, prefixes=prefixes)
            return 200, {"prefixes": reply.prefixes}

        return run


class PoolUsage:
    """``/v2.0/subnetpool-ip-availabilities``: allocated vs free addresses of every visible pool."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def list(self, ctx: CallContext, filters: dict[str, list[Any]]) -> list[View]:
        usage, pools = await asyncio.gather(
            self.gw.call_json(ep.SUBNETPOOL_USAGE, ctx), self.gw.call_json(ep.SUBNETPOOL.list, ctx)
        )
        by_id = {p["id"]: p for p in pools["subnetpools"]}
        out = []
        for u in usage["usages"]:
            pool = by_id.get(u["subnetpool_id"], {})
            out.append(
                {
                    "id": u["subnetpool_id"],
                    "subnetpool_id": u["subnetpool_id"],
                    "subnetpool_name": pool.get("name", ""),
                    "project_id": pool.get("project_id", ""),
                    "tenant_id": pool.get("project_id", ""),
                    "address_scope_id": pool.get("address_scope_id"),
                    "ip_version": u["ip_version"],
                    "prefixes": pool.get("prefixes", []),
                    "total_ips": u["total_ips"],
                    "used_ips": u["used_ips"],
                    "free_ips": u["total_ips"] - u["used_ips"],
                    "subnet_count": u["subnet_count"],
                }
            )
        return out

    async def get(self, ctx: CallContext, id_: str) -> View:
        for item in await self.list(ctx, {}):
            if item["id"] == id_:
                return item
        raise NotFound(f"Subnet pool {id_} could not be found.", type="SubnetPoolNotFound")

    async def create(self, ctx: CallContext, body: View) -> View:
        raise AssertionError("read-only resource")

    async def update(self, ctx: CallContext, id_: str, body: View, *, if_revision: int | None) -> View:
        raise AssertionError("read-only resource")

    async def delete(self, ctx: CallContext, id_: str, *, if_revision: int | None) -> None:
        raise AssertionError("read-only resource")


def _pool_render(view: View, verb: str) -> View:
    """Prefix lengths are strings everywhere but in the PUT response (docs/neutron.md#subnet-pools)."""
    if verb != "update":
        view = dict(view)
        for key in _PREFIXLENS:
            if view.get(key) is not None:
                view[key] = str(view[key])
    return view


def resources(gw: Gateway, *, read_your_writes_timeout: float = 2.0) -> list[Resource]:
    uuid_ = as_uuid()
    scopes = Resource(
        collection="address-scopes",
        plural="address_scopes",
        singular="address_scope",
        attrs=(
            ro("id"),
            Attr("name", as_string(255), put=True, default=""),
            *project_attrs(),
            Attr("shared", as_bool, put=True, default=False, admin_post=True, admin_put=True, filter_convert=True),
            Attr("ip_version", as_ip_version, required=True, filter_convert=True),
        ),
        backend=AddressScopes(gw),
        not_found_type="AddressScopeNotFound",
        not_found_text="Address scope {} could not be found.",
        revisions=False,
        marker_must_exist=False,
        hidden=frozenset({"mark_id"}),
        doc="Address scopes: where addresses are unique and routable without NAT.",
    )
    pools_backend = SubnetPools(gw, read_your_writes_timeout=read_your_writes_timeout)
    pools = Resource(
        collection="subnetpools",
        plural="subnetpools",
        singular="subnetpool",
        attrs=(
            ro("id"),
            Attr("name", as_string(255), put=True, required=True),
            *project_attrs(),
            Attr("prefixes", as_list(as_string(64), unique=True), put=True, required=True, filter=False, sort=False),
            ro("ip_version", as_ip_version, filter_convert=True),
            *(Attr(k, as_int(), put=True, filter_convert=True) for k in _PREFIXLENS),
            Attr("default_quota", as_int(nullable=True), put=True, filter_convert=True),
            Attr("address_scope_id", as_uuid(nullable=True), put=True),
            Attr("is_default", as_bool, put=True, default=False, admin_post=True, admin_put=True, filter_convert=True),
            Attr("shared", as_bool, default=False, admin_post=True, filter_convert=True),
            *standard_attrs(),
        ),
        backend=pools_backend,
        not_found_type="SubnetPoolNotFound",
        not_found_text="Subnet pool {} could not be found.",
        tags=True,
        marker_must_exist=False,
        actions={
            "add_prefixes": pools_backend.action(ep.SUBNETPOOL_ADD_PREFIXES),
            "remove_prefixes": pools_backend.action(ep.SUBNETPOOL_REMOVE_PREFIXES),
            "onboard_network_subnets": pools_backend.onboard,
        },
        render=_pool_render,
        doc="Subnet pools: the prefixes subnets are allocated from.",
    )
    usage = Resource(
        collection="subnetpool-ip-availabilities",
        plural="subnetpool_ip_availabilities",
        singular="subnetpool_ip_availability",
        attrs=(
            ro("subnetpool_id", uuid_),
            ro("subnetpool_name"),
            ro("project_id"),
            ro("tenant_id"),
            ro("address_scope_id"),
            ro("ip_version", as_ip_version, filter_convert=True),
            ro("prefixes", filter=False, sort=False),
            ro("total_ips", as_int(), filter=False),
            ro("used_ips", as_int(), filter=False),
            ro("free_ips", as_int(), filter=False),
            ro("subnet_count", as_int(), filter=False),
            ro("id", filter=False, sort=False),
        ),
        backend=PoolUsage(gw),
        not_found_type="SubnetPoolNotFound",
        not_found_text="Subnet pool {} could not be found.",
        revisions=False,
        writable=False,
        marker_must_exist=False,
        hidden=frozenset({"id"}),
        doc="Allocated vs free addresses of every visible subnet pool (read-only).",
    )
    return [scopes, pools, usage]
