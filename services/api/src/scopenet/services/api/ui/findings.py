"""What an operator should look at (pure): the scope-by-scope verdict matrix, routers whose
interfaces span scopes (their cross-scope traffic is dropped without a word), unscoped subnets
leaving by SNAT, floating IPs on scoped subnets, and pools over 80 % used."""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scopenet.services.api.ui.data import Snapshot
from scopenet.services.api.ui.lanes import EXTERNAL, Index

FULL_PERCENT = 80.0


@dataclass
class Findings:
    lanes: list[tuple[str, str]] = field(default_factory=list)
    """(key, title) of the matrix's rows and columns."""
    matrix: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    """(lane a, lane b) → how many router crossings between them end in each verdict."""
    spanning: list[dict[str, Any]] = field(default_factory=list)
    snatted: list[dict[str, Any]] = field(default_factory=list)
    scoped_fips: list[dict[str, Any]] = field(default_factory=list)
    full_pools: list[dict[str, Any]] = field(default_factory=list)


def build(snap: Snapshot) -> Findings:
    ix = Index(snap)
    out = Findings()
    keys: set[str] = set()
    for r in snap.routers:
        lanes, edges = ix.router_edges(r)
        keys.update(lanes)
        for e in edges:
            out.matrix.setdefault((e.a, e.b), Counter())[e.verdict] += 1
            out.matrix.setdefault((e.b, e.a), Counter())[e.verdict] += 1
        dropped = sorted({(e.a, e.b) for e in edges if e.verdict == "dropped" and EXTERNAL not in (e.a, e.b)})
        if dropped:
            out.spanning.append({"router": r, "crossings": [(ix.lane_title(a), ix.lane_title(b)) for a, b in dropped]})
        gateway = r.get("external_gateway_info") or {}
        if gateway and gateway.get("enable_snat", True) is not False:
            for e in edges:
                if e.verdict == "snat" and e.a.startswith("u:"):
                    for port in ix.interfaces.get(r["id"], []):
                        for ip in port.get("fixed_ips") or []:
                            s = ix.subnets.get(ip.get("subnet_id") or "")
                            if s is not None and ix.subnet_lane(s) == e.a:
                                out.snatted.append({"router": r, "subnet": s})
    keys.update(ix.pool_lane(p) for p in snap.pools)
    out.lanes = [(k, ix.lane_title(k)) for k in sorted(keys, key=lambda k: (k != EXTERNAL, k.startswith("u:"), k))]
    scoped = [(ipaddress.ip_network(s["cidr"], strict=False), s) for s in snap.subnets
              if s.get("cidr") and ix.subnet_scope(s) and not ix.is_external(s.get("network_id"))]  # fmt: skip
    for f in snap.floatingips:
        fixed = f.get("fixed_ip_address")
        if fixed:
            addr = ipaddress.ip_address(fixed)
            hit = next((s for net, s in scoped if addr.version == net.version and addr in net), None)
            if hit is not None:
                out.scoped_fips.append({"floatingip": f, "subnet": hit, "scope": ix.lane_title(ix.subnet_lane(hit))})
    for p in snap.pools:
        total, used = int(p.get("total_ips") or 0), int(p.get("used_ips") or 0)
        if total and 100.0 * used / total > FULL_PERCENT:
            out.full_pools.append({**p, "used_percent": round(100.0 * used / total, 1)})
    out.snatted.sort(key=lambda x: (x["subnet"].get("name") or "", x["subnet"]["id"]))
    return out
