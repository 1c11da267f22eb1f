"""Error replies on the wire (ADR-32 headers plus Neutron's error body) and the 400 of a bad command.

Pins that a command that does not fit its model is refused with the field named the way Neutron
words it (unknown, missing, invalid; nested fields by their path), and that an error survives the
trip to the caller: numeric ``Nats-Service-Error-Code``, the same class, type, message and field on
the other side, a header that stays bounded, and a garbled body still giving the code and header text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from scopenet.bus.client import decode_error
from scopenet.bus.errors import ERROR_CODE_HEADER, ERROR_HEADER, from_validation, reply_for
from scopenet.contracts.base import Command, Contract
from scopenet.contracts.errors import Conflict, DomainError, NotFound, PreconditionFailed, TransientError


class Body(Contract):
    name: str
    size: int = 0


class Make(Command):
    thing: Body
    items: list[int] = []


def bad(data: dict[str, Any]) -> tuple[str | None, str]:
    with pytest.raises(ValidationError) as exc:
        Make.model_validate({"context": {"project_id": "p"}, **data})
    err = from_validation(exc.value)
    assert err.code == 400 and err.type == "HTTPBadRequest"
    return err.field, err.message


def test_unknown_fields_are_named_all_at_once() -> None:
    field, message = bad({"thing": {"name": "n", "colour": 1, "shape": 2}})
    assert field == "thing.colour" and message == "Unrecognized attribute(s) 'colour', 'shape'"


def test_missing_fields_are_named() -> None:
    assert bad({"thing": {}}) == ("thing.name", "Failed to parse request. Required attribute 'name' not specified")


def test_invalid_values_are_named_by_their_last_key_and_items_by_their_path() -> None:
    field, message = bad({"thing": {"name": "n", "size": "big"}})
    assert field == "thing.size" and message.startswith("Invalid input for size. Reason: ")
    field, message = bad({"thing": {"name": "n"}, "items": [1, "x"]})
    assert field == "items.1" and message.startswith("Invalid input for items.1. Reason: ")


@pytest.mark.parametrize(
    "exc",
    [
        NotFound("Network x could not be found.", type="NetworkNotFound", field="network_id"),
        Conflict("The subnet overlaps", type="SubnetAllocationError"),
        PreconditionFailed("Constrained to 3, but current revision is 4"),
        TransientError("database unavailable"),
    ],
)
def test_errors_survive_the_trip(exc: DomainError | TransientError) -> None:
    data, headers = reply_for(exc)
    assert headers[ERROR_CODE_HEADER] == str(exc.code) and headers[ERROR_HEADER] == exc.message
    assert json.loads(data)["type"] == "scopenet.v1.error"
    back = decode_error(data, headers)
    assert type(back) is type(exc)
    assert (back.code, back.type, back.message) == (exc.code, exc.type, exc.message)
    assert getattr(back, "field", None) == getattr(exc, "field", None)


@given(st.text(min_size=1, max_size=3000))
def test_the_header_is_bounded_the_body_is_whole(message: str) -> None:
    data, headers = reply_for(Conflict(message))
    assert headers[ERROR_HEADER] == message[:1024]
    assert decode_error(data, headers).message == message


def test_a_garbled_body_still_gives_code_and_text() -> None:
    back = decode_error(b"not json", {ERROR_CODE_HEADER: "409", ERROR_HEADER: "taken"})
    assert isinstance(back, Conflict) and (back.type, back.message) == ("Error", "taken")
    assert isinstance(decode_error(b"{}", {ERROR_CODE_HEADER: "503"}), TransientError)


def test_a_garbled_code_is_a_500_not_a_crash() -> None:
    back = decode_error(b"not json", {ERROR_CODE_HEADER: "teapot", ERROR_HEADER: "odd"})
    assert (back.code, back.message) == (500, "odd")
