"""IPAM's quota resources and their defaults (docs/neutron.md#quotas)."""

from __future__ import annotations

import pytest

from scopenet.contracts.quotas import IPAM_RESOURCES
from scopenet.services.ipam import quotas
from scopenet.services.ipam.settings import IpamSettings
from scopenet.store.quotas import QuotaBook


def test_defaults() -> None:
    # Field defaults, not IpamSettings(): the test session sets SCOPENET_IPAM_QUOTA_* to -1.
    fields = IpamSettings.model_fields
    got = {name: fields[f"ipam_quota_{name}"].default for name in IPAM_RESOURCES}
    assert got == {"subnetpool": -1, "address_scope": -1, "rbac_policy": 10}  # Neutron: default_quota, -, 10


def test_every_resource_of_the_contract_is_counted() -> None:
    assert set(quotas.book(dict.fromkeys(IPAM_RESOURCES, -1)).counts) == set(IPAM_RESOURCES)


def test_a_book_needs_a_count_for_every_default() -> None:
    with pytest.raises(ValueError, match="without a count or a default"):
        QuotaBook(defaults={"subnetpool": 1, "bogus": 2}, counts=quotas.COUNTS)
