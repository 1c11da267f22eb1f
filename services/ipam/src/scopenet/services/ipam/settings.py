"""IPAM's settings: the shared ones, those of a Postgres-backed service, and its own
``SCOPENET_IPAM_*`` knobs: the default per-project quotas of what it creates."""

from __future__ import annotations

from pydantic import Field

from scopenet.contracts.quotas import MAX_LIMIT, UNLIMITED
from scopenet.store.settings import StoreSettings


class IpamSettings(StoreSettings):
    """Everything the ``ipam`` service reads (``SCOPENET_*`` and ``SCOPENET_IPAM_*``)."""

    ipam_quota_subnetpool: int = Field(default=UNLIMITED, ge=UNLIMITED, le=MAX_LIMIT)
    """Subnet pools a project may own unless an admin set its own limit; -1 is unlimited (Neutron's
    ``[QUOTAS] default_quota``)."""

    ipam_quota_address_scope: int = Field(default=UNLIMITED, ge=UNLIMITED, le=MAX_LIMIT)
    """Address scopes a project may own; -1 is unlimited (Neutron has no such quota)."""

    ipam_quota_rbac_policy: int = Field(default=10, ge=UNLIMITED, le=MAX_LIMIT)
    """RBAC entries on address scopes and subnet pools a project may own; -1 is unlimited (Neutron's
    ``quota_rbac_policy``; entries on networks are limited apart, by topology)."""

    def quota_defaults(self) -> dict[str, int]:
        return {
            "subnetpool": self.ipam_quota_subnetpool,
            "address_scope": self.ipam_quota_address_scope,
            "rbac_policy": self.ipam_quota_rbac_policy,
        }
