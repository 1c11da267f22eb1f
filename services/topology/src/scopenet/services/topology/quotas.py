"""Topology's quota resources (docs/neutron.md#quotas): networks, subnets, ports, routers,
floating IPs and RBAC entries on networks, counted per owning project.

A row whose saga has not finished (``allocating``; a floating IP without its address yet) is
``reserved``: it counts against the limit from the moment it is inserted, so a saga's slow IPAM
step cannot let another create past the limit."""

from __future__ import annotations

from collections.abc import Mapping

from scopenet.store.quotas import QuotaBook


def _saga(table: str) -> str:
    return (
        "SELECT count(*) FILTER (WHERE state <> 'allocating') AS used, "
        f"count(*) FILTER (WHERE state = 'allocating') AS reserved FROM {table} WHERE project_id = $1"
    )


COUNTS = {
    "network": "SELECT count(*) AS used, 0 AS reserved FROM networks WHERE project_id = $1",
    "subnet": _saga("subnets"),
    "port": _saga("ports"),
    "router": _saga("routers"),
    "floatingip": (
        "SELECT count(*) FILTER (WHERE floating_ip_address IS NOT NULL) AS used, "
        "count(*) FILTER (WHERE floating_ip_address IS NULL) AS reserved FROM floatingips WHERE project_id = $1"
    ),
    "rbac_policy": "SELECT count(*) AS used, 0 AS reserved FROM network_rbac WHERE project_id = $1",
}

EVENT_RESOURCE = "topology_quota"


def book(defaults: Mapping[str, int]) -> QuotaBook:
    return QuotaBook(defaults=dict(defaults), counts=COUNTS)
