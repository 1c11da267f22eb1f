"""What the ``filters`` of a list command mean, for every service that answers one.

A filter is ``{"field": value}`` or ``{"field": [v1, v2]}`` (any of); an item matches when every
filter matches, and a list-valued field matches when any of its values does. Values compare as
text, booleans case-insensitively (``True`` = ``"true"``), so a value from a query string and one
from JSON mean the same. Keys are the wire names of the reply model's fields (an alias as well as
the field name). A key that is not a field — or one the service declares not filterable — is
refused like Neutron does (400 "... is invalid attribute for filtering").

A service adds matchers of its own for fields that need another rule (topology matches
``fixed_ips`` against objects such as ``{"subnet_id": ...}``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from scopenet.contracts.errors import BadRequest

T = TypeVar("T", bound=BaseModel)

Matcher = Callable[[list[Any], list[Any]], bool]
"""``matcher(haves, wanted)``: does an item whose field holds ``haves`` match any of ``wanted``?"""


def norm(v: Any) -> str:
    """A value as the text filters compare."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, dict):
        return str(sorted((k, norm(x)) for k, x in v.items()))
    s = str(v)
    return s.lower() if s.lower() in ("true", "false") else s


def field_names(model: type[BaseModel]) -> dict[str, str]:
    """Wire name (alias or field name) → field name."""
    out = {}
    for name, info in model.model_fields.items():
        out[name] = name
        if info.alias:
            out[info.alias] = name
    return out


def apply_filters(
    items: Sequence[T],
    filters: Mapping[str, Any],
    model: type[T] | None = None,
    *,
    not_filterable: Collection[str] = (),
    matchers: Mapping[str, Matcher] | None = None,
) -> list[T]:
    """The items that match every filter (see the module docstring). Without ``model`` the keys
    are those of the items' own type, and an empty list is returned as it is."""
    if not filters:
        return list(items)
    if model is None:
        if not items:
            return []
        model = type(items[0])
    names = field_names(model)
    for key in filters:
        if key not in names or key in not_filterable:
            raise BadRequest(f"['{key}'] is invalid attribute for filtering", field=key)
    special = matchers or {}
    out = []
    for item in items:
        for key, want in filters.items():
            wanted = want if isinstance(want, list) else [want]
            have = getattr(item, names[key])
            haves = have if isinstance(have, list) else [have]
            match = special.get(key)
            if match is not None:
                if not match(haves, wanted):
                    break
            elif not any(norm(h) == norm(w) for h in haves for w in wanted):
                break
        else:
            out.append(item)
    return out


def id_filter(filters: Mapping[str, Any], key: str, message: str) -> list[uuid.UUID] | None:
    """A filter on a uuid column pushed down to SQL: None when absent, else the ids (any of)."""
    value = filters.get(key)
    if value is None or value == "":
        return None
    try:
        return [uuid.UUID(str(v)) for v in (value if isinstance(value, list) else [value])]
    except ValueError:
        raise BadRequest(message, field="filters") from None
