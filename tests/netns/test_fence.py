"""The fence: a dead agent's routers go quiet on their own, a restarted one's come back.

Whole stack (``tests/netns/stack.py``) with a short heartbeat TTL (4 s) so the kernel lease is
3.5 s. An instance on a router's network, in the agent's host namespace, pings the router's
gateway address: that is the router answering on its network, which is exactly what two live
copies of one router would both do.
"""

# The module-scoped fixtures `box` and `stack` are imported, then requested by name:
# ruff: noqa: F401, F811

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scopenet.datapath import names
from scopenet.netlink import TestInstance
from scopenet.netlink import fence as fence_io
from scopenet.services.topology.settings import TopologySettings
from tests.helpers import eventually, seconds_until
from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import project
from tests.netns.probes import ping
from tests.netns.stack import AgentProcess, Box, Stack, box, stack

pytestmark = pytest.mark.netns

TOPOLOGY = TopologySettings(topology_reconcile_interval=1.0, topology_stale_after=3.0, topology_agent_ttl=4.0)
HEARTBEAT = 0.5
LEASE = 4.0 - HEARTBEAT
AGENT = f"fence-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
async def router(stack: Stack) -> dict[str, Any]:
    mk, ctx = stack.mk, project()
    net = await mk.network(ctx)
    subnet = await mk.subnet(ctx, net, cidr="10.77.0.0/24")
    r = await mk.router(ctx)
    await mk.attach(ctx, r, subnet)
    return {"id": str(r.id), "seg": net.provider_segmentation_id}


async def answers(inst: TestInstance) -> bool:
    return await ping(inst, "10.77.0.1", timeout=0.3)


async def quiet(inst: TestInstance) -> bool:
    return not await answers(inst)


async def active(stack: Stack, router: str, agent: str) -> bool:
    r = (await stack.topo("router.get", ADMIN, id=router)).router
    spec = await stack.topo("router.spec", ADMIN, id=router)
    return r.status == "ACTIVE" and spec.agent_id == agent


async def test_a_dead_agents_routers_go_quiet_within_the_lease_and_come_back_with_it(
    stack: Stack, box: Box, router: dict[str, Any]
) -> None:
    env = {"SCOPENET_AGENT_HEARTBEAT_INTERVAL": str(HEARTBEAT)}
    async with _agent(box, stack, env) as agent:
        await _kill_and_restart(stack, box, router, agent)


async def _kill_and_restart(stack: Stack, box: Box, router: dict[str, Any], agent: AgentProcess) -> None:
    await agent.ready()
    await eventually(lambda: active(stack, router["id"], AGENT), timeout=15, what="router ACTIVE")
    # The bridge is there once the router is: plug the instance now.
    async with _instance(box, router) as inst:
        await eventually(lambda: answers(inst), timeout=10, what="router answers")
        await eventually(lambda: _leased(box), timeout=5, what="lease renewed")
        ports, leased, _ = await fence_io.state(box.kernel)
        assert leased == {"arp", "ip", "ip6"}
        assert len(ports) == 1 and inst.peer not in ports  # the router's port is guarded, the instance's not

        killed = time.monotonic()
        agent.kill9()
        # The router keeps forwarding while the lease lasts (a quick restart loses nothing) ...
        assert await answers(inst)
        went_quiet = await seconds_until(lambda: quiet(inst), timeout=LEASE + 3, every=0.1, what="router quiet")
        assert went_quiet <= LEASE + 1.5, f"quiet {went_quiet:.1f} s after the kill (lease {LEASE} s)"
        _, leased, fenced = await fence_io.state(box.kernel)
        assert leased == set() and fenced > 0
        # ... and the namespace itself is still there: the agent that comes back adopts it.
        assert router["id"] in await box.kernel.routers()
        print(f"fence: router quiet {time.monotonic() - killed:.2f} s after kill -9 (lease {LEASE} s)")

        agent.start()
        await agent.ready()
        back = await seconds_until(lambda: answers(inst), timeout=15, every=0.1, what="router answers again")
        await eventually(lambda: active(stack, router["id"], AGENT), timeout=15, what="router ACTIVE again")
        print(f"fence: router answers again {back:.2f} s after the agent was ready")


@contextlib.asynccontextmanager
async def _agent(box: Box, stack: Stack, env: dict[str, str]) -> AsyncIterator[AgentProcess]:
    agent = AgentProcess(box, stack, agent_id=AGENT, **env).start()
    try:
        yield agent
    finally:
        await agent.stop()


async def _leased(box: Box) -> bool:
    ports, leased, _ = await fence_io.state(box.kernel)
    return bool(ports) and bool(leased)


@contextlib.asynccontextmanager
async def _instance(box: Box, router: dict[str, Any]) -> AsyncIterator[TestInstance]:
    """An instance on the router's network, plugged into the bridge in the agent's host namespace."""
    inst = await TestInstance.create(
        box.ns,
        name=f"vm-{uuid.uuid4().hex[:6]}",
        bridge=names.bridge(router["seg"]),
        mac="fa:16:3e:77:00:32",
        addresses=("10.77.0.50/24",),
        gateways=("10.77.0.1",),
        host=box.host,
    )
    try:
        yield inst
    finally:
        await inst.delete()


async def test_an_agent_with_the_fence_off_leaves_its_routers_forwarding(
    stack: Stack, box: Box, router: dict[str, Any]
) -> None:
    """``SCOPENET_AGENT_FENCE=off``: Neutron's behaviour — the kernel state outlives the agent."""
    env = {"SCOPENET_AGENT_HEARTBEAT_INTERVAL": str(HEARTBEAT), "SCOPENET_AGENT_FENCE": "off"}
    async with _agent(box, stack, env) as agent, _instance(box, router) as inst:
        await agent.ready()
        await eventually(lambda: active(stack, router["id"], AGENT), timeout=15, what="router ACTIVE")
        # The previous test left the fence table with its lease run out: "off" removes it.
        await eventually(lambda: answers(inst), timeout=10, what="router answers")
        assert await fence_io.state(box.kernel) == (frozenset(), frozenset(), 0)
        agent.kill9()
        await asyncio.sleep(LEASE + 1)
        assert await answers(inst)
