"""The HTTP request's span: where a trace starts (or, given a W3C ``traceparent``, continues).

Outermost middleware, so the span covers authentication, policy and every NATS command the request
becomes (each a child CLIENT span, see ``scopenet.bus.client``). Named ``<METHOD> <route>`` with the
route's template (``POST /v2.0/subnets``, ``PUT /v2.0/routers/{id}/add_router_interface``), never the
raw path: span names are for grouping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from scopenet.runtime import tracing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_of(request: web.Request) -> str:
    """The matched route's template; the bare path for a path no route matches (it is a 404)."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def trace_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = route_of(request)
    with tracing.span(
        f"{request.method} {route}", context=tracing.parent_or_root(request.headers), kind=tracing.SpanKind.SERVER
    ) as span:
        if span.is_recording():
            span.set_attributes(
                {
                    "http.request.method": request.method,
                    "http.route": route,
                    "url.path": request.path,
                    "scopenet.service": "api",
                }
            )
        response = await handler(request)
        if span.is_recording():
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(tracing.StatusCode.ERROR)
        return response
