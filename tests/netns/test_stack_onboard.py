"""Onboarding in the kernel, through the whole stack: the seed's instance1 sits on network1, whose IPv4
subnet has no pool (the unscoped space), so it leaves by SNAT and cannot be reached from outside.
Onboarded into ``subnet-pool-ip4`` (scope A, the external network's), it is routed both ways with its
own address, and reaches instance2 (scope A too); its IPv6 subnet, not onboarded, stays cut off.
(docs/neutron.md#onboarding-subnets)

The seed's world is ``test_stack_seed.py``'s (its fixtures, a stack and a sandbox of this module's own).
"""

# The module-scoped fixtures are imported, then requested by name:
# ruff: noqa: F401, F811

from __future__ import annotations

import time

import pytest

from tests.helpers import eventually
from tests.integration.conftest import ADMIN
from tests.netns.probes import echo_servers, udp_seen
from tests.netns.seed_stack import Matrix, World, applied, gateways
from tests.netns.stack import Box, Stack, box, stack
from tests.netns.test_stack_seed import AGENT, agent, world

pytestmark = pytest.mark.netns


async def test_onboarded_subnet_is_routed_without_nat(stack: Stack, box: Box, world: World) -> None:
    m, w = Matrix(box.kernel, world), world
    ext4, i1_4, i2_4 = w.ext.ip(4), w.inst1.ip(4), w.inst2.ip(4)
    gw1, gw2 = gateways(w.inst1), gateways(w.inst2)
    network1 = (await stack.topo("port.get", ADMIN, id=w.inst1_port)).port.network_id

    async def inst1_seen_as(address: str) -> bool:
        return await udp_seen(w.inst1, ext4, timeout=0.2) == address

    async with echo_servers([w.ext, w.inst1, w.inst2]):
        # Before: out by SNAT (the receiver sees the gateway's address), no way in, no way to scope A.
        await m.reach(w.inst1, ext4, w.gw[4])
        await m.blocked(w.ext, i1_4, gw1[4])
        await m.blocked(w.inst1, i2_4, gw2[4])

        t0 = time.monotonic()
        done = await stack.topo("subnetpool.onboard_network_subnets", ADMIN, id=w.pool4, network_id=network1)
        assert [s.cidr for s in done.subnets] == ["198.51.100.0/26"]
        await eventually(lambda: inst1_seen_as(i1_4), timeout=5, every=0, what="no SNAT once onboarded")
        took = time.monotonic() - t0
        await eventually(lambda: applied(stack, box.kernel, w.router, AGENT), timeout=10, what="spec applied")

        net = (await stack.topo("network.get", ADMIN, id=network1)).network
        assert str(net.ipv4_address_scope) == w.scope4 and net.ipv6_address_scope is None
        # After: routed both ways with its own address, and into the rest of scope A.
        await m.reach(w.ext, i1_4, ext4)
        await m.reach(w.inst1, ext4, i1_4)
        await m.reach(w.inst1, i2_4, i1_4)
        await m.reach(w.inst2, i1_4, i2_4)
        # network1's IPv6 subnet was not onboarded (another IP version): still neither in nor out.
        await m.blocked(w.ext, w.inst1.ip(6), gw1[6])
    print(f"\nonboarding through the whole stack: routed without NAT {took * 1000:.0f} ms after the command")
