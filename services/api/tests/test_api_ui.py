"""The web UI's pure parts: lanes and verdicts of the scope map, collapse and grouping at scale,
findings, a pool's space map, one-time login tickets, and names rendered as text in the SVG."""

from __future__ import annotations

import uuid
from typing import Any

from scopenet.services.api.ui import findings, poolmap, scopemap
from scopenet.services.api.ui.data import Snapshot
from scopenet.services.api.ui.routes import ENV
from scopenet.services.api.ui.session import Tickets

SCOPE = str(uuid.uuid4())


def _id() -> str:
    return str(uuid.uuid4())


def seed(routers: int = 1, evil: str = "net1") -> Snapshot:
    pool = {"subnetpool_id": _id(), "subnetpool_name": "pool4", "address_scope_id": SCOPE, "ip_version": 4,
            "prefixes": ["203.0.113.0/24"], "total_ips": 256, "used_ips": 230}  # fmt: skip
    ext = {"id": _id(), "name": "public", "router:external": True, "subnets": [], "ipv4_address_scope": SCOPE}
    snap = Snapshot(scopes=[{"id": SCOPE, "name": "scope4", "ip_version": 4}], pools=[pool], networks=[ext])
    for i in range(routers):
        n1 = {"id": _id(), "name": evil if i == 0 else f"net1-{i}", "subnets": []}
        n2 = {"id": _id(), "name": f"net2-{i}", "subnets": []}
        s1 = {"id": _id(), "name": f"s1-{i}", "network_id": n1["id"], "cidr": f"10.0.{i % 256}.0/24", "ip_version": 4}
        s2 = {"id": _id(), "name": f"s2-{i}", "network_id": n2["id"], "cidr": "203.0.113.0/26", "ip_version": 4,
              "subnetpool_id": pool["subnetpool_id"]}  # fmt: skip
        n1["subnets"], n2["subnets"] = [s1["id"]], [s2["id"]]
        r = {
            "id": _id(),
            "name": f"router-{i}",
            "external_gateway_info": {"network_id": ext["id"], "enable_snat": True},
        }
        owner = "network:router_interface"
        ports = [{"device_owner": owner, "device_id": r["id"], "fixed_ips": [{"subnet_id": s["id"]}]} for s in (s1, s2)]
        snap.networks += [n1, n2]
        snap.subnets += [s1, s2]
        snap.routers.append(r)
        snap.router_ports += ports
    snap.floatingips.append({"id": _id(), "floating_ip_address": "203.0.113.70", "fixed_ip_address": "203.0.113.5"})
    return snap


def test_lanes_hold_pools_and_subnets_and_the_router_bridges_them_by_verdict() -> None:
    m = scopemap.build(seed())
    lanes = {lane.key: lane for lane in m.lanes}
    assert list(lanes) == ["external", f"s:{SCOPE}:4", "u:4", "u:6"]
    scoped = lanes[f"s:{SCOPE}:4"]
    assert scoped.title == "scope4 (IPv4)"
    pool = next(c for c in scoped.chips if c.kind == "pool")
    assert pool.used_percent == 89.8
    (router,) = m.routers
    verdicts = {(e.a, e.b): e.verdict for e in router.edges}
    assert verdicts == {(f"s:{SCOPE}:4", "u:4"): "dropped", (f"s:{SCOPE}:4", "external"): "routed",
                        ("u:4", "external"): "snat"}  # fmt: skip
    assert len(router.arcs) == 3 and len(router.dots) == 3


def test_at_scale_lanes_collapse_and_routers_group() -> None:
    m = scopemap.build(seed(routers=300))
    unscoped = next(lane for lane in m.lanes if lane.key == "u:4")
    assert unscoped.collapsed and unscoped.counts["subnet"] == 300 and unscoped.chips == []
    assert m.grouped and len(m.routers) == 1 and m.routers[0].count == 300
    expanded = scopemap.build(seed(routers=300), expanded=frozenset({"u:4"}))
    assert len(next(lane for lane in expanded.lanes if lane.key == "u:4").chips) == 600
    found = scopemap.build(seed(routers=300), query="router-17")
    assert {r.name for r in found.routers} >= {"router-17"} and not found.grouped


def test_findings() -> None:
    f = findings.build(seed())
    assert [s["router"]["name"] for s in f.spanning] == ["router-0"]
    assert [x["subnet"]["name"] for x in f.snatted] == ["s1-0"]
    assert [x["floatingip"]["floating_ip_address"] for x in f.scoped_fips] == ["203.0.113.70"]
    assert [p["subnetpool_name"] for p in f.full_pools] == ["pool4"]
    assert f.matrix[("u:4", f"s:{SCOPE}:4")]["dropped"] == 1


def test_space_map_blocks_are_proportional_with_a_floor() -> None:
    usage: dict[str, Any] = {"prefixes": [{"cidr": "10.0.0.0/24", "blocks": [
        {"cidr": "10.0.0.0/25", "status": "allocated", "size": 128, "subnet_id": "x"},
        {"cidr": "10.0.0.128/32", "status": "free", "size": 1, "suggested": None},
        {"cidr": "10.0.0.129/32", "status": "free", "size": 127, "suggested": "10.0.0.192/26"}]}]}  # fmt: skip
    m = poolmap.build(usage)
    assert [b.x for b in m.blocks] == [0, 500, 506] and m.blocks[1].w >= 1
    assert m.blocks[2].suggested == "10.0.0.192/26"


def test_tickets_are_single_use_and_expire() -> None:
    t = Tickets()
    ticket = t.mint("tok")
    assert t.redeem(ticket) == "tok" and t.redeem(ticket) is None
    assert Tickets(ttl=-1).redeem(Tickets(ttl=-1).mint("tok")) is None
    assert t.redeem("guess") is None


def test_names_render_as_text_in_the_svg() -> None:
    evil = '</text><script>alert(1)</script><img src=x onerror="alert(2)">'
    m = scopemap.build(seed(evil=evil))
    html = ENV.get_template("_map.svg").render(map=m, q="", expand=[])
    assert "<script>" not in html and "<img" not in html and "&lt;/text&gt;&lt;script&gt;" in html
