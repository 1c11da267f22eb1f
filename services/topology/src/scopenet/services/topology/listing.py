"""Equality filters on list commands (``{"field": value}`` or ``{"field": [v1, v2]}`` = any of).

Keys are the wire names (``router:external`` as well as ``router_external``). The derived scope
fields are not filterable (SPEC §1.3: 400 "is invalid attribute for filtering").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from scopenet.contracts.errors import BadRequest

T = TypeVar("T", bound=BaseModel)

NOT_FILTERABLE = {"ipv4_address_scope", "ipv6_address_scope"}


def _norm(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, dict):
        return str(sorted((k, _norm(x)) for k, x in v.items()))
    s = str(v)
    return s.lower() if s.lower() in ("true", "false") else s


def _names(model: type[BaseModel]) -> dict[str, str]:
    out = {}
    for name, info in model.model_fields.items():
        out[name] = name
        if info.alias:
            out[info.alias] = name
    return out


def apply_filters(items: Sequence[T], filters: dict[str, Any], model: type[T]) -> list[T]:
    if not filters:
        return list(items)
    names = _names(model)
    for key in filters:
        if key not in names or key in NOT_FILTERABLE:
            raise BadRequest(f"['{key}'] is invalid attribute for filtering", field=key)
    out = []
    for item in items:
        for key, want in filters.items():
            wanted = want if isinstance(want, list) else [want]
            have = getattr(item, names[key])
            haves = have if isinstance(have, list) else [have]
            if key == "fixed_ips":  # {"subnet_id": x} or {"ip_address": y} match any fixed IP
                if not all(isinstance(w, dict) for w in wanted):
                    raise BadRequest(
                        "fixed_ips filters are objects such as {'ip_address': ...} or {'subnet_id': ...}",
                        field="fixed_ips",
                    )
                haves = [h.model_dump(mode="json") for h in haves]
                if not any(all(str(h.get(k)) == str(v) for k, v in w.items()) for h in haves for w in wanted):
                    break
                continue
            if not any(_norm(h) == _norm(w) for h in haves for w in wanted):
                break
        else:
            out.append(item)
    return out
