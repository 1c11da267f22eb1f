"""IPAM views: Neutron's ``network-ip-availability`` (with ``-details``), and scopenet's pool usage
and allocation history (docs/neutron.md#ip-availability, docs/operations.md#pool-usage).

- ``GET /v2.0/network-ip-availabilities[/{network_id}]``: topology counts (it holds networks, subnets
  and fixed IPs). Admin only, refused the way Neutron refuses a GET: the list is empty, a show is 404.
- ``GET /v2.0/subnetpools/{id}/usage`` and ``/history``: IPAM answers, for whoever can see the pool.

``IpViews`` is also what the web UI calls in-process: the same calls, the same JSON as the HTTP API.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from scopenet.contracts import ipam_endpoints, topology_endpoints
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, NotFound
from scopenet.policy.rules import not_found
from scopenet.services.api import query as lq
from scopenet.services.api.controller import ctx_of, json_response

#: Neutron's filters on this resource (``network_ip_availability_db.SUPPORTED_FILTERS``); others are ignored.
_FILTERS = ("network_id", "network_name", "project_id", "tenant_id", "ip_version")
_HISTORY_PARAMS = ("limit", "marker", "project_id", "action", "since", "until", "sort_dir")
_SORTABLE = ("network_id", "network_name", "project_id", "tenant_id", "total_ips", "used_ips")


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _hidden() -> NotFound:
    """What Neutron answers a GET of one item its policy refuses (pecan's policy hook)."""
    return NotFound("The resource could not be found.", type="HTTPNotFound")


def _respond(body: Any) -> web.Response:
    """IPv6 counts pass 2^64, which orjson neither reads nor writes exactly: replies are read by
    pydantic (``Gateway.call``) and written by the standard library when orjson cannot."""
    try:
        return json_response(body)
    except TypeError:
        return web.Response(text=json.dumps(body), content_type="application/json")


def _int_param(name: str, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for {name}: '{raw[:64]}' is not an integer", field=name) from None


class IpViews:
    def __init__(self, gw: Any) -> None:
        self.gw = gw

    # ------------------------------------------------------------ network-ip-availability

    async def availabilities(self, ctx: CallContext, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """The networks' availability (``filters``: Neutron's, a value or a list of values)."""
        wanted = {k: v for k, v in filters.items() if k in _FILTERS}
        reply = await self.gw.call(topology_endpoints.NETWORK_IP_AVAILABILITY_LIST, ctx, filters=wanted)
        return [n.model_dump(mode="json") for n in reply.network_ip_availabilities]

    async def availability(self, ctx: CallContext, network_id: str) -> dict[str, Any]:
        if not ctx.is_admin:
            raise _hidden()
        id_ = _uuid(network_id)
        found = await self.availabilities(ctx, {"network_id": str(id_)}) if id_ is not None else []
        if not found:
            raise not_found("network", network_id)
        return found[0]

    # ------------------------------------------------------------ pools

    async def pool_usage(self, ctx: CallContext, pool_id: str) -> dict[str, Any]:
        """``subnetpool_usage``: prefixes with allocations and free blocks, totals, projects' quota use."""
        id_ = _uuid(pool_id)
        if id_ is None:
            raise not_found("subnetpool", pool_id)
        reply = await self.gw.call(ipam_endpoints.SUBNETPOOL_SPACE, ctx, id=id_)
        usage: dict[str, Any] = reply.subnetpool_usage.model_dump(mode="json")
        return usage

    async def pool_history(
        self,
        ctx: CallContext,
        pool_id: str,
        *,
        limit: int = 100,
        marker: int | None = None,
        project_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        action: str | None = None,
        descending: bool = True,
    ) -> dict[str, Any]:
        """``{"entries": [...], "next_marker": int | None}``, newest first unless ``descending=False``."""
        id_ = _uuid(pool_id)
        if id_ is None:
            raise not_found("subnetpool", pool_id)
        body: dict[str, Any] = {"id": id_, "limit": limit, "descending": descending}
        optional = {"marker": marker, "project_id": project_id, "since": since, "until": until, "action": action}
        body.update({k: v for k, v in optional.items() if v is not None})
        reply: dict[str, Any] = await self.gw.call_json(ipam_endpoints.SUBNETPOOL_HISTORY, ctx, **body)
        return reply


def _filters(query: MultiMapping[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _FILTERS:
        values = [v for v in query.getall(key, []) if v != ""]
        if values:
            out[key] = values if len(values) > 1 else values[0]
    return out


def _sorted(items: list[dict[str, Any]], query: MultiMapping[str]) -> list[dict[str, Any]]:
    """``sort_key``/``sort_dir`` (the SDK offers them); the first key decides, then the next."""
    keys = query.getall("sort_key", [])
    dirs = query.getall("sort_dir", [])
    for i, key in reversed(list(enumerate(keys))):
        if key not in _SORTABLE:
            raise BadRequest(f"{key} is an invalid attribute for sort_key", field="sort_key")
        direction = dirs[i] if i < len(dirs) else "asc"
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Unknown sort direction '{direction}', must be 'desc' or 'asc'", field="sort_dir")
        items = sorted(items, key=functools.partial(_sort_value, key), reverse=direction == "desc")
    return items


def _sort_value(key: str, item: dict[str, Any]) -> tuple[int, Any]:
    """Numbers by value, the rest as text (a column holds one kind)."""
    value = item.get(key)
    return (0, value) if isinstance(value, int) else (1, str(value))


def routes(gw: Any, *, topology: bool = True) -> list[web.RouteDef]:
    """``topology``: whether the deployment has it (network-ip-availability needs its networks)."""
    views = IpViews(gw)
    base = "/v2.0/network-ip-availabilities"

    def fields(request: web.Request) -> list[str]:
        return [f for v in request.query.getall("fields", []) for f in v.split(",") if f]

    async def index(request: web.Request) -> web.Response:
        items = await views.availabilities(ctx_of(request), _filters(request.query))
        shown = [lq.project(i, fields(request)) for i in _sorted(items, request.query)]
        return _respond({"network_ip_availabilities": shown})

    async def show(request: web.Request) -> web.Response:
        item = await views.availability(ctx_of(request), request.match_info["network_id"])
        return _respond({"network_ip_availability": lq.project(item, fields(request))})

    async def usage(request: web.Request) -> web.Response:
        return _respond({"subnetpool_usage": await views.pool_usage(ctx_of(request), request.match_info["id"])})

    async def history(request: web.Request) -> web.Response:
        q = request.query
        sort_dir = q.get("sort_dir", "desc")
        if sort_dir not in ("asc", "desc"):
            raise BadRequest(f"Unknown sort direction '{sort_dir[:16]}', must be 'desc' or 'asc'", field="sort_dir")
        page = await views.pool_history(
            ctx_of(request),
            request.match_info["id"],
            limit=100 if (limit := _int_param("limit", q.get("limit"))) is None else limit,
            marker=_int_param("marker", q.get("marker")),
            project_id=q.get("project_id") or None,
            since=q.get("since") or None,
            until=q.get("until") or None,
            action=q.get("action") or None,
            descending=sort_dir == "desc",
        )
        body: dict[str, Any] = {"subnetpool_history": page["entries"]}
        if page["next_marker"] is not None:
            kept = {k: v for k, v in q.items() if k in _HISTORY_PARAMS and k != "marker"}
            href = request.url.with_query({**kept, "marker": str(page["next_marker"])})
            body["subnetpool_history_links"] = [{"rel": "next", "href": str(href)}]
        return _respond(body)

    pool = "/v2.0/subnetpools/{id}"
    out = [web.get(pool + "/usage", usage, allow_head=False), web.get(pool + "/history", history, allow_head=False)]
    if topology:
        out += [web.get(base, index, allow_head=False), web.get(base + "/{network_id}", show, allow_head=False)]
    return out


def openapi_paths(errors: dict[str, Any]) -> dict[str, Any]:
    """The routes above in ``/openapi.json``; ``errors``: the document's error responses."""

    def ok(key: str, description: str, kind: str = "object") -> dict[str, Any]:
        schema = {"type": "object", "required": [key], "properties": {key: {"type": kind}}}
        return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}, **errors}

    def param(name: str, where: str = "query", kind: str = "string") -> dict[str, Any]:
        return {"name": name, "in": where, "required": where == "path", "schema": {"type": kind}}

    pool_id = param("id", "path")
    return {
        "/v2.0/network-ip-availabilities": {
            "get": {
                "operationId": "list_network_ip_availabilities",
                "parameters": [param(f) for f in _FILTERS],
                "responses": ok("network_ip_availabilities", "addresses per network and subnet (admin)", "array"),
            }
        },
        "/v2.0/network-ip-availabilities/{network_id}": {
            "get": {
                "operationId": "show_network_ip_availability",
                "parameters": [param("network_id", "path")],
                "responses": ok("network_ip_availability", "one network's addresses (admin)"),
            }
        },
        "/v2.0/subnetpools/{id}/usage": {
            "get": {
                "operationId": "show_subnetpool_usage",
                "parameters": [pool_id],
                "responses": ok("subnetpool_usage", "the pool's prefixes, allocations, free blocks and quota use"),
            }
        },
        "/v2.0/subnetpools/{id}/history": {
            "get": {
                "operationId": "list_subnetpool_history",
                "parameters": [pool_id]
                + [param(p, kind="integer" if p in ("limit", "marker") else "string") for p in _HISTORY_PARAMS],
                "responses": ok("subnetpool_history", "the pool's allocation history, a page", "array"),
            }
        },
    }
