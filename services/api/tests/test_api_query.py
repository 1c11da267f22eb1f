"""List parameters: parsing (a bad one is a 400 that names it), filtering, sorting, pagination links
(following them visits every item once, in order, both ways)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict
from yarl import URL

from scopenet.contracts.errors import BadRequest, NotFound
from scopenet.services.api import query as lq
from scopenet.services.api.attrs import Attr, as_bool, as_int, ro
from scopenet.services.api.spec import Resource

RES = Resource(
    collection="things",
    plural="things",
    singular="thing",
    attrs=(
        ro("id"),
        Attr("name"),
        Attr("size", as_int(), filter_convert=True),
        Attr("shared", as_bool, filter_convert=True),
        Attr("tags", filter=False, sort=False),
    ),
    backend=None,  # type: ignore[arg-type]
    not_found_type="ThingNotFound",
    not_found_text="Thing {} could not be found.",
    tags=True,
)
ITEMS: list[dict[str, Any]] = [
    {"id": f"id{i}", "name": n, "size": s, "shared": sh, "tags": t}
    for i, (n, s, sh, t) in enumerate(
        [("b", 2, True, ["x"]), ("a", 3, False, ["x", "y"]), ("c", 1, False, []), ("a", 1, True, ["y"])]
    )
]


def run(query: str) -> tuple[list[str], list[dict[str, str]]]:
    url = URL("http://h/v2.0/things?" + query)
    q = lq.parse(RES, MultiDict(url.query))
    page = lq.paginate(RES, lq.order(lq.select(RES, ITEMS, q), q), q)
    return [i["id"] for i in page.items], lq.links(RES, url, page, q)


def test_filters_convert_values_and_repeat_as_or() -> None:
    assert run("shared=False")[0] == ["id1", "id2"]
    assert run("size=1&size=2")[0] == ["id0", "id2", "id3"]
    assert run("name=a&shared=true")[0] == ["id3"]
    assert run("name=")[0] == ["id0", "id1", "id2", "id3"]  # empty values are dropped


def test_tag_filters() -> None:
    assert run("tags=x,y")[0] == ["id1"]
    assert run("tags-any=y")[0] == ["id1", "id3"]
    assert run("not-tags=x,y")[0] == ["id0", "id2", "id3"]
    assert run("not-tags-any=x")[0] == ["id2", "id3"]


def test_sorting_is_stable_over_several_keys() -> None:
    assert run("sort_key=name&sort_dir=asc&sort_key=size&sort_dir=desc")[0] == ["id1", "id3", "id0", "id2"]


def test_pagination_links() -> None:
    ids, links = run("sort_key=size&sort_dir=asc&limit=2")
    assert ids == ["id2", "id3"]  # ties broken by id
    assert [link["rel"] for link in links] == ["next"]
    assert "marker=id3" in links[0]["href"] and "sort_key=size" in links[0]["href"]
    ids, links = run("sort_key=size&sort_dir=asc&limit=2&marker=id3")
    assert ids == ["id0", "id1"] and [link["rel"] for link in links] == ["previous"]
    assert "page_reverse=True" in links[0]["href"] and "marker=id0" in links[0]["href"]
    ids, links = run("sort_key=size&sort_dir=asc&limit=1&marker=id0&page_reverse=True")
    assert ids == ["id3"] and {link["rel"] for link in links} == {"next", "previous"}
    assert run("limit=0")[0] == ["id0", "id1", "id2", "id3"]


@pytest.mark.parametrize(
    "query",
    ["bogus=1", "tags_any=x", "size=big", "sort_key=name", "sort_key=tags&sort_dir=asc", "sort_key=name&sort_dir=up",
     "limit=-1", "limit=x", "limit=\u00b2", "size=\u00b2", "page_reverse=maybe"],
)  # fmt: skip
def test_bad_parameters_are_400(query: str) -> None:
    with pytest.raises(BadRequest):
        run(query)


def test_unknown_marker() -> None:
    with pytest.raises(NotFound):
        run("limit=1&marker=nope")


def test_fields() -> None:
    assert lq.project({"a": 1, "b": 2}, ["b", "zz"]) == {"b": 2}
    assert lq.project({"a": 1}, []) == {"a": 1}


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("bogus=1", "bogus", "invalid attribute for filtering"),
        ("size=big", "size", "Invalid input for size"),
        ("sort_key=name", "sort_key", "sort_keys and sort_dirs"),
        ("sort_key=tags&sort_dir=asc", "sort_key", "invalid attribute for sort_keys"),
        ("sort_key=name&sort_dir=up", "sort_dir", "invalid value for sort_dirs"),
        ("limit=-1", "limit", "Limit must be an integer"),
        ("page_reverse=maybe", "page_reverse", "Invalid value for page_reverse"),
    ],
)
def test_bad_parameters_are_named(query: str, field: str, words: str) -> None:
    with pytest.raises(BadRequest) as exc:
        run(query)
    assert exc.value.field == field and words in exc.value.message


def _page(items: list[dict[str, Any]], url: URL) -> tuple[list[str], dict[str, str]]:
    q = lq.parse(RES, MultiDict(url.query))
    page = lq.paginate(RES, lq.order(lq.select(RES, items, q), q), q)
    return [i["id"] for i in page.items], {link["rel"]: link["href"] for link in lq.links(RES, url, page, q)}


@given(
    rows=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 3)), max_size=12),
    limit=st.integers(1, 5),
    key=st.sampled_from(["name", "size"]),
    ascending=st.booleans(),
)
def test_next_and_previous_links_walk_every_item_once_in_order(
    rows: list[tuple[str, int]], limit: int, key: str, ascending: bool
) -> None:
    items: list[dict[str, Any]] = [
        {"id": f"id{i:02d}", "name": n, "size": s, "shared": False, "tags": []} for i, (n, s) in enumerate(rows)
    ]
    by_id = sorted(items, key=lambda i: i["id"])
    expected = [i["id"] for i in sorted(by_id, key=lambda i: i[key], reverse=not ascending)]
    url = URL(f"http://h/v2.0/things?sort_key={key}&sort_dir={'asc' if ascending else 'desc'}&limit={limit}")
    forward: list[list[str]] = []
    links: dict[str, str] = {}
    for _ in range(20):
        ids, links = _page(items, url)
        forward.append(ids)
        if "next" not in links:
            break
        url = URL(links["next"])
    assert [i for page in forward for i in page] == expected
    assert all(len(page) == limit for page in forward[:-1])
    backward = [forward[-1]]
    while "previous" in links:
        ids, links = _page(items, URL(links["previous"]))
        backward.append(ids)
    assert [i for page in reversed(backward) for i in page] == expected
