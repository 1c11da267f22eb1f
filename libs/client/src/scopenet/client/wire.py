"""The client's wire rules, pure: a command's request from its fields, a reply or its typed error.

Error replies follow ADR-32 as every scopenet service sends them: the ``Nats-Service-Error-Code``
header holds the numeric code (an HTTP status, as Neutron maps it), the body
``{"error": {"code", "type", "message", "field"}}`` holds Neutron's exception name in ``type``.
They come back as the contracts' exceptions (``NotFound``, ``Conflict``, ..., ``TransientError``
for 503), so a caller catches the same classes the services raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scopenet.contracts.base import CallContext
from scopenet.contracts.consistency import moves_scope
from scopenet.contracts.endpoint import Endpoint
from scopenet.contracts.errors import ERROR_CODE_HEADER as ERROR_CODE_HEADER
from scopenet.contracts.errors import ERROR_HEADER as ERROR_HEADER
from scopenet.contracts.errors import InvalidInput, decode_error
from scopenet.contracts.ipam import SubnetPoolUpdate

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)


def request_for(
    endpoint: Endpoint[Req, Any], context: CallContext, request: Req | None, fields: Mapping[str, Any]
) -> Req:
    """``request`` as given, or the endpoint's request model built from ``fields`` (the caller's
    ``context`` unless the fields name one); a request the contract refuses never leaves."""
    if request is not None:
        if fields:
            raise TypeError(f"{endpoint.subject}: pass a request model or its fields, not both")
        if not isinstance(request, endpoint.request):
            raise TypeError(f"{endpoint.subject} takes a {endpoint.request.__name__}, not a {type(request).__name__}")
        return request
    try:
        return endpoint.request.model_validate({"context": context, **fields})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(f"{endpoint.subject}: {where}: {first['msg']}", field=where) from None


def moves_pool(request: BaseModel) -> bool:
    """A subnet pool update that names ``address_scope_id``: topology's networks follow it."""
    body = getattr(request, "subnetpool", None)
    return isinstance(request, SubnetPoolUpdate) and body is not None and moves_scope(body.model_fields_set)


def encode(request: BaseModel) -> bytes:
    # Only what was set: "absent" and "null" differ for some fields (a subnet's gateway_ip).
    return request.model_dump_json(exclude_unset=True).encode()


def reply_for(endpoint: Endpoint[Any, Rep], data: bytes, headers: Mapping[str, str]) -> Rep:
    """The endpoint's reply model, or its error raised."""
    if ERROR_CODE_HEADER in headers:
        raise decode_error(data, headers)
    return endpoint.reply.model_validate_json(data)
