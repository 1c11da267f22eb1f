"""Neutron's attribute map, the part the HTTP layer owns: which attributes exist, which may be
sent on POST and PUT, which are required, which filter and sort, and how client values convert.

Converters take the attribute name and the client's value and return the converted value or raise
a 400 that names the attribute ("Invalid input for X. Reason: ..."), the way neutron-lib's
``convert_to_*`` and ``validate_*`` do. Deeper rules (CIDR syntax, name patterns, ownership) are the
services'; they answer with errors that name the field too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scopenet.contracts.errors import BadRequest

Converter = Callable[[str, Any], Any]
_INT = re.compile(r"[+-]?[0-9]{1,18}")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def invalid(name: str, reason: str) -> BadRequest:
    return BadRequest(f"Invalid input for {name}. Reason: {reason}.", type="HTTPBadRequest", field=name)


def with_schema(convert: Converter, schema: dict[str, Any]) -> Converter:
    """Attach the JSON Schema of what ``convert`` accepts (the OpenAPI document reads it)."""
    convert.schema = schema  # type: ignore[attr-defined]
    return convert


def schema_of(convert: Converter) -> dict[str, Any]:
    return dict(getattr(convert, "schema", {}))


def _nullable(schema: dict[str, Any], nullable: bool) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]} if nullable else schema


def as_any(name: str, value: Any) -> Any:
    return value


def as_string(max_len: int | None = 255, *, nullable: bool = False) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise invalid(name, f"'{_short(value)}' is not a valid string")
        if max_len is not None and len(value) > max_len:
            raise invalid(name, f"'{_short(value)}' exceeds maximum length of {max_len}")
        if "\x00" in value:
            raise invalid(name, "the string contains a NUL character")
        return value

    schema: dict[str, Any] = {"type": "string"} if max_len is None else {"type": "string", "maxLength": max_len}
    return with_schema(convert, _nullable(schema, nullable))


def as_uuid(*, nullable: bool = False) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise invalid(name, f"'{_short(value)}' is not a valid UUID")
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise invalid(name, f"'{_short(value)}' is not a valid UUID") from None

    return with_schema(convert, _nullable({"type": "string", "format": "uuid"}, nullable))


def as_bool(name: str, value: Any) -> bool:
    """neutron-lib ``convert_to_boolean``: bools, 0/1 and the strings true/false/1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    raise invalid(name, f"'{_short(value)}' cannot be converted to boolean")


with_schema(as_bool, {"type": "boolean"})


def as_int(*, minimum: int | None = 0, maximum: int | None = None, nullable: bool = False) -> Converter:
    """neutron-lib ``convert_to_int`` (accepts "6"), then the bounds."""

    def convert(name: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, bool):
            raise invalid(name, f"'{_short(value)}' is not an integer")
        if isinstance(value, int):
            out = value
        elif isinstance(value, str) and _INT.fullmatch(value.strip()):
            out = int(value)
        elif isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            out = int(value)
        else:
            raise invalid(name, f"'{_short(value)}' is not an integer")
        if minimum is not None and out < minimum:
            raise invalid(name, f"'{out}' should be greater than or equal to {minimum}")
        if maximum is not None and out > maximum:
            raise invalid(name, f"'{out}' should be less than or equal to {maximum}")
        return out

    schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return with_schema(convert, _nullable(schema, nullable))


def as_ip_version(name: str, value: Any) -> int:
    out = as_int(minimum=None)(name, value)
    if out not in (4, 6):
        raise invalid(name, f"{out} is not in [4, 6]")
    return int(out)


with_schema(as_ip_version, {"type": "integer", "enum": [4, 6]})


def as_list(item: Converter | None = None, *, unique: bool = False, max_items: int = 10_000) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if not isinstance(value, list):
            raise invalid(name, f"'{_short(value)}' is not a list")
        if len(value) > max_items:
            raise invalid(name, f"more than {max_items} items")
        out = [item(name, v) for v in value] if item else list(value)
        if unique:
            seen: set[str] = set()
            for v in out:
                key = repr(v)
                if key in seen:
                    raise invalid(name, f"Duplicate items in the list: '{_short(v)}'")
                seen.add(key)
        return out

    schema: dict[str, Any] = {"type": "array", "maxItems": max_items}
    if item is not None and schema_of(item):
        schema["items"] = schema_of(item)
    if unique:
        schema["uniqueItems"] = True
    return with_schema(convert, schema)


def as_dict(*, nullable: bool = False) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, dict):
            raise invalid(name, f"'{_short(value)}' is not a dictionary")
        return value

    return with_schema(convert, _nullable({"type": "object"}, nullable))


def as_list_of_dicts(*, max_items: int = 1000) -> Converter:
    return as_list(as_dict(), max_items=max_items)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 64 else text[:61] + "..."


@dataclass(frozen=True)
class Attr:
    """One attribute of a resource, as Neutron's RESOURCE_ATTRIBUTE_MAP describes it."""

    name: str
    convert: Converter = as_any
    post: bool = True
    """May be given on POST (else 400 "Attribute 'x' not allowed in POST")."""
    put: bool = False
    """May be given on PUT (else 400 "Cannot update read-only attribute x")."""
    required: bool = False
    filter: bool = True
    sort: bool = True
    default: Any = MISSING
    """The value Neutron assumes when the attribute is absent (used by admin-only checks)."""
    admin_post: bool = False
    """Only admin may give a value other than ``default`` on POST (403)."""
    admin_put: bool = False
    """Only admin may give this attribute at all on PUT (403)."""
    filter_convert: bool = True
    """Convert filter values with ``convert`` (ints, bools); else compare as strings."""


def ro(name: str, convert: Converter = as_any, **kw: Any) -> Attr:
    """A read-only attribute (server computed)."""
    return Attr(name, convert, post=False, put=False, **kw)


def project_attrs() -> tuple[Attr, ...]:
    s = as_string(255)
    return (Attr("project_id", s), Attr("tenant_id", s))


def standard_attrs(*, tags_on_post: bool = False) -> tuple[Attr, ...]:
    """description, tags, timestamps and revision (docs/neutron.md#standard-attributes)."""
    return (
        Attr("description", as_string(255), put=True, sort=False),
        Attr("tags", as_list(as_string(255), max_items=50), post=tags_on_post, sort=False, filter=False),
        ro("created_at", sort=False),
        ro("updated_at", sort=False),
        ro("revision_number", as_int(), sort=False),
    )
