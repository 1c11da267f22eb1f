"""Which lane each object of a snapshot belongs to, and the verdict of each lane crossing a router
makes (pure). A lane is one address scope and IP version (``s:<scope>:<v>``), the unscoped
addresses of a version (``u:<v>``), or the external networks (``external``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from scopenet.datapath.reachability import edge_verdict
from scopenet.services.api.ui.data import Snapshot

EXTERNAL = "external"
INTERFACE_OWNERS = frozenset(
    {"network:router_interface", "network:router_interface_distributed", "network:ha_router_replicated_interface"}
)


def scope_lane(scope_id: str | None, version: int) -> str:
    return f"s:{scope_id}:{version}" if scope_id else f"u:{version}"


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    verdict: str
    """``routed``, ``snat`` or ``dropped`` (``edge_verdict``: what the router's rules do)."""


class Index:
    """Lookups over one snapshot, built once per page."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.pools = {p["subnetpool_id"]: p for p in snap.pools}
        self.networks = {n["id"]: n for n in snap.networks}
        self.subnets = {s["id"]: s for s in snap.subnets}
        self.scope_names = {s["id"]: s.get("name") or "" for s in snap.scopes}
        self.interfaces: dict[str, list[dict[str, Any]]] = {}
        for port in snap.router_ports:
            if port.get("device_owner") in INTERFACE_OWNERS:
                self.interfaces.setdefault(port.get("device_id") or "", []).append(port)

    def is_external(self, network_id: str | None) -> bool:
        net = self.networks.get(network_id or "")
        return bool(net and net.get("router:external"))

    def pool_lane(self, pool: dict[str, Any]) -> str:
        return scope_lane(pool.get("address_scope_id"), int(pool.get("ip_version") or 4))

    def subnet_scope(self, subnet: dict[str, Any]) -> str | None:
        pool = self.pools.get(subnet.get("subnetpool_id") or "")
        return pool.get("address_scope_id") if pool else None

    def subnet_lane(self, subnet: dict[str, Any]) -> str:
        if self.is_external(subnet.get("network_id")):
            return EXTERNAL
        return scope_lane(self.subnet_scope(subnet), int(subnet.get("ip_version") or 4))

    def network_lanes(self, network: dict[str, Any]) -> list[str]:
        if network.get("router:external"):
            return [EXTERNAL]
        lanes = {self.subnet_lane(self.subnets[s]) for s in network.get("subnets") or [] if s in self.subnets}
        return sorted(lanes) or ["u:4"]

    def router_edges(self, router: dict[str, Any]) -> tuple[list[str], list[Edge]]:
        """The lanes a router touches and the verdict of every crossing between them."""
        sides: list[tuple[str, int, str | None]] = []  # (lane, family, scope)
        for port in self.interfaces.get(router["id"], []):
            for ip in port.get("fixed_ips") or []:
                subnet = self.subnets.get(ip.get("subnet_id") or "")
                if subnet is not None:
                    side = (self.subnet_lane(subnet), int(subnet.get("ip_version") or 4), self.subnet_scope(subnet))
                    if side not in sides:
                        sides.append(side)
        gateway = router.get("external_gateway_info") or None
        lanes = sorted({lane for lane, _, _ in sides} | ({EXTERNAL} if gateway else set()))
        edges: set[Edge] = set()
        for i, (lane_a, family, scope_a) in enumerate(sides):
            for lane_b, family_b, scope_b in sides[i + 1 :]:
                if family_b == family and lane_b != lane_a:
                    verdict = edge_verdict(family=family, ingress_scope=_uuid(scope_a), egress_scope=_uuid(scope_b))
                    first, second = sorted((lane_a, lane_b))
                    edges.add(Edge(first, second, verdict))
            if gateway and lane_a != EXTERNAL:
                ext = self.networks.get(gateway.get("network_id") or "") or {}
                verdict = edge_verdict(
                    family=family,
                    ingress_scope=_uuid(scope_a),
                    egress="gateway",
                    snat=gateway.get("enable_snat", True) is not False,
                    external_scope=_uuid(ext.get(f"ipv{family}_address_scope")),
                )
                edges.add(Edge(lane_a, EXTERNAL, verdict))
        return lanes, sorted(edges, key=lambda e: (e.a, e.b, e.verdict))

    def lane_title(self, key: str) -> str:
        if key == EXTERNAL:
            return "external networks"
        if key.startswith("u:"):
            return f"unscoped IPv{key[2:]}"
        _, scope, version = key.split(":")
        return f"{self.scope_names.get(scope) or scope} (IPv{version})"


def _uuid(raw: str | None) -> uuid.UUID | None:
    return uuid.UUID(raw) if raw else None
