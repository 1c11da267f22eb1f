"""Topology's list filters: the shared meaning (``scopenet.contracts.filters``) and two rules of its own.

The derived scope fields are not filterable (Neutron answers 400 "is invalid attribute for
filtering"), and ``fixed_ips`` filters are objects: ``{"subnet_id": x}`` or ``{"ip_address": y}``
match a port holding any fixed IP with those values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from scopenet.contracts import filters
from scopenet.contracts.errors import BadRequest

T = TypeVar("T", bound=BaseModel)

NOT_FILTERABLE = frozenset({"ipv4_address_scope", "ipv6_address_scope"})


def fixed_ips_match(haves: list[Any], wanted: list[Any]) -> bool:
    if not all(isinstance(w, dict) for w in wanted):
        raise BadRequest(
            "fixed_ips filters are objects such as {'ip_address': ...} or {'subnet_id': ...}", field="fixed_ips"
        )
    dumped = [h.model_dump(mode="json") for h in haves]
    return any(all(str(h.get(k)) == str(v) for k, v in w.items()) for h in dumped for w in wanted)


def apply_filters(items: Sequence[T], filters_: Mapping[str, Any], model: type[T]) -> list[T]:
    return filters.apply_filters(
        items, filters_, model, not_filterable=NOT_FILTERABLE, matchers={"fixed_ips": fixed_ips_match}
    )
