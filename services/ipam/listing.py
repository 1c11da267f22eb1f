"""Equality filters on list commands (``{"field": value}`` or ``{"field": [v1, v2]}`` = any of)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from scopenet.errors import BadRequest

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
