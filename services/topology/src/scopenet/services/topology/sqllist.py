"""Lists in SQL: a ``QueryCommand`` (filters, tag filters, sort keys, marker, limit, fields) as one
query per page, each row's JSON built by Postgres (``json_build_object``). A page costs the same
however large the table, and no model is built per row.

A ``Table`` names, per wire attribute, the SQL expression that holds it (``Column``); visibility is
part of the WHERE clause, so a limited page counts only rows the caller may see. The order and its
ties follow the API's rules (``QueryCommand``): text compares by code point (``COLLATE "C"``),
timestamps to the second as they are shown, ``NULL`` first when ascending.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from scopenet.contracts.base import QueryCommand
from scopenet.contracts.errors import BadRequest
from scopenet.policy.rules import not_found

Kind = Literal["text", "uuid", "bool", "int", "time", "json"]
NULLISH = ("", "None", "null")
_SECOND = """'YYYY-MM-DD"T"HH24:MI:SS"Z"'"""
_MICRO = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""


class Params:
    """Positional query parameters, numbered as they are added."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


Matcher = Callable[[Params, list[Any]], str]
"""A filter that is not plain equality: (params, wanted values) → SQL condition."""


@dataclass(frozen=True)
class Column:
    sql: str
    kind: Kind = "text"
    nullable: bool = False
    sortable: bool = True
    filterable: bool = True
    json: str | None = None
    """How the reply renders it (default: ``sql``)."""

    def rendered(self) -> str:
        if self.json is not None:
            return self.json
        if self.kind == "time":
            return f"to_char({self.sql} AT TIME ZONE 'UTC', {_MICRO})"
        return self.sql

    def ordered(self) -> str:
        """The expression the order compares: as the API compares the shown values."""
        if self.kind == "text":
            return f'({self.sql} COLLATE "C")'
        if self.kind == "time":
            return f"date_trunc('second', {self.sql})"
        return self.sql


def common_columns(alias: str) -> dict[str, Column]:
    """The columns every topology resource ends with (Neutron's standard attributes), in reply order,
    for the table aliased ``alias``."""
    return {
        "description": Column(f"{alias}.description"),
        "tags": Column(f"{alias}.tags", "json", sortable=False, filterable=False),
        "revision_number": Column(f"{alias}.revision_number", "int"),
        "created_at": Column(f"{alias}.created_at", "time"),
        "updated_at": Column(f"{alias}.updated_at", "time"),
    }


@dataclass(frozen=True)
class Table:
    resource: str
    source: str
    """``FROM`` clause (``ports p``)."""
    where: str
    """Rows that exist for readers at all (``p.state = 'active'``)."""
    visible: str
    """What a caller who is not admin sees; ``$me`` stands for the caller's project (as it may in
    columns: a network's ``shared`` is relative to the caller)."""
    columns: Mapping[str, Column]
    """Wire key → column, in the reply's key order."""
    natural: Sequence[str]
    """The service's own order (SQL expressions, ascending, not null) when no limit asks for ``id``."""
    id_sql: str
    matchers: Mapping[str, Matcher] = field(default_factory=dict)
    tags_sql: str | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Other names of a key (the model's field name of ``router:external``), as filters accept them."""

    def column(self, key: str) -> Column | None:
        return self.columns.get(self.aliases.get(key, key))


@dataclass(frozen=True)
class _Key:
    sql: str
    ascending: bool
    nullable: bool

    def flipped(self) -> _Key:
        return _Key(self.sql, not self.ascending, self.nullable)

    def clause(self) -> str:
        return f"{self.sql} {'ASC NULLS FIRST' if self.ascending else 'DESC NULLS LAST'}"


@dataclass(frozen=True)
class Page:
    rows: list[str]
    """Each item's JSON, in the order asked."""
    has_more: bool

    def reply(self, key: str) -> bytes:
        """``{"<key>": [...], "has_more": ...}`` as the list reply's JSON."""
        more = b"true" if self.has_more else b"false"
        return b'{"' + key.encode() + b'":[' + ",".join(self.rows).encode() + b'],"has_more":' + more + b"}"


def _invalid(key: str) -> BadRequest:
    return BadRequest(f"['{key}'] is invalid attribute for filtering", field=key)


def _equal(p: Params, col: Column, wanted: list[Any]) -> str:
    nullish = col.nullable and any(w is None or str(w) in NULLISH for w in wanted)
    if col.kind == "uuid":
        ids = []
        for w in wanted:
            try:
                ids.append(uuid.UUID(str(w)))
            except ValueError:
                continue  # no row holds it
        cond = f"{col.sql} = ANY({p.add(ids)}::uuid[])"
    elif col.kind == "bool":
        texts = [str(w).lower() for w in wanted]  # True and "true" alike; anything else matches nothing
        bools = [t == "true" for t in texts if t in ("true", "false")]
        cond = f"{col.sql} = ANY({p.add(bools)}::bool[])"
    elif col.kind == "time":
        cond = f"to_char({col.sql} AT TIME ZONE 'UTC', {_SECOND}) = ANY({p.add([str(w) for w in wanted])}::text[])"
    elif col.kind == "json":
        raise AssertionError("json columns are not filterable")
    else:  # text, int: as the shown value's text
        cond = f"{col.sql}::text = ANY({p.add([str(w) for w in wanted])}::text[])"
    return f"({cond} OR {col.sql} IS NULL)" if nullish else cond


def _conditions(table: Table, cmd: QueryCommand, p: Params) -> list[str]:
    out = [table.where, "TRUE" if cmd.context.is_admin else table.visible]
    for key, want in cmd.filters.items():
        wanted = want if isinstance(want, list) else [want]
        if key in table.matchers:
            out.append(table.matchers[key](p, wanted))
            continue
        col = table.column(key)
        if col is None or not col.filterable:
            raise _invalid(key)
        out.append(_equal(p, col, wanted))
    tag_filters = {"tags": cmd.tags, "tags-any": cmd.tags_any, "not-tags": cmd.not_tags}
    given = {k: v for k, v in {**tag_filters, "not-tags-any": cmd.not_tags_any}.items() if v}
    if given and table.tags_sql is None:
        raise _invalid(next(iter(given)))
    tags = table.tags_sql
    if cmd.tags:
        out.append(f"{tags} @> {p.add(cmd.tags)}::text[]")
    if cmd.tags_any:
        out.append(f"{tags} && {p.add(cmd.tags_any)}::text[]")
    if cmd.not_tags:
        out.append(f"NOT ({tags} @> {p.add(cmd.not_tags)}::text[])")
    if cmd.not_tags_any:
        out.append(f"NOT ({tags} && {p.add(cmd.not_tags_any)}::text[])")
    return out


def _order(table: Table, cmd: QueryCommand) -> list[_Key]:
    keys = []
    for s in cmd.sort:
        col = table.column(s.key)
        if col is None or not col.sortable:
            raise BadRequest(f"['{s.key}'] is invalid attribute for sort_keys", field="sort_key")
        keys.append(_Key(col.ordered(), s.ascending, col.nullable))
    if cmd.limit is not None:
        if not any(s.key == "id" for s in cmd.sort):
            keys.append(_Key(table.id_sql, True, False))
    else:
        keys += [_Key(sql, True, False) for sql in table.natural]
    return keys


def _after(p: Params, keys: list[_Key], marker: Sequence[Any]) -> str:
    """Rows strictly after the marker's values in the order of ``keys`` (NULL first ascending)."""
    ors = []
    for i, key in enumerate(keys):
        value = marker[i]
        if value is None:
            after = f"{key.sql} IS NOT NULL" if key.ascending else "FALSE"
        else:
            ph = p.add(value)
            after = f"{key.sql} {'>' if key.ascending else '<'} {ph}"
            if key.nullable and not key.ascending:
                after = f"({after} OR {key.sql} IS NULL)"
        before = zip(keys[:i], marker[:i], strict=True)
        equal = [f"{k.sql} IS NULL" if v is None else f"{k.sql} = {p.add(v)}" for k, v in before]
        ors.append("(" + " AND ".join([*equal, after]) + ")")
    return "(" + " OR ".join(ors) + ")"


def _json(table: Table, fields: Sequence[str]) -> str:
    keep = set(fields) | {"id"} if fields else None
    pairs = [f"'{k}', {c.rendered()}" for k, c in table.columns.items() if keep is None or k in keep]
    return f"json_build_object({', '.join(pairs)})::text"


async def _fetch(conn: asyncpg.Connection, sql: str, p: Params, cmd: QueryCommand) -> list[asyncpg.Record]:
    values = list(p.values)
    if "$me" in sql:
        values.append(cmd.context.project_id)
        sql = sql.replace("$me", f"${len(values)}")
    return list(await conn.fetch(sql, *values))


async def page(conn: asyncpg.Connection, table: Table, cmd: QueryCommand) -> Page:
    """One page of what ``cmd`` asks for, in one read (two with a marker)."""
    p = Params()
    where = _conditions(table, cmd, p)
    keys = _order(table, cmd)
    if cmd.page_reverse:
        keys = [k.flipped() for k in keys]
    if cmd.marker is not None:
        at = Params()
        at.values = [*p.values]
        sql = f"SELECT {', '.join(k.sql for k in keys)} FROM {table.source} WHERE {' AND '.join(where)}"
        found = await _fetch(conn, f"{sql} AND {table.id_sql} = {at.add(cmd.marker)}", at, cmd)
        if not found:
            raise not_found(table.resource, cmd.marker)
        where = [*where, _after(p, keys, list(found[0].values()))]
    sql = f"SELECT {_json(table, cmd.fields)} FROM {table.source} WHERE {' AND '.join(where)}"
    sql += " ORDER BY " + ", ".join(k.clause() for k in keys)
    if cmd.limit is not None:
        sql += f" LIMIT {p.add(cmd.limit + 1)}"
    rows = [r[0] for r in await _fetch(conn, sql, p, cmd)]
    more = cmd.limit is not None and len(rows) > cmd.limit
    if more:
        rows = rows[: cmd.limit]
    if cmd.page_reverse:
        rows.reverse()
    return Page(rows, more)
