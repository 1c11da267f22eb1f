"""Equality filters on list commands (``{"field": value}`` or ``{"field": [v1, v2]}`` = any of),
and the per-request outcome of the ``*.allocate_many`` commands."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel

from scopenet.contracts.base import ErrorBody
from scopenet.contracts.errors import BadRequest, DomainError, TransientError

log = structlog.get_logger("ipam.listing")

T = TypeVar("T", bound=BaseModel)


def _norm(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v).lower() if isinstance(v, str) and v.lower() in ("true", "false") else str(v)


def apply_filters(items: Sequence[T], filters: dict[str, Any]) -> list[T]:
    if not items or not filters:
        return list(items)
    fields = type(items[0]).model_fields
    for key in filters:
        if key not in fields:
            raise BadRequest(f"['{key}'] is invalid attribute for filtering", field=key)
    out = []
    for item in items:
        ok = True
        for key, want in filters.items():
            wanted = want if isinstance(want, list) else [want]
            have = getattr(item, key)
            haves = have if isinstance(have, list) else [have]
            if not any(_norm(h) == _norm(w) for h in haves for w in wanted):
                ok = False
                break
        if ok:
            out.append(item)
    return out


def id_filter(filters: dict[str, Any], key: str, message: str) -> list[uuid.UUID] | None:
    """A filter on a uuid column pushed down to SQL: None when absent, else the ids (any of)."""
    value = filters.get(key)
    if value is None or value == "":
        return None
    try:
        return [uuid.UUID(str(v)) for v in (value if isinstance(value, list) else [value])]
    except ValueError:
        raise BadRequest(message, field="filters") from None


def error_body(exc: BaseException) -> ErrorBody:
    """What the single-request command would have answered, as one result of a batch."""
    if isinstance(exc, DomainError | TransientError):
        return ErrorBody(code=exc.code, type=exc.type, message=exc.message, field=getattr(exc, "field", None))
    if not isinstance(exc, Exception):
        raise exc  # cancellation: the service is stopping
    log.error("batch_request_failed", exc_info=exc)
    return ErrorBody(code=500, type="InternalServerError", message="internal error")
