"""IPAM's quota resources (docs/neutron.md#quotas): subnet pools, address scopes and the RBAC
entries on them, counted per owning project. Creates are instant here (no saga), so nothing is
ever ``reserved``."""

from __future__ import annotations

from collections.abc import Mapping

from scopenet.store.quotas import QuotaBook

COUNTS = {
    "subnetpool": "SELECT count(*) AS used, 0 AS reserved FROM subnetpools WHERE project_id = $1",
    "address_scope": "SELECT count(*) AS used, 0 AS reserved FROM address_scopes WHERE project_id = $1",
    "rbac_policy": "SELECT count(*) AS used, 0 AS reserved FROM rbac_policies WHERE project_id = $1",
}

EVENT_RESOURCE = "quota"


def book(defaults: Mapping[str, int]) -> QuotaBook:
    return QuotaBook(defaults=dict(defaults), counts=COUNTS)
