"""``GET /v2.0/reachability?source=&destination=[&protocol=][&destination_port=][&ip_version=]``:
why a packet from one port or address reaches another, or not (docs/reachability.md).

Topology answers (``reachability.explain``) with the caller's context, so a port the caller cannot
see is 404 as if it did not exist. ``Explainer`` is also what the web UI calls in-process: the same
call, the same JSON as the HTTP API.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scopenet.contracts import topology_endpoints
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest
from scopenet.services.api.attrs import as_bool
from scopenet.services.api.controller import ctx_of, json_response

PATH = "/v2.0/reachability"
_PROTOCOLS = ("tcp", "udp", "icmp")


class Explainer:
    def __init__(self, gw: Any) -> None:
        self.gw = gw

    async def explain(
        self,
        ctx: CallContext,
        *,
        source: str,
        destination: str,
        protocol: str = "udp",
        destination_port: int | None = None,
        ip_version: int | None = None,
        kernel: bool = True,
    ) -> dict[str, Any]:
        """The ``reachability`` object: verdict, translated addresses, hops, reasons, kernel, fix."""
        body: dict[str, Any] = {"source": source, "destination": destination, "protocol": protocol, "kernel": kernel}
        if destination_port is not None:
            body["destination_port"] = destination_port
        if ip_version is not None:
            body["ip_version"] = ip_version
        answer: dict[str, Any] = await self.gw.call_json(topology_endpoints.REACHABILITY_EXPLAIN, ctx, **body)
        return answer


def _required(query: Any, name: str) -> str:
    value = (query.get(name) or "").strip()
    if not value:
        raise BadRequest(f"The query parameter '{name}' is required: a port id or an IP address", field=name)
    if len(value) > 64:
        raise BadRequest(f"Invalid input for {name}: at most 64 characters", field=name)
    return value


def _int(query: Any, name: str, allowed: range) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for {name}: '{raw[:64]}' is not an integer", field=name) from None
    if value not in allowed:
        raise BadRequest(f"Invalid input for {name}: {value} is not in {allowed.start}..{allowed.stop - 1}", field=name)
    return value


def _ip_version(query: Any) -> int | None:
    raw = query.get("ip_version")
    if raw is None or raw == "":
        return None
    if raw.strip() not in ("4", "6"):
        raise BadRequest(f"Invalid input for ip_version: '{raw[:16]}' is not 4 or 6", field="ip_version")
    return int(raw)


def routes(gw: Any) -> list[web.RouteDef]:
    explainer = Explainer(gw)

    async def explain(request: web.Request) -> web.Response:
        q = request.query
        source, destination = _required(q, "source"), _required(q, "destination")
        protocol = q.get("protocol") or "udp"
        if protocol not in _PROTOCOLS:
            raise BadRequest(
                f"Invalid input for protocol: '{protocol[:16]}' is not one of tcp, udp, icmp", field="protocol"
            )
        port = _int(q, "destination_port", range(1, 65536))
        version = _ip_version(q)
        kernel = as_bool("kernel", q["kernel"]) if q.get("kernel") else True
        answer = await explainer.explain(
            ctx_of(request),
            source=source,
            destination=destination,
            protocol=protocol,
            destination_port=port,
            ip_version=version,
            kernel=kernel,
        )
        return json_response({"reachability": answer})

    return [web.get(PATH, explain, allow_head=False)]


def openapi_paths(errors: dict[str, Any]) -> dict[str, Any]:
    """The route above in ``/openapi.json``; ``errors``: the document's error responses."""

    def param(name: str, required: bool = False, kind: str = "string") -> dict[str, Any]:
        return {"name": name, "in": "query", "required": required, "schema": {"type": kind}}

    schema = {"type": "object", "required": ["reachability"], "properties": {"reachability": {"type": "object"}}}
    return {
        PATH: {
            "get": {
                "operationId": "explain_reachability",
                "summary": "why a packet from source reaches destination, or not: verdict, NAT, hops, reasons, "
                "the deciding kernel rule with its counter, and fixes",
                "parameters": [
                    param("source", True),
                    param("destination", True),
                    param("protocol"),
                    param("destination_port", kind="integer"),
                    param("ip_version", kind="integer"),
                    param("kernel", kind="boolean"),
                ],
                "responses": {
                    "200": {"description": "the explanation", "content": {"application/json": {"schema": schema}}},
                    **errors,
                },
            }
        }
    }
