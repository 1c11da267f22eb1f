"""A pool's space map (pure): each prefix a row of blocks, allocated and free, each block as wide
as its share of the prefix (with a floor, so a /32 in a /8 is still something to click)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH, ROW_H, MIN_W = 1000, 34, 6


@dataclass
class Block:
    cidr: str
    status: str
    """``allocated`` or ``free``."""
    x: int
    w: int
    y: int
    suggested: str | None
    subnet_id: str | None


@dataclass
class SpaceMap:
    blocks: list[Block]
    labels: list[tuple[str, int]]
    height: int
    width: int


def build(usage: dict[str, Any]) -> SpaceMap:
    blocks: list[Block] = []
    labels: list[tuple[str, int]] = []
    y, width = 0, WIDTH
    for prefix in usage.get("prefixes", []):
        labels.append((prefix["cidr"], y))
        rows = prefix.get("blocks", [])
        total = sum(int(b["size"]) for b in rows) or 1
        x, edge = 0.0, 0
        for b in rows:
            x += WIDTH * int(b["size"]) / total
            end = max(round(x), edge + MIN_W)
            blocks.append(Block(b["cidr"], b["status"], edge, max(end - edge - 1, 1), y + 18, b.get("suggested"),
                                b.get("subnet_id")))  # fmt: skip
            edge = end
        width = max(width, edge)
        y += 18 + ROW_H + 10
    return SpaceMap(blocks, labels, max(y, 40), width)
