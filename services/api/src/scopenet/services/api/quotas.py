"""``/v2.0/quotas``: Neutron's ``quotas`` and ``quota_details`` extensions (docs/neutron.md#quotas).

Each service keeps and enforces the limits of what it creates (``scopenet.contracts.quotas``), so
every call here fans out to IPAM and, when it is part of the deployment, topology, and merges the
answers into Neutron's one flat document. ``rbac_policy`` is in both: its limit is set in both,
its usage is the sum of both.

A ``PUT`` checks the new limits against each service's usage before it writes anything, so a limit
refused for being below usage changes nothing anywhere; each service checks again under its
creates' lock. If a later service still refuses (or is away), the services written before it get
their previous limits back before the error is answered.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from scopenet.contracts import ipam_endpoints, topology_endpoints
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest
from scopenet.contracts.quotas import IPAM_RESOURCES, MAX_LIMIT, TOPOLOGY_RESOURCES, UNLIMITED, QuotaCommands
from scopenet.policy import quotas as rules
from scopenet.services.api.attrs import as_bool
from scopenet.services.api.controller import ctx_of, json_response, read_json
from scopenet.services.api.gateway import Gateway, has_service

_INT = re.compile(r"\s*[+-]?[0-9]{1,12}\s*")
_FLAGS = ("force", "check_limit")


def _commands() -> dict[QuotaCommands, tuple[str, ...]]:
    """Each present service's quota commands, with the resources it limits."""
    out: dict[QuotaCommands, tuple[str, ...]] = {ipam_endpoints.QUOTA: IPAM_RESOURCES}
    if has_service("topology"):
        out[topology_endpoints.QUOTA] = TOPOLOGY_RESOURCES
    return out


def _limit(name: str, value: Any) -> int:
    """neutron-lib's ``convert_to_int`` then ``type:range [-1, DB_INTEGER_MAX_VALUE]``, in its words."""
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and _INT.fullmatch(value))):
        raise BadRequest(
            f"Invalid input for operation: '{str(value)[:64]}' is not an integer.", type="InvalidInput", field=name
        )
    limit = int(value)
    if limit < UNLIMITED:
        reason = f"'{limit}' is too small - must be at least '{UNLIMITED}'"
    elif limit > MAX_LIMIT:
        reason = f"'{limit}' is too large - must be no larger than '{MAX_LIMIT}'"
    else:
        return limit
    raise BadRequest(f"Invalid input for {name}. Reason: {reason}.", type="HTTPBadRequest", field=name)


def parse_update(body: Any, known: tuple[str, ...]) -> tuple[dict[str, int], bool]:
    """A ``PUT`` body: the limits to set and whether ``force`` skips the usage check."""
    if not isinstance(body, dict) or "quota" not in body:
        raise BadRequest("Unable to find 'quota' in request body", type="HTTPBadRequest", field="quota")
    item = body["quota"]
    if len(body) > 1:
        extra = [k for k in body if k != "quota"]
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(extra)}'", type="HTTPBadRequest")
    if not isinstance(item, dict):
        raise BadRequest("Invalid data for quota: expected an object", type="HTTPBadRequest", field="quota")
    unknown = [k for k in item if k not in known and k not in _FLAGS]
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'", type="HTTPBadRequest", field=unknown[0])
    force = as_bool("force", item["force"]) if "force" in item else False
    if "check_limit" in item:
        as_bool("check_limit", item["check_limit"])  # always checked now, as in Neutron since 2025.1
    return {k: _limit(k, v) for k, v in item.items() if k not in _FLAGS}, force


class Quotas:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    @property
    def resources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for names in _commands().values() for r in names))

    async def _each(self, pick: Any, ctx: CallContext, **body: Any) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.gw.call_json(pick(c), ctx, **body) for c in _commands())))

    @staticmethod
    def _merge_limits(replies: list[Mapping[str, int]]) -> dict[str, int]:
        """One flat document; a resource two services limit shows the stricter of their limits."""
        out: dict[str, int] = {}
        for limits in replies:
            for name, limit in limits.items():
                old = out.get(name)
                out[name] = limit if old is None else _stricter(old, limit)
        return out

    async def limits(self, ctx: CallContext, project_id: str, verb: str = "get") -> dict[str, int]:
        replies = await self._each(lambda c: getattr(c, verb), ctx, project_id=project_id)
        return self._merge_limits([r["quota"]["limits"] for r in replies])

    async def details(self, ctx: CallContext, project_id: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for reply in await self._each(lambda c: c.details, ctx, project_id=project_id):
            for name, d in reply["details"].items():
                old = out.get(name)
                out[name] = (
                    dict(d)
                    if old is None
                    else {
                        "limit": _stricter(old["limit"], d["limit"]),
                        "used": old["used"] + d["used"],
                        "reserved": old["reserved"] + d["reserved"],
                    }
                )
        return out

    async def all(self, ctx: CallContext) -> list[dict[str, Any]]:
        rules.require_admin(ctx, "get")
        cmds = list(_commands())
        lists = await asyncio.gather(*(self.gw.call_json(c.list, ctx) for c in cmds))
        defaults = await asyncio.gather(*(self.gw.call_json(c.defaults, ctx, project_id=ctx.project_id) for c in cmds))
        projects = sorted({q["project_id"] for reply in lists for q in reply["quotas"]})
        out = []
        for project in projects:
            per_service = []
            for reply, default in zip(lists, defaults, strict=True):
                own = next((q["limits"] for q in reply["quotas"] if q["project_id"] == project), None)
                per_service.append(own if own is not None else default["quota"]["limits"])
            out.append({**self._merge_limits(per_service), "project_id": project, "tenant_id": project})
        return out

    async def update(self, ctx: CallContext, project_id: str, body: Any) -> dict[str, int]:
        rules.require_admin(ctx, "update")
        limits, force = parse_update(body, self.resources)
        cmds = _commands()
        own = [{k: v for k, v in limits.items() if k in names} for names in cmds.values()]
        if not force:
            # Refuse before writing anywhere. Each service limits its own resources (rbac_policy: its
            # own entries), so each is held to its own usage; each checks again under its lock.
            usage = await self._each(lambda c: c.details, ctx, project_id=project_id)
            for mine, reply in zip(own, usage, strict=True):
                used = {k: v["used"] + v["reserved"] for k, v in reply["details"].items()}
                rules.check_not_below_usage(mine, used)
        before = await self._each(lambda c: c.get, ctx, project_id=project_id)
        written: list[tuple[QuotaCommands, dict[str, int]]] = []
        try:
            for cmd, mine, previous in zip(cmds, own, before, strict=True):
                if mine:
                    await self.gw.call_json(cmd.update, ctx, project_id=project_id, limits=mine, force=force)
                    old = previous["quota"]["limits"]
                    written.append((cmd, {k: old[k] for k in mine if k in old}))
        except Exception:
            # A later service refused (a race under its lock) or is away: put the earlier ones back,
            # so a failed PUT changes no limit anywhere.
            for cmd, previous in written:
                await self.gw.call_json(cmd.update, ctx, project_id=project_id, limits=previous, force=True)
            raise
        return await self.limits(ctx, project_id)

    async def delete(self, ctx: CallContext, project_id: str) -> None:
        rules.require_admin(ctx, "delete")
        replies = await self._each(lambda c: c.delete, ctx, project_id=project_id)
        if not any(r["existed"] for r in replies):
            raise rules.no_project_quota(project_id)


def _stricter(a: int, b: int) -> int:
    if a <= UNLIMITED:
        return b
    if b <= UNLIMITED:
        return a
    return min(a, b)


def routes(gw: Gateway) -> list[web.RouteDef]:
    quotas = Quotas(gw)
    base = "/v2.0/quotas"

    async def index(request: web.Request) -> web.Response:
        return json_response({"quotas": await quotas.all(ctx_of(request))})

    async def show(request: web.Request) -> web.Response:
        ctx, project = ctx_of(request), request.match_info["project_id"]
        if project in ("project", "tenant"):  # Neutron's "whoami" collection actions
            return json_response({project: {f"{project}_id": ctx.project_id}})
        return json_response({"quota": {**await quotas.limits(ctx, project), "project_id": project}})

    async def default(request: web.Request) -> web.Response:
        ctx, project = ctx_of(request), request.match_info["project_id"]
        return json_response({"quota": await quotas.limits(ctx, project, "defaults")})

    async def details(request: web.Request) -> web.Response:
        ctx, project = ctx_of(request), request.match_info["project_id"]
        return json_response({"quota": await quotas.details(ctx, project)})

    async def update(request: web.Request) -> web.Response:
        ctx, project = ctx_of(request), request.match_info["project_id"]
        rules.require_admin(ctx, "update")  # policy before the body, as Neutron checks it
        limits = await quotas.update(ctx, project, await read_json(request))
        return json_response({"quota": {**limits, "project_id": project}})

    async def delete(request: web.Request) -> web.Response:
        await quotas.delete(ctx_of(request), request.match_info["project_id"])
        return web.Response(status=204)

    item = base + "/{project_id}"
    return [
        web.get(base, index, allow_head=False),
        web.get(item, show, allow_head=False),
        web.get(item + "/default", default, allow_head=False),
        web.get(item + "/details", details, allow_head=False),
        web.put(item, update),
        web.delete(item, delete),
    ]


def openapi_paths(errors: dict[str, Any]) -> dict[str, Any]:
    """The routes above in ``/openapi.json`` (limits by resource name, ints; ``-1`` unlimited);
    ``errors``: the document's error responses."""
    project = {"name": "project_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    limits = {"type": "object", "additionalProperties": {"type": "integer", "minimum": UNLIMITED, "maximum": MAX_LIMIT}}

    def ok(key: str, description: str, status: str = "200", kind: str = "object") -> dict[str, Any]:
        schema = {"type": "object", "required": [key], "properties": {key: {"type": kind}}}
        return {status: {"description": description, "content": {"application/json": {"schema": schema}}}, **errors}

    def op(op_id: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"operationId": op_id, "parameters": [project], "responses": responses, **extra}

    body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["quota"], "properties": {"quota": limits}}}
        },
    }
    gone = {"204": {"description": "back to the defaults"}, **errors}
    return {
        "/v2.0/quotas": {
            "get": {
                "operationId": "list_quotas",
                "responses": ok("quotas", "projects with limits of their own", kind="array"),
            }
        },
        "/v2.0/quotas/{project_id}": {
            "get": op("show_quota", ok("quota", "the project's limits")),
            "put": op("update_quota", ok("quota", "the project's limits"), requestBody=body),
            "delete": op("delete_quota", gone),
        },
        "/v2.0/quotas/{project_id}/default": {"get": op("show_default_quota", ok("quota", "the default limits"))},
        "/v2.0/quotas/{project_id}/details": {
            "get": op("show_quota_details", ok("quota", "limit, used and reserved per resource"))
        },
    }
