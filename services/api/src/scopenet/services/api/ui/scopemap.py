"""The scope map's fixed lane layout (pure): lanes stacked top to bottom (external networks, each
scope and IP version, the unscoped addresses), chips in a grid inside each lane, and routers as
columns on the right bridging the lanes they touch, each crossing an arc coloured by its verdict.

Nothing moves between renders (no force layout): positions follow sort order only. Readable at
thousands of objects because a lane over ``lane_limit`` chips shows its pools and counts until it
is expanded, and over ``router_limit`` routers, routers that bridge the same lanes with the same
verdicts are drawn once with their count."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scopenet.services.api.ui.data import Snapshot
from scopenet.services.api.ui.lanes import EXTERNAL, Edge, Index

LABEL_W, CHIP_W, CHIP_H, GAP, COLS = 210, 196, 24, 8, 4
ITEMS_X = LABEL_W + 10
ROUTERS_X = ITEMS_X + COLS * (CHIP_W + GAP) + 24
ROUTER_W = 26
HEADER_H = 96
SHOW_MAX = 1000
"""An expanded lane draws at most this many chips (search narrows the rest)."""


@dataclass
class Chip:
    kind: str
    """``pool``, ``subnet``, ``network`` or ``floatingip``."""
    id: str
    label: str
    detail: str
    href: str | None = None
    used_percent: float | None = None
    hop: bool = False
    x: int = 0
    y: int = 0


@dataclass
class Lane:
    key: str
    title: str
    chips: list[Chip] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    collapsed: bool = False
    hidden: int = 0
    y: int = 0
    h: int = 0

    @property
    def mid(self) -> int:
        return self.y + self.h // 2

    @property
    def summary(self) -> str:
        names = {"pool": "pools", "subnet": "subnets", "network": "networks", "floatingip": "floating IPs"}
        return " · ".join(f"{n} {names[k]}" for k, n in self.counts.items() if n)


@dataclass
class Arc:
    y1: int
    y2: int
    verdict: str
    bulge: int


@dataclass
class RouterColumn:
    ids: list[str]
    name: str
    count: int
    lanes: list[str]
    edges: list[Edge]
    hop: bool = False
    x: int = 0
    dots: list[int] = field(default_factory=list)
    arcs: list[Arc] = field(default_factory=list)

    @property
    def title(self) -> str:
        crossings = ", ".join(f"{e.a} ↔ {e.b}: {e.verdict}" for e in self.edges) or "no crossings"
        return f"{self.name} ({self.count} router{'s' if self.count > 1 else ''}): {crossings}"


@dataclass
class ScopeMap:
    lanes: list[Lane]
    routers: list[RouterColumn]
    grouped: bool
    router_total: int
    router_hidden: int
    width: int
    height: int


def _matches(query: str, *values: Any) -> bool:
    return any(query in str(v).lower() for v in values if v)


def _chips(ix: Index, *, query: str, only: frozenset[str] | None) -> dict[str, list[Chip]]:
    """Every visible object as a chip in its lane(s), filtered by the search or the ``only`` ids."""
    out: dict[str, list[Chip]] = {}

    def keep(*values: Any) -> bool:
        if only is not None:
            return any(v in only for v in values if v)
        return not query or _matches(query, *values)

    snap = ix.snap
    for p in sorted(snap.pools, key=lambda p: (p.get("subnetpool_name") or "", p["subnetpool_id"])):
        if keep(p["subnetpool_id"], p.get("subnetpool_name"), *p.get("prefixes", [])):
            total, used = int(p.get("total_ips") or 0), int(p.get("used_ips") or 0)
            percent = round(100.0 * used / total, 1) if total else 0.0
            chip = Chip("pool", p["subnetpool_id"], p.get("subnetpool_name") or p["subnetpool_id"],
                        ", ".join(p.get("prefixes", [])), f"/ui/pools/{p['subnetpool_id']}", percent)  # fmt: skip
            out.setdefault(ix.pool_lane(p), []).append(chip)
    for s in sorted(snap.subnets, key=lambda s: (s.get("name") or "", s["id"])):
        if keep(s["id"], s.get("name"), s.get("cidr"), s.get("network_id")):
            net = ix.networks.get(s.get("network_id") or "", {})
            detail = f"{s.get('cidr')} on {net.get('name') or s.get('network_id')}"
            chip = Chip("subnet", s["id"], s.get("name") or s.get("cidr") or s["id"], detail)
            out.setdefault(ix.subnet_lane(s), []).append(chip)
    for n in sorted(snap.networks, key=lambda n: (n.get("name") or "", n["id"])):
        if keep(n["id"], n.get("name")):
            for lane in ix.network_lanes(n):
                detail = f"{len(n.get('subnets') or [])} subnet(s)"
                out.setdefault(lane, []).append(Chip("network", n["id"], n.get("name") or n["id"], detail))
    for f in sorted(snap.floatingips, key=lambda f: f.get("floating_ip_address") or ""):
        if keep(f["id"], f.get("floating_ip_address"), f.get("fixed_ip_address"), f.get("port_id")):
            detail = f"→ {f.get('fixed_ip_address') or 'unassociated'}"
            out.setdefault(EXTERNAL, []).append(Chip("floatingip", f["id"], f.get("floating_ip_address") or "", detail))
    return out


def _lane_keys(ix: Index, present: Iterable[str]) -> list[str]:
    scoped = sorted(
        {k for k in present if k.startswith("s:")}
        | {f"s:{s['id']}:{s.get('ip_version') or 4}" for s in ix.snap.scopes},
        key=lambda k: (ix.lane_title(k).lower(), k),
    )
    return [EXTERNAL, *scoped, "u:4", "u:6"]


def build(
    snap: Snapshot,
    *,
    query: str = "",
    expanded: frozenset[str] = frozenset(),
    only: frozenset[str] | None = None,
    highlight: frozenset[str] = frozenset(),
    lane_limit: int = 24,
    router_limit: int = 40,
) -> ScopeMap:
    ix = Index(snap)
    query = query.strip().lower()
    chips = _chips(ix, query=query, only=only)
    lanes: list[Lane] = []
    for key in _lane_keys(ix, chips):
        mine = chips.get(key, [])
        lane = Lane(key, ix.lane_title(key))
        for kind in ("pool", "subnet", "network", "floatingip"):
            lane.counts[kind] = sum(1 for c in mine if c.kind == kind)
        lane.collapsed = len(mine) > lane_limit and key not in expanded
        shown = [c for c in mine if c.kind == "pool"][:COLS] if lane.collapsed else mine[:SHOW_MAX]
        lane.hidden = len(mine) - len(shown)
        for c in shown:
            c.hop = c.id in highlight
        lane.chips = shown
        lanes.append(lane)
    columns, grouped, total = _routers(
        ix,
        query=query,
        only=only,
        highlight=highlight,
        expanded=expanded,
        limit=router_limit,
        chip_ids={c.id for cs in chips.values() for c in cs},
    )
    hidden = max(0, len(columns) - router_limit) if grouped else 0
    columns = columns[:router_limit] if grouped else columns
    return _layout(lanes, columns, grouped=grouped, total=total, hidden=hidden)


def _routers(
    ix: Index,
    *,
    query: str,
    only: frozenset[str] | None,
    highlight: frozenset[str],
    expanded: frozenset[str],
    limit: int,
    chip_ids: set[str],
) -> tuple[list[RouterColumn], bool, int]:
    columns: list[RouterColumn] = []
    for r in sorted(ix.snap.routers, key=lambda r: (r.get("name") or "", r["id"])):
        lanes, edges = ix.router_edges(r)
        if only is not None and r["id"] not in only:
            continue
        if only is None and query and not _matches(query, r["id"], r.get("name")):
            subnets = {ip.get("subnet_id") for p in ix.interfaces.get(r["id"], []) for ip in p.get("fixed_ips") or []}
            if not subnets & chip_ids:
                continue
        columns.append(RouterColumn([r["id"]], r.get("name") or r["id"], 1, lanes, edges, hop=r["id"] in highlight))
    total = len(columns)
    if total <= limit or "routers" in expanded:
        return columns, False, total
    groups: dict[tuple[Any, ...], RouterColumn] = {}
    for c in columns:  # routers that bridge the same lanes with the same verdicts: one column
        key = (tuple(c.lanes), tuple(c.edges))
        if key in groups:
            g = groups[key]
            g.ids.append(c.ids[0])
            g.count += 1
            g.hop = g.hop or c.hop
        else:
            groups[key] = c
    out = sorted(groups.values(), key=lambda g: (-g.count, g.name))
    for g in out:
        if g.count > 1:
            g.name = f"{g.name} +{g.count - 1}"
    return out, True, total


def _layout(lanes: list[Lane], columns: list[RouterColumn], *, grouped: bool, total: int, hidden: int) -> ScopeMap:
    y = HEADER_H
    for lane in lanes:
        rows = (len(lane.chips) + COLS - 1) // COLS + (1 if lane.collapsed or not lane.chips else 0)
        lane.y, lane.h = y, 30 + max(rows, 1) * (CHIP_H + GAP) + 6
        for i, chip in enumerate(lane.chips):
            chip.x = ITEMS_X + (i % COLS) * (CHIP_W + GAP)
            chip.y = y + 30 + (i // COLS) * (CHIP_H + GAP)
        y += lane.h + 4
    mids = {lane.key: lane.mid for lane in lanes}
    for i, col in enumerate(columns):
        col.x = ROUTERS_X + i * ROUTER_W + ROUTER_W // 2
        col.dots = sorted(mids[k] for k in col.lanes if k in mids)
        for j, e in enumerate(col.edges):
            if e.a in mids and e.b in mids:
                col.arcs.append(Arc(mids[e.a], mids[e.b], e.verdict, 6 + 4 * (j % 3)))
    width = max(ROUTERS_X + len(columns) * ROUTER_W + 40, 1180)
    return ScopeMap(lanes, columns, grouped, total, hidden, width, y + 10)
