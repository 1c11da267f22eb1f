"""IPAM binds each of its endpoints exactly once, each to the method of its resource and verb."""

from __future__ import annotations

from typing import cast

import asyncpg
import pytest

from scopenet.bus.micro import Route, bound_once
from scopenet.contracts.subjects import IPAM_ENDPOINTS, TOPOLOGY_ENDPOINTS
from scopenet.services.ipam.handlers import routes


def test_every_endpoint_is_bound_once_in_the_index_order() -> None:
    bound = routes(cast(asyncpg.Pool, None))  # building the routes touches no database
    assert [r.endpoint for r in bound] == list(IPAM_ENDPOINTS)
    for r in bound:
        method = r.handler.__name__.rstrip("_")  # ``list_``: the verb ``list``
        assert method == r.endpoint.verb, r.endpoint.subject


def test_bound_once_refuses_a_missing_a_doubled_and_a_foreign_endpoint() -> None:
    bound = routes(cast(asyncpg.Pool, None))
    with pytest.raises(ValueError, match=r"ipam\.address_scope\.create is not bound"):
        bound_once(bound[1:], IPAM_ENDPOINTS)
    with pytest.raises(ValueError, match="is bound 2 times"):
        bound_once([*bound, bound[0]], IPAM_ENDPOINTS)
    foreign = Route(TOPOLOGY_ENDPOINTS[0], bound[0].handler)
    with pytest.raises(ValueError, match="is not an endpoint of this service"):
        bound_once([*bound, foreign], IPAM_ENDPOINTS)
