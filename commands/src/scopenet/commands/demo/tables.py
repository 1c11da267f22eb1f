"""Plain-text tables like the seed document's ``openstack ... show`` output."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def _cell(v: Any) -> str:
    if v is None:
        return "None"
    if isinstance(v, list):
        return ", ".join(_cell(x) for x in v) if v else ""
    if isinstance(v, dict):
        return ", ".join(f"{k}={_cell(x)}" for k, x in v.items())
    return str(v)


def grid(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[_cell(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |", line]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    out.append(line)
    return "\n".join(out)


def show(resource: dict[str, Any], fields: Sequence[str] | None = None) -> str:
    keys = fields or sorted(resource)
    return grid(["Field", "Value"], [(k, resource.get(k)) for k in keys])
