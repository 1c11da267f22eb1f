"""Serve commands through the NATS service API (``nats.micro``, ADR-32), with two fixes.

Concurrency model: nats-py runs a subscription's callbacks one at a time, so an endpoint handler
that awaits the database would serialise every request. Our callback only acquires a slot of a
per-service ``asyncio.Semaphore`` and starts a task; when all slots are busy the callback waits,
which stops reading from that subscription: back-pressure, not an unbounded task pile.

Errors: ``DomainError`` → its numeric code and message; ``TransientError`` → 503; anything else
→ 500 "internal error" with the traceback logged and never sent (nats.micro would send
``repr(exc)``). A per-sender command (``Endpoint.sender``) whose body names another sender than
its subject does is refused (403) before its handler runs.

Traces: each request is a SERVER span named by the endpoint's subject, a child of the caller's span
when the request carries a W3C ``traceparent`` header (``scopenet.bus.client`` sends one), else the
root of a new trace; a 5xx reply marks it an error. A reply larger than the server's max
payload cannot be sent at all: the caller gets a 400 ``ReplyTooLarge`` that says so (and how to
ask for less) instead.

Routes: ``Route.bind(PORT.create, ports.create)`` ties a handler to an endpoint, and the type
checker refuses a handler whose argument is not the endpoint's request model or whose result is not
its reply model. ``bound_once`` checks at startup that a service binds each of its endpoints once.

Stats: ``$SRV.STATS`` counts each request when its reply is sent, with the time its task took and
every error reply as an error (``scopenet.bus.stats``), not the microseconds our callback takes.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from nats.aio.client import Client as NATS
from nats.micro.request import Request
from nats.micro.service import Service
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError

from scopenet.bus.errors import from_validation, reply_for
from scopenet.bus.stats import Tally, TallyService, start_service
from scopenet.contracts.endpoint import Endpoint, Rendered
from scopenet.contracts.errors import BadRequest, DomainError, InternalError, TransientError
from scopenet.runtime import tracing

Handler = Callable[[Any], Awaitable[BaseModel | Rendered[Any]]]
Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)

REQUESTS = Counter("scopenet_requests_total", "Commands handled", ["service", "endpoint", "code"])
LATENCY = Histogram(
    "scopenet_request_duration_seconds",
    "Command handling time",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


@dataclass(frozen=True)
class Route:
    """An endpoint and the handler that serves it; build one with ``Route.bind`` (typed)."""

    endpoint: Endpoint[Any, Any]
    handler: Handler

    @classmethod
    def bind(cls, endpoint: Endpoint[Req, Rep], handler: Callable[[Req], Awaitable[Rep | Rendered[Rep]]]) -> Route:
        """``handler`` serves ``endpoint``: it takes the endpoint's request model, returns its reply
        model (or that reply already serialised, ``Rendered``)."""
        return cls(endpoint, handler)


def bound_once(routes: Sequence[Route], endpoints: Sequence[Endpoint[Any, Any]]) -> list[Route]:
    """``routes``, if they bind each of ``endpoints`` exactly once and nothing else; else ValueError
    (at startup: a command nobody serves would otherwise only show as "no responders" at first use)."""
    bound = collections.Counter(route.endpoint.subject for route in routes)
    wanted = {ep.subject for ep in endpoints}
    problems = [
        *(f"{s} is not bound" for s in sorted(wanted - set(bound))),
        *(f"{s} is bound {n} times" for s, n in sorted(bound.items()) if n > 1),
        *(f"{s} is not an endpoint of this service" for s in sorted(set(bound) - wanted)),
    ]
    if problems:
        raise ValueError("; ".join(problems))
    return list(routes)


class CommandServer:
    """A running nats.micro service whose endpoints run handlers concurrently, bounded."""

    def __init__(self, service: Service, *, name: str, limit: int, nc: NATS | None = None) -> None:
        self.service = service
        self.tallies: dict[str, Tally] = service.tallies if isinstance(service, TallyService) else {}
        """What ``$SRV.STATS`` reports per endpoint (``scopenet.bus.stats``)."""
        self.name = name
        self._nc = nc
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = structlog.get_logger("bus.micro").bind(service=name)

    def callback(self, route: Route) -> Callable[[Request], Awaitable[None]]:
        async def on_request(request: Request) -> None:
            await self._slots.acquire()
            task = asyncio.create_task(self._traced(route, request))
            self._tasks.add(task)
            task.add_done_callback(self._done)

        return on_request

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _traced(self, route: Route, request: Request) -> None:
        with tracing.span(
            route.endpoint.subject, context=tracing.parent_or_root(request.headers), kind=tracing.SpanKind.SERVER
        ) as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        "messaging.system": "nats",
                        "messaging.destination.name": request.subject,
                        "scopenet.service": self.name,
                    }
                )
            await self._handle(route, request)

    async def _handle(self, route: Route, request: Request) -> None:
        started = time.perf_counter()
        tally = self.tallies.setdefault(route.endpoint.name, Tally())
        code = 200
        try:
            try:
                command = route.endpoint.request.model_validate_json(request.data)
                route.endpoint.check_sender(request.subject, command)  # before the handler: nothing written
                result = await route.handler(command)
            except ValidationError as exc:
                raise from_validation(exc) from None
            payload = result.json if isinstance(result, Rendered) else result.model_dump_json().encode()
            if self._nc is not None and len(payload) > self._nc.max_payload:
                raise BadRequest(
                    f"The reply ({len(payload)} bytes) exceeds the NATS max payload ({self._nc.max_payload} "
                    "bytes): narrow the request with filters, or read the list in pages (limit and marker) "
                    "where the command offers them.",
                    type="ReplyTooLarge",
                )
            await request.respond(payload)
        except (DomainError, TransientError) as exc:
            code = exc.code
            await self._respond_error(request, exc, tally)
        except asyncio.CancelledError:
            code = 503
            await self._respond_error(request, TransientError("service is shutting down"), tally)
            raise
        except Exception:
            code = 500
            self._log.exception("handler_failed", subject=route.endpoint.subject)
            await self._respond_error(request, InternalError("internal error"), tally)
        finally:
            _trace_outcome(code)
            REQUESTS.labels(self.name, route.endpoint.name, str(code)).inc()
            LATENCY.labels(self.name).observe(time.perf_counter() - started)
            tally.replied(int((time.perf_counter() - started) * 1e9))

    async def _respond_error(self, request: Request, exc: DomainError | TransientError, tally: Tally) -> None:
        body, headers = reply_for(exc)
        tally.failed(exc.code, exc.message)  # an error reply is an error in $SRV.STATS, 4xx included
        try:
            await request.respond(body, headers=headers)
        except Exception:  # the caller's connection may be gone; nothing else to tell
            self._log.warning("error_reply_failed", code=exc.code)

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop taking requests, then let the ones in flight finish (up to ``grace`` seconds)."""
        await self.service.stop()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()


def _trace_outcome(code: int) -> None:
    """The reply's code on the request's span; a server fault (5xx) makes it an error span."""
    span = tracing.current_span()
    if span.is_recording():
        span.set_attribute("scopenet.reply.code", code)
        if code >= 500:
            span.set_status(tracing.StatusCode.ERROR)


async def serve(
    nc: NATS,
    *,
    name: str,
    version: str,
    description: str,
    routes: Sequence[Route],
    limit: int,
) -> CommandServer:
    service = await start_service(nc, name=name, version=version, description=description)
    server = CommandServer(service, name=name, limit=limit, nc=nc)
    for route in routes:
        ep = route.endpoint
        await service.add_endpoint(
            name=ep.name,
            subject=ep.pattern,  # a per-sender command: every sender's subject, one queue group
            handler=server.callback(route),
            metadata={
                "request_schema": f"proto/schemas/{ep.service}/{ep.resource}.{ep.verb}.request.json",
                "reply_schema": f"proto/schemas/{ep.service}/{ep.resource}.{ep.verb}.reply.json",
            },
        )
    return server
