"""The API's only dependency: a NATS connection to send commands on.

The connection is made in the background and kept forever (nats-py reconnects by itself), so the
HTTP server is up even while NATS is not; until it is, and whenever it drops, every call fails at
once with 503 instead of waiting out a timeout.

Calls are typed by their endpoint (``scopenet.contracts.*_endpoints``): ``call(PORT.get, ctx, id=...)``
returns a ``PortReply``. ``call_json`` returns the same reply as parsed JSON, not re-validated: the
API renders most replies straight back to its client, the service built them from that model
already, and a validate-then-dump round trip per item is most of the cost of listing a thousand ports.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, TypeVar

import orjson
import structlog
from nats.aio.client import Client as NATS
from pydantic import BaseModel, ValidationError

from scopenet.bus.client import BusClient, decode_error
from scopenet.bus.errors import ERROR_CODE_HEADER, from_validation
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import TransientError
from scopenet.contracts.subjects import ALL_ENDPOINTS, Endpoint
from scopenet.runtime.supervise import retry

log = structlog.get_logger("api.gateway")


Rep = TypeVar("Rep", bound=BaseModel)


def _endpoints() -> tuple[Endpoint[Any, Any], ...]:
    return ALL_ENDPOINTS


def has_service(service: str) -> bool:
    return any(ep.service == service for ep in _endpoints())


class Gateway:
    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self.nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once the first connection is up."""

    def start(self, url: str, connect: Any) -> None:
        """``connect(url)`` is awaited in the background until it succeeds."""

        async def run() -> None:
            self.nc = await retry(lambda: connect(url), log=log, event="api_nats_connect_failed", delay=1.0)
            self.ready.set()
            log.info("api_nats_connected")

        self._task = asyncio.create_task(run(), name="api-nats-connect")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    @property
    def connected(self) -> bool:
        return self.nc is not None and bool(self.nc.is_connected)

    async def call(self, endpoint: Endpoint[Any, Rep], ctx: CallContext, **body: Any) -> Rep:
        """Build the command from ``body`` (a 400 naming the field if it does not fit the contract),
        send it, return the reply as the endpoint's reply model or raise the service's error."""
        return endpoint.reply.model_validate_json(await self._send(endpoint, ctx, body))

    async def call_json(self, endpoint: Endpoint[Any, Any], ctx: CallContext, **body: Any) -> dict[str, Any]:
        """As ``call``, the reply as parsed JSON (exactly the model's ``model_dump(mode="json")``)."""
        reply: dict[str, Any] = orjson.loads(await self._send(endpoint, ctx, body))
        return reply

    async def _send(self, endpoint: Endpoint[Any, Any], ctx: CallContext, body: dict[str, Any]) -> bytes:
        try:
            command: BaseModel = endpoint.request.model_validate({"context": ctx, **body})
        except ValidationError as exc:
            raise from_validation(exc) from None
        if self.nc is None or not self.nc.is_connected:
            raise TransientError("The message bus is unavailable; try again shortly")
        payload = command.model_dump_json(exclude_unset=True).encode()
        data, headers = await BusClient(self.nc, timeout=self.timeout).call_raw(endpoint.subject, payload)
        if ERROR_CODE_HEADER in headers:
            raise decode_error(data, headers)
        return data
