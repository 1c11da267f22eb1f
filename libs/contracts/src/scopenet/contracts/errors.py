"""The two error roots every layer raises (kopf's PermanentError / TemporaryError).

``DomainError`` is permanent: the request was wrong or conflicts with state; retrying the same
request gives the same answer. It becomes an error reply with its numeric ``code`` (an HTTP
status, as Neutron maps it) and ``type`` (Neutron's exception class name, so the HTTP API can
render ``{"NeutronError": {"type": ...}}`` unchanged).

``TransientError`` means "try again later": the caller gets 503, an event is nak'ed with ``delay``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

ERROR_HEADER = "Nats-Service-Error"
"""ADR-32: the error reply's message."""
ERROR_CODE_HEADER = "Nats-Service-Error-Code"
"""ADR-32: the error reply's numeric code (an HTTP status, as Neutron maps it); its presence marks an error."""


class DomainError(Exception):
    """A permanent, client-visible failure."""

    code: int = 400
    type: str = "BadRequest"

    def __init__(self, message: str, *, type: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if type is not None:
            self.type = type
        self.field = field

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "type": self.type, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class BadRequest(DomainError):
    code = 400
    type = "BadRequest"


class InvalidInput(BadRequest):
    type = "InvalidInput"


class NotAuthorized(DomainError):
    code = 403
    type = "PolicyNotAuthorized"


class NotFound(DomainError):
    code = 404
    type = "NotFound"


class Conflict(DomainError):
    code = 409
    type = "Conflict"


class PreconditionFailed(DomainError):
    code = 412
    type = "RevisionNumberConstraintFailed"


class InternalError(DomainError):
    """Only for replies: an unexpected exception, with its details logged and never sent."""

    code = 500
    type = "InternalServerError"


class TransientError(Exception):
    """A temporary failure (NATS or Postgres unreachable, a lost race): retry after ``delay``."""

    code = 503
    type = "ServiceUnavailable"

    def __init__(self, message: str, *, delay: float = 1.0) -> None:
        super().__init__(message)
        self.message = message
        self.delay = delay

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "type": self.type, "message": self.message}


_BY_CODE: dict[int, type[DomainError]] = {
    400: BadRequest,
    403: NotAuthorized,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    500: InternalError,
}


def from_reply(code: int, type_: str, message: str, field: str | None = None) -> DomainError | TransientError:
    """Rebuild an error on the client side of a NATS request, keeping Neutron's type name."""
    if code == 503:
        return TransientError(message)
    cls = _BY_CODE.get(code, DomainError)
    err = cls(message, type=type_, field=field)
    err.code = code
    return err


def decode_error(data: bytes, headers: Mapping[str, str]) -> DomainError | TransientError:
    """The typed error an ADR-32 error reply carries: the code from ``ERROR_CODE_HEADER``, Neutron's
    type and the message from the body ``{"error": {...}}``. A reply that is not one of ours (a
    garbled code, a body that is not JSON) is still an error, with what can be read of it."""
    try:
        code = int(headers.get(ERROR_CODE_HEADER, "500") or 500)
    except ValueError:
        code = 500
    try:
        body = json.loads(data)["error"]
        return from_reply(code, str(body["type"]), str(body["message"]), body.get("field"))
    except (ValueError, KeyError, TypeError):
        return from_reply(code, "Error", headers.get(ERROR_HEADER, "error"))
