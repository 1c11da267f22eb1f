"""Topology's quota resources and their defaults: Neutron 29's ``[QUOTAS]`` options (docs/neutron.md#quotas)."""

from __future__ import annotations

from scopenet.contracts.quotas import TOPOLOGY_RESOURCES
from scopenet.services.topology import quotas
from scopenet.services.topology.settings import TopologySettings

NEUTRON = {"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50, "rbac_policy": 10}


def test_defaults_are_neutrons() -> None:
    # Field defaults, not TopologySettings(): the test session sets SCOPENET_TOPOLOGY_QUOTA_* to -1.
    fields = TopologySettings.model_fields
    assert {name: fields[f"topology_quota_{name}"].default for name in NEUTRON} == NEUTRON


def test_every_resource_of_the_contract_is_counted() -> None:
    book = quotas.book(dict.fromkeys(TOPOLOGY_RESOURCES, -1))
    assert set(book.counts) == set(TOPOLOGY_RESOURCES) == set(NEUTRON)
