"""openstacksdk used directly (the library Terraform-like tools and scripts use), same flow."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import openstack

from scopenet.services.api.app import RunningApi
from tests.integration.api.conftest import ALICE_PROJECT, TOKENS


def connect(url: str, who: str) -> Any:
    return openstack.connect(auth_type="admin_token", auth={"token": TOKENS[who][0], "endpoint": url})


def flow(url: str) -> dict[str, Any]:
    admin, alice = connect(url, "admin"), connect(url, "alice")
    tag = uuid.uuid4().hex[:8]
    scope = alice.network.create_address_scope(name=f"sdk-scope-{tag}", ip_version=4)
    assert admin.network.get_address_scope(scope.id).project_id == ALICE_PROJECT
    pool = alice.network.create_subnet_pool(
        name=f"sdk-pool-{tag}", prefixes=["100.64.0.0/16"], address_scope_id=scope.id, default_prefix_length=24
    )
    alice.network.update_subnet_pool(pool, description="via sdk")
    alice.network.set_tags(pool, ["sdk", tag])
    found = list(alice.network.subnet_pools(tags=tag))
    out: dict[str, Any] = {"scope": scope, "pool": alice.network.get_subnet_pool(pool.id), "found": found}
    net = alice.network.create_network(name=f"sdk-net-{tag}")
    sub = alice.network.create_subnet(network_id=net.id, ip_version=4, subnet_pool_id=pool.id)
    out["subnet"] = sub
    out["network"] = alice.network.get_network(net.id)
    alice.network.delete_subnet(sub)
    alice.network.delete_network(net)
    alice.network.delete_subnet_pool(pool)
    alice.network.delete_address_scope(scope)
    out["left"] = [p.id for p in alice.network.subnet_pools() if p.id == pool.id]
    return out


async def test_openstacksdk_flow(api_server: RunningApi) -> None:
    out = await asyncio.to_thread(flow, api_server.url)
    pool = out["pool"]
    assert pool.address_scope_id == out["scope"].id and pool.project_id == ALICE_PROJECT
    assert (pool.default_prefix_length, pool.minimum_prefix_length) == (24, 8)
    assert pool.description == "via sdk" and sorted(pool.tags)[0] != "" and "sdk" in pool.tags
    assert [p.id for p in out["found"]] == [pool.id]
    assert out["subnet"].cidr == "100.64.0.0/24"
    assert out["network"].ipv4_address_scope_id == out["scope"].id
    assert out["left"] == []
