"""The per-request outcome of the ``*.allocate_many`` commands."""

from __future__ import annotations

import structlog

from scopenet.contracts.base import ErrorBody
from scopenet.contracts.errors import DomainError, TransientError

log = structlog.get_logger("ipam.outcomes")


def error_body(exc: BaseException) -> ErrorBody:
    """What the single-request command would have answered, as one result of a batch."""
    if isinstance(exc, DomainError | TransientError):
        return ErrorBody(code=exc.code, type=exc.type, message=exc.message, field=getattr(exc, "field", None))
    if not isinstance(exc, Exception):
        raise exc  # cancellation: the service is stopping
    log.error("batch_request_failed", exc_info=exc)
    return ErrorBody(code=500, type="InternalServerError", message="internal error")
