"""Find one rendered rule in the kernel's listing, with its packet counter (pure).

The explainer names a rule by its chain and a few fragments of its text (``reachability.Decision``).
The rendered table (``nft.render_rules``) gives the rule's text and its position in the chain; the
kernel keeps rules in that order, so the same position in ``nft -j list table`` is the same rule,
and its handle and counter come from there. Matching on the rendered text rather than on the kernel's
JSON keeps one spelling of every rule: the renderer's, which is also how ``nft`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scopenet.datapath import nft


@dataclass(frozen=True)
class Found:
    rule: str
    handle: int | None
    packets: int | None


def chains(rules_text: str) -> dict[str, list[str]]:
    """Chain name → its rule lines, from ``render_rules`` output (header lines left out)."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in rules_text.splitlines():
        text = line.strip()
        if text.startswith("chain "):
            current = out.setdefault(text.split()[1], [])
        elif text == "}":
            current = None
        elif current is not None and text:
            current.append(text)
    return out


def locate(
    rules_text: str, chain: str, contains: Sequence[str], excludes: Sequence[str] = ()
) -> tuple[int, str] | None:
    """(position, text) of the first rule of ``chain`` holding every ``contains`` and no ``excludes``."""
    for i, rule in enumerate(chains(rules_text).get(chain, [])):
        if all(c in rule for c in contains) and not any(e in rule for e in excludes):
            return i, rule
    return None


def in_listing(
    listing: Mapping[str, Any], chain: str, position: int, counter: str | None
) -> tuple[int | None, int | None]:
    """(handle, packets) of the rule at ``position`` in ``chain`` of a ``nft -j list table`` answer;
    the packets of the named ``counter`` when given, else of the rule's own ``counter``."""
    rules = [i["rule"] for i in listing.get("nftables", []) if "rule" in i and i["rule"].get("chain") == chain]
    if position >= len(rules):
        return None, None
    rule = rules[position]
    if counter is not None:
        return rule.get("handle"), nft.counters(listing).get(counter)
    for expr in rule.get("expr", []):
        c = expr.get("counter") if isinstance(expr, dict) else None
        if isinstance(c, dict) and "packets" in c:
            return rule.get("handle"), int(c["packets"])
    return rule.get("handle"), None


def find(
    rules_text: str,
    listing: Mapping[str, Any],
    *,
    chain: str,
    contains: Sequence[str],
    excludes: Sequence[str] = (),
    counter: str | None = None,
) -> Found | None:
    where = locate(rules_text, chain, contains, excludes)
    if where is None:
        return None
    handle, packets = in_listing(listing, chain, where[0], counter)
    return Found(where[1], handle, packets)
