"""The L3 agent process across restarts, through the whole stack (see ``tests/netns/stack.py``).

"Converged" is checked exactly, not by sampling: for every router topology holds, the kernel plan
from its current RouterSpec to what the kernel has is *empty* — links, peers on the right bridges,
addresses, routes, sysctls, and an nftables table whose listing is identical to the same ruleset
written once into a scratch namespace (so no rule is missing or doubled) — no other router
namespace exists, and the host namespace holds exactly the bridges and veth ends those routers
need (nothing left over from a killed apply).
"""

# The module-scoped fixtures `box` and `stack` are imported, then requested by name:
# ruff: noqa: F401, F811

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from scopenet.contracts.routerspec import router_subject
from scopenet.datapath import desired_state, nft, plan
from scopenet.netlink import libnft
from tests.helpers import eventually, seconds_until
from tests.integration.conftest import ADMIN
from tests.integration.topology.conftest import project
from tests.netns.stack import AgentProcess, Box, Stack, box, reference_fingerprint, stack

pytestmark = pytest.mark.netns

AGENT = f"restart-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
async def agent(box: Box, stack: Stack) -> AsyncIterator[AgentProcess]:
    proc = AgentProcess(box, stack, agent_id=AGENT).start()
    await proc.ready()
    yield proc
    await proc.stop()


@pytest.fixture(scope="module")
async def external(stack: Stack) -> str:
    return str((await stack.mk.external(v4="192.0.2.0/24")).id)


_counter = iter(range(1, 250))


async def make_router(stack: Stack, external: str) -> dict[str, Any]:
    """A router with a gateway and an IPv4 and an IPv6 interface on a network of its own."""
    mk, ctx, i = stack.mk, project(), next(_counter)
    net = await mk.network(ctx)
    v4 = await mk.subnet(ctx, net, cidr=f"10.{i}.0.0/24")
    v6 = await mk.subnet(ctx, net, cidr=f"fd00:{i}::/64", gateway_ip=f"fd00:{i}::1")
    router = await mk.router(ctx, external_gateway_info={"network_id": external})
    for s in (v4, v6):
        await mk.attach(ctx, router, s)
    return {"id": str(router.id), "ctx": ctx, "net": net, "v4": v4, "v6": v6}


async def drift(stack: Stack, box: Box, router: str) -> list[str]:
    """What the agent would still have to do for ``router`` (empty: the kernel matches its spec)."""
    spec = await stack.topo("router.spec", ADMIN, id=router)
    desired = desired_state(spec, owner=AGENT)
    if desired is None:
        return [] if router not in await box.kernel.routers() else ["remove"]
    desired = dataclasses.replace(desired, nft_fingerprint=await reference_fingerprint(box, desired.nft.text))
    return plan(desired, await box.kernel.observe(router, desired)).describe()


async def host_links(box: Box) -> set[str]:
    assert box.kernel.host_ipr is not None
    return {m.get("ifname") async for m in await box.kernel.host_ipr.link("dump")}


async def assert_exactly(stack: Stack, box: Box, routers: list[str]) -> None:
    assert sorted(await box.kernel.routers()) == sorted(routers)
    wanted = {"lo"}
    for rid in routers:
        assert await drift(stack, box, rid) == [], f"router {rid} not converged"
        state = desired_state(await stack.topo("router.spec", ADMIN, id=rid), owner=AGENT)
        assert state is not None
        wanted |= {v.peer for v in state.veths} | set(state.bridges)
    assert await host_links(box) == wanted


async def converged(stack: Stack, box: Box, routers: list[str]) -> bool:
    """Every router's current spec is in the kernel and topology shows it ACTIVE."""
    for rid in routers:
        if await drift(stack, box, rid):
            return False
    return await all_active(stack, routers)


async def all_active(stack: Stack, routers: list[str]) -> bool:
    for rid in routers:
        if (await stack.topo("router.get", ADMIN, id=rid)).router.status != "ACTIVE":
            return False
    return True


async def test_restart_with_changed_specs_converges(stack: Stack, box: Box, agent: AgentProcess, external: str) -> None:
    r1, r2 = await make_router(stack, external), await make_router(stack, external)
    await eventually(lambda: converged(stack, box, [r1["id"], r2["id"]]), timeout=15, what="r1, r2 applied")
    await assert_exactly(stack, box, [r1["id"], r2["id"]])

    assert await agent.stop() == 0  # SIGTERM: a clean exit; the kernel keeps forwarding
    assert sorted(await box.kernel.routers()) == sorted([r1["id"], r2["id"]])
    # While it is down: r1 loses its IPv6 interface and gains a floating IP, r2 goes, r3 comes.
    mk, ctx = stack.mk, r1["ctx"]
    await stack.topo("router.remove_router_interface", ctx, id=r1["id"], subnet_id=str(r1["v6"].id))
    port = await mk.port(ctx, r1["net"], device_owner="compute:nova")
    await stack.topo("floatingip.create", ctx, floatingip={"floating_network_id": external, "port_id": str(port.id)})
    await stack.topo("router.remove_router_interface", r2["ctx"], id=r2["id"], subnet_id=str(r2["v4"].id))
    await stack.topo("router.remove_router_interface", r2["ctx"], id=r2["id"], subnet_id=str(r2["v6"].id))
    await stack.topo("router.delete", r2["ctx"], id=r2["id"])
    r3 = await make_router(stack, external)

    agent.start()
    ready = await agent.ready()
    await assert_exactly(stack, box, [r1["id"], r3["id"]])
    took = await seconds_until(lambda: all_active(stack, [r1["id"], r3["id"]]), timeout=10, what="r1, r3 ACTIVE")
    print(
        f"\nrestart with changed specs: ready (converged) {ready:.2f} s after the process started, ACTIVE +{took:.2f} s"
    )


async def test_kill9_mid_apply_then_restart_leaves_no_leftovers_nor_duplicates(
    stack: Stack, box: Box, agent: AgentProcess, external: str
) -> None:
    before = await box.kernel.routers()
    assert await agent.stop() == 0
    new = [(await make_router(stack, external))["id"] for _ in range(6)]
    agent.start()
    t0 = time.monotonic()
    await eventually(lambda: _more(box, before), timeout=30, every=0.002, what="the first new router namespace")
    agent.kill9()
    killed_after = time.monotonic() - t0
    pending = [r for r in new if await drift(stack, box, r)]
    assert pending, "the agent finished every router before it was killed: nothing was mid-apply"

    agent.start()
    ready = await agent.ready()
    await assert_exactly(stack, box, before + new)
    await eventually(lambda: all_active(stack, before + new), timeout=10, what="every router ACTIVE")
    print(
        f"\nkill -9 {killed_after * 1000:.0f} ms after start, {len(pending)}/{len(new)} routers unfinished; "
        f"restarted agent converged in {ready:.2f} s"
    )


async def _more(box: Box, before: list[str]) -> bool:
    return len(await box.kernel.routers()) > len(before)


async def test_malformed_spec_is_dead_lettered_and_the_agent_carries_on(
    stack: Stack, box: Box, agent: AgentProcess, external: str
) -> None:
    js = stack.nc.jetstream()
    dlq = await js.pull_subscribe(
        "scopenet.v1.dlq.l3-agent",
        durable=None,
        stream="SCOPENET_DLQ",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, inactive_threshold=30),
    )
    bogus = uuid.uuid4()
    await js.publish(router_subject(AGENT, bogus), b'{"type": "scopenet.v1.router_spec", "revision": -1}')
    other = uuid.uuid4()  # a well-formed spec, but for another agent, on this agent's subject
    await js.publish(
        router_subject(AGENT, other),
        json.dumps({"router_id": str(other), "revision": 1, "agent_id": "someone-else"}).encode(),
    )
    letters: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while len(letters) < 2:
            for msg in await dlq.fetch(2, timeout=5):
                letters.append(json.loads(msg.data))
                await msg.ack()
    by_subject = {letter["subject"]: letter["reason"] for letter in letters}
    assert by_subject[router_subject(AGENT, bogus)].startswith("malformed RouterSpec:")
    assert "someone-else" in by_subject[router_subject(AGENT, other)]
    assert agent.proc is not None and agent.proc.poll() is None
    assert (await agent.readyz())[0] == 200
    # ... and it still does its job.
    routers = await box.kernel.routers()
    fresh = await make_router(stack, external)
    await eventually(lambda: converged(stack, box, [fresh["id"]]), timeout=10, what="a router after the garbage")
    await assert_exactly(stack, box, [*routers, fresh["id"]])
