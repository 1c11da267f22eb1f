"""Attribute converters: what a client may send for each attribute type, and the 400 it gets otherwise.

Pins neutron-lib's conversions (``"6"`` is 6, ``"True"`` is true, a UUID comes back in canonical
form), the bounds, and that every refusal is ``Invalid input for <attribute>. Reason: ...`` with the
attribute named in the error's ``field``; also that the JSON Schema attached to each converter (the
OpenAPI document's source) says what the converter does.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts.errors import BadRequest
from scopenet.services.api.attrs import (
    as_bool,
    as_dict,
    as_int,
    as_ip_version,
    as_list,
    as_string,
    as_uuid,
    schema_of,
)


def refused(convert: Any, value: Any, name: str = "attr") -> BadRequest:
    with pytest.raises(BadRequest) as exc:
        convert(name, value)
    assert exc.value.field == name and exc.value.code == 400
    assert exc.value.message.startswith(f"Invalid input for {name}. Reason: ")
    return exc.value


@given(st.integers(min_value=-(10**18) + 1, max_value=10**18 - 1), st.integers(0, 100), st.integers(0, 100))
def test_int_accepts_numbers_and_their_text_within_bounds(value: int, low: int, span: int) -> None:
    convert = as_int(minimum=low, maximum=low + span)
    if low <= value <= low + span:
        assert convert("n", value) == convert("n", str(value)) == convert("n", f" {value} ") == value
        assert convert("n", float(value)) == value
    else:
        message = refused(convert, value, "n").message
        assert ("greater than or equal" if value < low else "less than or equal") in message


@pytest.mark.parametrize("value", [True, False, "1.5", 1.5, "", "0x10", "1e3", None, [], {}, "\u0661"])
def test_int_refuses_what_is_not_an_integer(value: Any) -> None:
    assert "is not an integer" in refused(as_int(minimum=None), value).message


def test_nullable_int_takes_null() -> None:
    assert as_int(nullable=True)("q", None) is None
    refused(as_int(), None, "q")


@given(st.sampled_from(["true", "True", "TRUE", " true ", "1", 1, True]))
def test_bool_true(value: Any) -> None:
    assert as_bool("b", value) is True


@given(st.sampled_from(["false", "False", "0", 0, False]))
def test_bool_false(value: Any) -> None:
    assert as_bool("b", value) is False


@pytest.mark.parametrize("value", ["yes", "", 2, -1, None, 1.0, [True]])
def test_bool_refuses_anything_else(value: Any) -> None:
    assert "cannot be converted to boolean" in refused(as_bool, value, "shared").message


@given(st.uuids())
def test_uuid_comes_back_canonical(value: uuid.UUID) -> None:
    assert as_uuid()("id", str(value).upper()) == str(value)
    assert as_uuid()("id", value.hex) == str(value)


@pytest.mark.parametrize("value", ["nope", "", 12, None, "5f0c2a64-3b1e-4d59-9a3e"])
def test_uuid_refuses_anything_else(value: Any) -> None:
    assert "is not a valid UUID" in refused(as_uuid(), value, "network_id").message
    assert as_uuid(nullable=True)("network_id", None) is None


@given(st.text(max_size=20).filter(lambda t: "\x00" not in t), st.integers(0, 20))
def test_string_length(value: str, limit: int) -> None:
    convert = as_string(limit)
    if len(value) <= limit:
        assert convert("name", value) == value
    else:
        assert f"exceeds maximum length of {limit}" in refused(convert, value, "name").message


@pytest.mark.parametrize("value", ["a\x00b", 5, None, ["x"]])
def test_string_refuses_nul_and_non_strings(value: Any) -> None:
    refused(as_string(255), value, "name")


def test_long_values_are_shortened_in_the_message() -> None:
    message = refused(as_string(10), "z" * 5000, "name").message
    assert len(message) < 200 and "..." in message


@pytest.mark.parametrize(("value", "ok"), [(4, True), (6, True), ("6", True), (5, False), ("v4", False)])
def test_ip_version(value: Any, ok: bool) -> None:
    if ok:
        assert as_ip_version("ip_version", value) == int(value)
    else:
        refused(as_ip_version, value, "ip_version")


@given(st.lists(st.integers(0, 5), max_size=8))
def test_unique_lists_name_the_duplicate(values: list[int]) -> None:
    convert = as_list(as_int(), unique=True)
    if len(set(values)) == len(values):
        assert convert("prefixes", [str(v) for v in values]) == values
    else:
        assert "Duplicate items" in refused(convert, values, "prefixes").message


def test_list_bounds_and_items() -> None:
    convert = as_list(as_string(3), max_items=2)
    assert "more than 2 items" in refused(convert, ["a", "b", "c"], "tags").message
    assert "exceeds maximum length" in refused(convert, ["abcd"], "tags").message
    assert "is not a list" in refused(convert, "a,b", "tags").message


def test_dicts() -> None:
    assert as_dict()("external_gateway_info", {"network_id": "x"}) == {"network_id": "x"}
    assert as_dict(nullable=True)("external_gateway_info", None) is None
    refused(as_dict(), [], "external_gateway_info")


def test_schemas_say_what_the_converters_do() -> None:
    assert schema_of(as_int(minimum=1, maximum=9)) == {"type": "integer", "minimum": 1, "maximum": 9}
    assert schema_of(as_string(64, nullable=True)) == {"anyOf": [{"type": "string", "maxLength": 64}, {"type": "null"}]}
    assert schema_of(as_bool) == {"type": "boolean"}
    assert schema_of(as_ip_version) == {"type": "integer", "enum": [4, 6]}
    assert schema_of(as_list(as_uuid(), unique=True, max_items=5)) == {
        "type": "array",
        "maxItems": 5,
        "items": {"type": "string", "format": "uuid"},
        "uniqueItems": True,
    }
