"""Neutron's error bodies, and the middleware that guarantees every failure gets one.

Every error leaves as ``{"NeutronError": {"type", "message", "detail"}}`` with Neutron's status
code. Domain errors from the services keep the type and message they were raised with (the
services already speak Neutron's words); transport failures become 503 ``ServiceUnavailable``.
Anything else is a bug of ours: it is logged with its traceback and answered 500 without details.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import Counter, Histogram

from scopenet.contracts.errors import DomainError, TransientError
from scopenet.services.api.auth import REQUEST_ID

log = structlog.get_logger("api")

HTTP_REQUESTS = Counter("scopenet_api_requests_total", "HTTP API requests", ["method", "code"])
HTTP_LATENCY = Histogram(
    "scopenet_api_request_duration_seconds",
    "HTTP API request handling time",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

#: aiohttp's own HTTP errors (routing, body size) under Neutron's type names.
_HTTP_TYPES = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    413: "HTTPRequestEntityTooLarge",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, type_: str, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    body = {"NeutronError": {"type": type_, "message": message, "detail": ""}}
    return web.json_response(body, status=status, headers=headers)


def from_exception(exc: BaseException) -> web.Response:
    if isinstance(exc, DomainError):
        status = exc.code if 400 <= exc.code < 600 else 500
        return error_response(status, exc.type, exc.message)
    if isinstance(exc, TransientError):
        return error_response(503, "ServiceUnavailable", exc.message, headers={"Retry-After": "1"})
    raise exc


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost layer: map every exception to a Neutron error body and count the request."""
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await handler(request)
        except (DomainError, TransientError) as exc:
            response = from_exception(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            text = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
            response = error_response(exc.status, _HTTP_TYPES.get(exc.status, "HTTPError"), text or exc.reason)
            if exc.status == 405:
                response.headers["Allow"] = exc.headers.get("Allow", "")
        except Exception:
            log.exception("api_request_failed", method=request.method, path=request.path)
            response = error_response(500, "HTTPInternalServerError", "Request Failed: internal server error")
        status = response.status
        rid = request.get(REQUEST_ID)
        if rid:
            response.headers["X-Openstack-Request-Id"] = rid
        return response
    finally:
        HTTP_REQUESTS.labels(request.method, str(status)).inc()
        HTTP_LATENCY.labels(request.method).observe(time.perf_counter() - started)
