"""Topology binds each of its endpoints exactly once, each to the method of its verb."""

from __future__ import annotations

from typing import cast

import asyncpg

from scopenet.bus.client import BusClient
from scopenet.contracts.subjects import TOPOLOGY_ENDPOINTS
from scopenet.services.topology.handlers import build, routes
from scopenet.services.topology.ipam_client import IpamClient
from scopenet.services.topology.settings import TopologySettings


def test_every_endpoint_is_bound_once_in_the_index_order() -> None:
    # Building the routes touches neither the database nor NATS.
    deps = build(cast(asyncpg.Pool, None), IpamClient(cast(BusClient, None)), TopologySettings())
    bound = routes(deps)
    assert [r.endpoint for r in bound] == list(TOPOLOGY_ENDPOINTS)
    for r in bound:
        assert r.handler.__name__ == r.endpoint.verb, r.endpoint.subject
