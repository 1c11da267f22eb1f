"""Call commands over NATS: validate the reply against its contract, rebuild errors.

``call(endpoint, request)`` is typed by the endpoint: ``call(PORT.create, PortCreate(...))``
returns a ``PortReply``, and a request of another model is a type error.

Each call is a CLIENT span named by the endpoint's subject, and the request carries its W3C
``traceparent`` as a NATS header, so the serving side's span joins the caller's trace.
"""

from __future__ import annotations

from typing import TypeVar

from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError, NoRespondersError, TimeoutError
from pydantic import BaseModel

from scopenet.bus.errors import ERROR_CODE_HEADER, ERROR_HEADER
from scopenet.contracts.endpoint import Endpoint
from scopenet.contracts.errors import TransientError
from scopenet.contracts.errors import decode_error as decode_error  # the bus's callers decode with it
from scopenet.runtime import tracing

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)


class BusClient:
    def __init__(self, nc: NATS, *, timeout: float) -> None:
        self.nc = nc
        self.timeout = timeout

    async def call_raw(self, subject: str, payload: bytes, *, name: str | None = None) -> tuple[bytes, dict[str, str]]:
        """Send ``payload`` on ``subject``; the reply's data and headers. ``name``: the span's name
        (the endpoint's subject, not a per-sender one: span names are for grouping)."""
        with tracing.span(name or subject, kind=tracing.SpanKind.CLIENT) as span:
            if span.is_recording():
                span.set_attributes({"messaging.system": "nats", "messaging.destination.name": subject})
            data, headers = await self._request(subject, payload)
            if ERROR_CODE_HEADER in headers and span.is_recording():
                span.set_attribute("scopenet.reply.code", headers[ERROR_CODE_HEADER])
                span.set_status(tracing.StatusCode.ERROR, headers.get(ERROR_HEADER))
            return data, headers

    async def _request(self, subject: str, payload: bytes) -> tuple[bytes, dict[str, str]]:
        if not self.nc.is_connected:
            # While nats-py reconnects it buffers what is published and sends it on reconnection: a
            # request would wait out its timeout, then be delivered anyway, after its caller gave up
            # (an allocation nobody waits for). Refuse at once instead; the caller retries or says 503.
            raise TransientError(f"NATS is not connected: {subject} not sent")
        try:
            msg = await self.nc.request(subject, payload, timeout=self.timeout, headers=tracing.inject() or None)
        except NoRespondersError:
            raise TransientError(f"no service answers {subject}") from None
        except TimeoutError:
            raise TransientError(f"{subject} did not answer within {self.timeout}s") from None
        except ConnectionClosedError:
            raise TransientError("NATS connection closed") from None
        return msg.data, dict(msg.headers or {})

    async def call(self, endpoint: Endpoint[Req, Rep], request: Req) -> Rep:
        """Send ``request`` on ``endpoint``'s subject; its reply as the endpoint's reply model, or the
        service's error raised (``DomainError``, ``TransientError``)."""
        # exclude_unset: "absent" and "null" mean different things (e.g. gateway_ip), keep the difference
        subject = endpoint.subject_for(request)  # a per-sender command goes to its sender's own subject
        data, headers = await self.call_raw(
            subject, request.model_dump_json(exclude_unset=True).encode(), name=endpoint.subject
        )
        if ERROR_CODE_HEADER in headers:
            raise decode_error(data, headers)
        return endpoint.reply.model_validate_json(data)
