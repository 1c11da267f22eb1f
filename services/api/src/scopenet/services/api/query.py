"""List query parameters (docs/neutron.md#list-parameters): filters, tag filters, fields, sorting, pagination.

The API holds no state. A resource whose backend is a ``PagedBackend`` hands the whole query to its
service, whose SQL filters, sorts and pages (one page in constant memory). For the others a list
is: ask the service for what the caller may see (narrowed by the equality filters it understands),
then filter, sort and page here, in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

from multidict import MultiMapping

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest
from scopenet.services.api.spec import Resource, View

_CONTROL = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}
_TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
#: Accepted by Neutron's list calls and meaningless here (no soft deletes, one region).
_IGNORED = {"all_tenants", "all_projects"}


@dataclass
class ListQuery:
    filters: dict[str, list[Any]] = field(default_factory=dict)
    extra: dict[str, list[str]] = field(default_factory=dict)
    tag_filters: dict[str, set[str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    """(key, ascending)"""
    limit: int = 0
    marker: str | None = None
    page_reverse: bool = False


def _bool_param(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0", ""):
        return False
    raise BadRequest(f"Invalid value for {name}: '{value[:64]}'", type="HTTPBadRequest", field=name)


def parse(resource: Resource, query: MultiMapping[str]) -> ListQuery:
    q = ListQuery()
    q.fields = [f for v in query.getall("fields", []) for f in v.split(",") if f]
    keys = query.getall("sort_key", [])
    dirs = query.getall("sort_dir", [])
    if len(keys) != len(dirs):
        raise BadRequest("The number of sort_keys and sort_dirs must be same", type="HTTPBadRequest", field="sort_key")
    bad = [k for k in keys if not ((a := resource.attr(k)) and a.sort)]
    if bad:
        raise BadRequest(f"{bad} is invalid attribute for sort_keys", type="HTTPBadRequest", field="sort_key")
    for k, d in zip(keys, dirs, strict=True):
        if d not in ("asc", "desc"):
            raise BadRequest(
                f"{d[:32]} is invalid value for sort_dirs, valid values are 'asc' and 'desc'",
                type="HTTPBadRequest",
                field="sort_dir",
            )
        q.sort.append((k, d == "asc"))
    if "limit" in query:
        raw = query.getall("limit")[-1]
        if not re.fullmatch(r"[0-9]{1,18}", raw.strip()):
            raise BadRequest(
                f"Limit must be an integer 0 or greater and not '{raw[:32]}'", type="HTTPBadRequest", field="limit"
            )
        q.limit = int(raw)
    if "marker" in query:
        q.marker = query.getall("marker")[-1] or None
    if "page_reverse" in query:
        q.page_reverse = _bool_param("page_reverse", query.getall("page_reverse")[-1])
    unknown: list[str] = []
    for key in dict.fromkeys(query.keys()):
        if key in _CONTROL or key in _IGNORED:
            continue
        values = [v for v in query.getall(key) if v != ""]
        if key in _TAG_FILTERS and resource.tags:
            q.tag_filters[key] = {t for v in values for t in v.split(",") if t}
            continue
        if key in resource.extra_filters:
            if values:
                q.extra[key] = values
            continue
        attr = resource.attr(key)
        if attr is None or not attr.filter:
            unknown.append(key)
            continue
        if values:
            q.filters[key] = [attr.convert(key, v) if attr.filter_convert else v for v in values]
    if unknown:
        raise BadRequest(f"{unknown} is invalid attribute for filtering", type="HTTPBadRequest", field=unknown[0])
    return q


def _matches(have: Any, wanted: list[Any]) -> bool:
    haves = have if isinstance(have, list) else [have]
    for h in haves:
        for w in wanted:
            if h == w or (h is not None and str(h) == str(w)) or (h is None and w in ("", "None", "null")):
                return True
    return False


def _tags_ok(tags: set[str], tf: dict[str, set[str]]) -> bool:
    if "tags" in tf and not tf["tags"] <= tags:
        return False
    if "tags-any" in tf and not tf["tags-any"] & tags:
        return False
    if "not-tags" in tf and tf["not-tags"] and tf["not-tags"] <= tags:
        return False
    return not ("not-tags-any" in tf and tf["not-tags-any"] & tags)


def select(resource: Resource, items: list[View], q: ListQuery) -> list[View]:
    out = []
    for item in items:
        if not all(_matches(item.get(k), want) for k, want in q.filters.items()):
            continue
        if not all(resource.extra_filters[k](item, v) for k, v in q.extra.items()):
            continue
        if q.tag_filters and not _tags_ok(set(item.get("tags") or ()), q.tag_filters):
            continue
        out.append(item)
    return out


def _key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def order(items: list[View], q: ListQuery) -> list[View]:
    sort = list(q.sort)
    if q.limit and not any(k == "id" for k, _ in sort):
        sort.append(("id", True))
    for key, ascending in reversed(sort):  # stable sorts, least significant key first

        def by(item: View, k: str = key) -> tuple[int, Any]:
            return _key(item.get(k))

        items = sorted(items, key=by, reverse=not ascending)
    return items


@dataclass
class Page:
    items: list[View]
    has_more: bool


@runtime_checkable
class PagedBackend(Protocol):
    async def query(self, ctx: CallContext, q: ListQuery) -> Page:
        """The page ``q`` asks for, filtered, sorted and paged by the service, in the order asked;
        ``has_more``: another page follows in the direction read."""
        ...


def paginate(resource: Resource, items: list[View], q: ListQuery) -> Page:
    start, stop = 0, len(items)
    if q.marker is not None:
        idx = next((i for i, it in enumerate(items) if it.get("id") == q.marker), None)
        if idx is None:
            if resource.marker_must_exist:
                raise resource.not_found(q.marker)
        elif q.page_reverse:
            stop = idx
        else:
            start = idx + 1
    window = items[start:stop]
    if not q.limit:
        return Page(window, False)
    if q.page_reverse:
        return Page(window[-q.limit :], len(window) > q.limit)
    return Page(window[: q.limit], len(window) > q.limit)


def links(resource: Resource, url: Any, page: Page, q: ListQuery) -> list[dict[str, str]]:
    """Neutron's ``<collection>_links`` (next / previous), absolute hrefs built on the request URL."""
    if not q.limit:
        return []
    base = [(k, v) for k, v in url.query.items() if k not in ("marker", "page_reverse")]

    def href(marker: str, reverse: bool) -> str:
        params = [*base, ("marker", marker)] + ([("page_reverse", "True")] if reverse else [])
        return f"{url.with_query(None)}?{urlencode(params)}"

    out: list[dict[str, str]] = []
    if not page.items:
        return out
    more_after = page.has_more if not q.page_reverse else q.marker is not None
    more_before = page.has_more if q.page_reverse else q.marker is not None
    if more_after:
        out.append({"rel": "next", "href": href(page.items[-1]["id"], False)})
    if more_before:
        out.append({"rel": "previous", "href": href(page.items[0]["id"], True)})
    return out


def project(view: View, fields: list[str]) -> View:
    if not fields:
        return view
    return {k: v for k, v in view.items() if k in fields}
