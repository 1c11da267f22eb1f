"""The reachability explainer agrees with the kernel: for every pair of the seed's connectivity
matrix (IPv4, IPv6, a floating IP, and both ways of a runtime scope flip of ``subnet-pool-ip4``), the
verdict and translated source that ``reachability.explain`` gives are what the packets do, and its
kernel evidence — the deciding rule's counter, read by the agent over NATS — moves with them.

The whole stack as ``test_stack_seed.py`` runs it (``tests/netns/seed_stack.py``): NATS commands →
IPAM and topology → RouterSpec → a real L3 agent process → the kernel of a private sandbox. A pair
the explainer calls ``routed``/``snat``/``dnat`` must answer a ping and show the receiver the
translated source (or the sender's own address); a ``dropped`` pair must stay silent while the
counter the explainer names (``drop_<egress>``) rises by the packets sent.
"""

# The module-scoped fixtures `box` and `stack` are imported, then requested by name:
# ruff: noqa: F401, F811

from __future__ import annotations

import asyncio

import pytest

from scopenet.contracts.reachability import Reachability
from scopenet.datapath import names
from scopenet.netlink import TestInstance
from tests.helpers import eventually
from tests.integration.conftest import ADMIN
from tests.netns.probes import BLOCKED_WAIT, echo_servers, ping, udp_seen
from tests.netns.seed_stack import World, applied
from tests.netns.stack import Box, Stack, box, stack
from tests.netns.test_stack_seed import AGENT, agent, world

pytestmark = pytest.mark.netns


class Check:
    """Explain a pair, then prove it with packets."""

    def __init__(self, stack: Stack, world: World) -> None:
        self.stack, self.w = stack, world
        self.ports = {world.inst1.name: world.inst1.port_id, world.inst2.name: world.inst2.port_id}
        self.ports[world.ext.name] = world.ext.port_id
        self.seen: list[str] = []

    async def explain(self, src: TestInstance, dst: str) -> Reachability:
        r: Reachability = await self.stack.topo(
            "reachability.explain", ADMIN, source=self.ports[src.name], destination=dst
        )
        return r

    async def __call__(self, src: TestInstance, dst: str, verdict: str, translated_source: str | None = None) -> None:
        """``verdict`` and ``translated_source`` are the seed's expectations (docs/datapath.md): the
        explainer must say them, and the packets must do what the explainer says."""
        r = await self.explain(src, dst)
        what = f"{src.name} -> {dst}"
        assert (r.verdict, r.translated_source) == (verdict, translated_source), f"{what}: {r}"
        assert r.kernel is not None, f"{what}: no kernel evidence ({r.kernel_reason})"
        assert r.kernel.rule is not None and r.kernel.namespace == names.namespace(self.w.router), r.kernel
        before = r.kernel.packets
        if verdict == "dropped":
            assert r.kernel.counter is not None and r.kernel.outcome == "drop", r.kernel
            assert r.kernel.counter in r.kernel.rule and "drop" in r.kernel.rule, r.kernel
            pinged, saw = await asyncio.gather(
                ping(src, dst, timeout=BLOCKED_WAIT), udp_seen(src, dst, timeout=BLOCKED_WAIT)
            )
            assert not pinged and saw is None, f"{what}: explained dropped, got ping={pinged} seen={saw}"
            after = (await self.explain(src, dst)).kernel
            assert after is not None and after.packets is not None and before is not None
            assert after.packets >= before + 2, f"{what}: {r.kernel.counter} {before} -> {after.packets}"
        else:
            pinged, saw = await asyncio.gather(ping(src, dst), udp_seen(src, dst))
            assert pinged, f"{what}: explained {verdict}, but no ping reply"
            expected = r.translated_source or r.source_ip
            assert saw == expected, f"{what}: explained source {expected}, the receiver saw {saw}"
            if before is not None and r.kernel.outcome != "pass":  # the deciding rule counts each new flow
                after = (await self.explain(src, dst)).kernel
                assert after is not None and after.packets is not None and after.packets > before, (what, r.kernel)
        self.seen.append(f"{what}: {r.verdict} ({r.kernel.chain}, {r.kernel.counter or 'rule counter'})")


async def test_explainer_matches_the_seed_matrix(stack: Stack, world: World) -> None:
    w, check = world, Check(stack, world)
    ext4, ext6, gw4 = w.ext.ip(4), w.ext.ip(6), w.gw[4]
    i1_4, i1_6, i2_4, i2_6 = w.inst1.ip(4), w.inst1.ip(6), w.inst2.ip(4), w.inst2.ip(6)
    async with echo_servers([w.ext, w.inst1, w.inst2]):
        await check(w.ext, i2_4, "routed")
        await check(w.inst2, ext4, "routed")
        await check(w.ext, i2_6, "routed")
        await check(w.inst2, ext6, "routed")
        await check(w.inst1, ext4, "snat", gw4)
        await check(w.ext, i1_4, "dropped")
        await check(w.inst1, i2_4, "dropped")
        await check(w.inst2, i1_4, "dropped")
        await check(w.inst1, i2_6, "dropped")
        await check(w.inst2, i1_6, "dropped")
        await check(w.ext, i1_6, "dropped")
        await check(w.inst1, ext6, "dropped")
    reasons = {r.code for r in (await check.explain(w.inst1, ext6)).reasons}
    assert reasons == {"UNSCOPED_NO_NAT66"}
    print("\n" + "\n".join(check.seen))


async def test_explainer_matches_a_floating_ip(stack: Stack, box: Box, world: World) -> None:
    w, check = world, Check(stack, world)
    body = {"floating_network_id": w.fip_network, "port_id": w.inst1_port}
    fip = (await stack.topo("floatingip.create", ADMIN, floatingip=body)).floatingip
    try:
        await eventually(lambda: applied(stack, box.kernel, w.router, AGENT), timeout=10, what="floating IP applied")
        address, ext4, i1_4, i2_4 = fip.floating_ip_address, w.ext.ip(4), w.inst1.ip(4), w.inst2.ip(4)
        async with echo_servers([w.ext, w.inst1, w.inst2]):
            await check(w.ext, address, "dnat")
            await check(w.inst1, ext4, "snat", address)
            await check(w.ext, i1_4, "dropped")
            await check(w.inst1, i2_4, "routed")  # float-snat re-marks it into the external scope
            await check(w.inst2, i1_4, "dropped")
            await check(w.inst2, address, "dnat", w.gw[4])  # hairpin: DNAT, then SNAT to the gateway
        dnat = await check.explain(w.ext, address)
        assert dnat.translated_destination == i1_4 and dnat.kernel is not None
        assert dnat.kernel.chain == "nat_prerouting" and f"dnat ip to {i1_4}" in (dnat.kernel.rule or "")
    finally:
        await stack.topo("floatingip.delete", ADMIN, id=fip.id)
        await eventually(lambda: applied(stack, box.kernel, w.router, AGENT), timeout=10, what="floating IP gone")


async def flipped(stack: Stack, box: Box, w: World, scope: str | None) -> bool:
    """The mirror has the pool's new scope in router1's spec (network2's IPv4 port), and the kernel has that spec."""
    spec = await stack.topo("router.spec", ADMIN, id=w.router)
    net2 = next(p for p in spec.interfaces if any(a.ip_address in w.inst2.gateways for a in p.addresses))
    now = str(net2.scope_v4.id) if net2.scope_v4.id else None
    return now == scope and await applied(stack, box.kernel, w.router, AGENT)


async def test_explainer_follows_a_runtime_scope_flip(stack: Stack, box: Box, world: World) -> None:
    w, check = world, Check(stack, world)
    ext4, i2_4 = w.ext.ip(4), w.inst2.ip(4)
    await stack.ipam("subnetpool.update", ADMIN, id=w.pool4, subnetpool={"address_scope_id": None})
    try:
        await eventually(lambda: flipped(stack, box, w, None), timeout=10, what="flip applied")
        async with echo_servers([w.ext, w.inst1, w.inst2]):
            await check(w.inst2, ext4, "snat", w.gw[4])
            await check(w.ext, i2_4, "dropped")
            await check(w.inst1, i2_4, "routed")  # both unscoped now
            await check(w.ext, w.inst2.ip(6), "routed")  # IPv6 is another pool: unchanged
        fix = (await check.explain(w.ext, i2_4)).fix
        assert any("move subnet-pool subnet-pool-ip4 into scope" in f for f in fix), fix
    finally:
        await stack.ipam("subnetpool.update", ADMIN, id=w.pool4, subnetpool={"address_scope_id": w.scope4})
    await eventually(lambda: flipped(stack, box, w, w.scope4), timeout=10, what="flip back applied")
    async with echo_servers([w.ext, w.inst2]):
        await check(w.inst2, ext4, "routed")
        await check(w.ext, i2_4, "routed")
