"""Call commands over NATS: validate the reply against its contract, rebuild errors.

``call(endpoint, request)`` is typed by the endpoint: ``call(PORT.create, PortCreate(...))``
returns a ``PortReply``, and a request of another model is a type error.
"""

from __future__ import annotations

import json
from typing import TypeVar

from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError, NoRespondersError, TimeoutError
from pydantic import BaseModel

from scopenet.bus.errors import ERROR_CODE_HEADER, ERROR_HEADER
from scopenet.contracts.endpoint import Endpoint
from scopenet.contracts.errors import DomainError, TransientError, from_reply

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)


class BusClient:
    def __init__(self, nc: NATS, *, timeout: float) -> None:
        self.nc = nc
        self.timeout = timeout

    async def call_raw(self, subject: str, payload: bytes) -> tuple[bytes, dict[str, str]]:
        if not self.nc.is_connected:
            # While nats-py reconnects it buffers what is published and sends it on reconnection: a
            # request would wait out its timeout, then be delivered anyway, after its caller gave up
            # (an allocation nobody waits for). Refuse at once instead; the caller retries or says 503.
            raise TransientError(f"NATS is not connected: {subject} not sent")
        try:
            msg = await self.nc.request(subject, payload, timeout=self.timeout)
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
        data, headers = await self.call_raw(subject, request.model_dump_json(exclude_unset=True).encode())
        if ERROR_CODE_HEADER in headers:
            raise decode_error(data, headers)
        return endpoint.reply.model_validate_json(data)


def decode_error(data: bytes, headers: dict[str, str]) -> DomainError | TransientError:
    code = int(headers.get(ERROR_CODE_HEADER, "500") or 500)
    try:
        body = json.loads(data)["error"]
        return from_reply(code, body["type"], body["message"], body.get("field"))
    except (ValueError, KeyError, TypeError):
        return from_reply(code, "Error", headers.get(ERROR_HEADER, "error"))
