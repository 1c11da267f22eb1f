"""The API's only dependency: a NATS connection to send commands on.

The connection is made in the background and kept forever (nats-py reconnects by itself), so the
HTTP server is up even while NATS is not; until it is, and whenever it drops, every call fails at
once with 503 instead of waiting out a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import structlog
from nats.aio.client import Client as NATS
from pydantic import BaseModel, ValidationError

from scopenet.bus.client import BusClient, decode_error
from scopenet.bus.errors import ERROR_CODE_HEADER, from_validation
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import TransientError
from scopenet.contracts.subjects import ALL_ENDPOINTS, Endpoint

log = structlog.get_logger("api.gateway")


def endpoint(service: str, resource: str, verb: str) -> Endpoint:
    for ep in _endpoints():
        if ep.service == service and ep.resource == resource and ep.verb == verb:
            return ep
    raise KeyError(f"{service}.{resource}.{verb}")


def _endpoints() -> tuple[Endpoint, ...]:
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
            while True:
                try:
                    self.nc = await connect(url)
                    self.ready.set()
                    log.info("api_nats_connected")
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("api_nats_connect_failed", error=str(exc) or type(exc).__name__)
                    await asyncio.sleep(1.0)

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

    async def call(self, service: str, resource: str, verb: str, ctx: CallContext, **body: Any) -> Any:
        """Build the command from ``body`` (a 400 naming the field if it does not fit the contract),
        send it, return the reply as parsed JSON or raise the service's error.

        The reply is not re-validated into its pydantic model: the service built it from that model,
        its JSON is exactly ``model_dump(mode="json")``, and skipping a validate-then-dump round
        trip per item is most of the cost of listing a thousand ports.
        """
        ep = endpoint(service, resource, verb)
        try:
            command: BaseModel = ep.request.model_validate({"context": ctx, **body})
        except ValidationError as exc:
            raise from_validation(exc) from None
        if self.nc is None or not self.nc.is_connected:
            raise TransientError("The message bus is unavailable; try again shortly")
        payload = command.model_dump_json(exclude_unset=True).encode()
        data, headers = await BusClient(self.nc, timeout=self.timeout).call_raw(ep.subject, payload)
        if ERROR_CODE_HEADER in headers:
            raise decode_error(data, headers)
        return orjson.loads(data)
