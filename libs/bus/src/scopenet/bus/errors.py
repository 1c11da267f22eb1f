"""Error replies on the wire: ADR-32 headers plus a JSON body with Neutron's error type."""

from __future__ import annotations

from pydantic import ValidationError

from scopenet.contracts.base import ErrorBody, ErrorReply
from scopenet.contracts.errors import ERROR_CODE_HEADER as ERROR_CODE_HEADER
from scopenet.contracts.errors import ERROR_HEADER as ERROR_HEADER
from scopenet.contracts.errors import BadRequest, DomainError, TransientError


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def from_validation(exc: ValidationError) -> BadRequest:
    """A 400 that names the offending field(s), in Neutron's words where it has them."""
    errors = exc.errors(include_url=False)
    unknown = [_loc(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        names = ", ".join(f"'{u.rsplit('.', 1)[-1]}'" for u in unknown)
        return BadRequest(f"Unrecognized attribute(s) {names}", type="HTTPBadRequest", field=unknown[0])
    missing = [_loc(e["loc"]) for e in errors if e["type"] == "missing"]
    if missing:
        return BadRequest(
            f"Failed to parse request. Required attribute '{missing[0].rsplit('.', 1)[-1]}' not specified",
            type="HTTPBadRequest",
            field=missing[0],
        )
    first = errors[0]
    field = _loc(first["loc"])
    name = field.rsplit(".", 1)[-1] if not field.split(".")[-1].isdigit() else field
    return BadRequest(f"Invalid input for {name}. Reason: {first['msg']}.", type="HTTPBadRequest", field=field)


def reply_for(exc: DomainError | TransientError) -> tuple[bytes, dict[str, str]]:
    body = ErrorBody(code=exc.code, type=exc.type, message=exc.message, field=getattr(exc, "field", None))
    headers = {ERROR_CODE_HEADER: str(exc.code), ERROR_HEADER: exc.message[:1024]}
    return ErrorReply(error=body).model_dump_json(exclude_none=True).encode(), headers
