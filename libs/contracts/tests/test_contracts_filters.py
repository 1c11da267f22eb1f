"""List filters: equality on wire names, any-of lists, booleans as text, unknown keys refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from scopenet.contracts.errors import BadRequest
from scopenet.contracts.filters import apply_filters, id_filter


class Thing(BaseModel):
    name: str
    shared: bool
    tags: list[str] = []
    external: bool = Field(False, alias="router:external")


THINGS = [
    Thing(name="a", shared=True, tags=["x"]),
    Thing.model_validate({"name": "b", "shared": False, "router:external": True}),
]


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ({}, ["a", "b"]),
        ({"name": "a"}, ["a"]),
        ({"name": ["a", "b"]}, ["a", "b"]),
        ({"shared": "True"}, ["a"]),
        ({"shared": False}, ["b"]),
        ({"tags": "x"}, ["a"]),
        ({"router:external": "true"}, ["b"]),
        ({"name": "a", "shared": "false"}, []),
    ],
)
def test_filters_select(filters: dict[str, Any], names: list[str]) -> None:
    assert [t.name for t in apply_filters(THINGS, filters, Thing)] == names


def test_unknown_and_unfilterable_keys_are_refused() -> None:
    with pytest.raises(BadRequest, match="invalid attribute for filtering"):
        apply_filters(THINGS, {"colour": "red"}, Thing)
    with pytest.raises(BadRequest):
        apply_filters(THINGS, {"name": "a"}, Thing, not_filterable={"name"})


def test_without_a_model_an_empty_list_is_not_checked() -> None:
    assert apply_filters([], {"colour": "red"}) == []
    with pytest.raises(BadRequest):
        apply_filters(THINGS, {"colour": "red"})


def test_id_filter() -> None:
    assert id_filter({}, "subnet_id", "bad") is None
    assert id_filter({"subnet_id": "00000000-0000-0000-0000-000000000001"}, "subnet_id", "bad") is not None
    with pytest.raises(BadRequest, match="bad"):
        id_filter({"subnet_id": "nope"}, "subnet_id", "bad")
