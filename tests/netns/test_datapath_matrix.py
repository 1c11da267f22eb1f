"""The seed's "Checking connectivity" as a matrix, IPv4 and IPv6, on a real kernel (docs/datapath.md).

Reachable rows assert a real ping *and* the source address the receiver saw (no NAT, SNAT to the
gateway, or SNAT to the floating IP). Blocked rows assert no reply *and* that the router's drop
counter of the egress interface rose by the packets sent, so "blocked" is the router's doing, not
silence.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from scopenet.datapath import names
from scopenet.datapath.example import (
    EXT_HOST,
    FLOATING_IP,
    GW_PORT,
    INSTANCE1,
    INSTANCE2,
    NET1_PORT,
    NET2_PORT,
    ROUTER1,
    router1,
)
from scopenet.netlink import TestInstance
from scopenet.services.l3_agent.reconciler import Reconciler
from tests.netns.conftest import Sandbox
from tests.netns.probes import BLOCKED_WAIT, echo_servers, make_instances, ping, udp_seen

pytestmark = pytest.mark.netns

RID = str(ROUTER1)
QR1, QR2, QG = names.internal_ifname(NET1_PORT), names.internal_ifname(NET2_PORT), names.gateway_ifname(GW_PORT)
GW4, GW6 = "203.0.113.66", "2001:db8::66"
EXT4, EXT6 = "203.0.113.100", "2001:db8::100"
I1_4, I1_6 = "198.51.100.3", "2001:db8:80d2:c4d3::3"
I2_4, I2_6 = "203.0.113.3", "2001:db8:a583::3"


class Matrix:
    def __init__(self, sandbox: Sandbox) -> None:
        self.kernel = sandbox.kernel

    async def reach(self, src: TestInstance, dst: str, seen: str) -> None:
        pinged, saw = await asyncio.gather(ping(src, dst), udp_seen(src, dst))
        assert pinged, f"{src.name} -> {dst}: no ping reply"
        assert saw == seen, f"{src.name} -> {dst}: receiver saw {saw}, expected {seen}"

    async def blocked(self, src: TestInstance, dst: str, egress: str) -> None:
        counter = f"drop_{egress}"
        before = (await self.kernel.counters(RID))[counter]
        pinged, saw = await asyncio.gather(
            ping(src, dst, timeout=BLOCKED_WAIT), udp_seen(src, dst, timeout=BLOCKED_WAIT)
        )
        after = (await self.kernel.counters(RID))[counter]
        assert not pinged and saw is None, f"{src.name} -> {dst}: expected blocked, got ping={pinged} seen={saw}"
        assert after >= before + 2, f"{src.name} -> {dst}: {counter} went {before} -> {after}, the router did not drop"


async def _apply(reconciler: Reconciler, spec: object) -> float:
    t0 = time.monotonic()
    assert reconciler.desired(spec)  # type: ignore[arg-type]
    await reconciler.wait_idle(10)
    status = reconciler.status(RID)
    assert status is not None and status.status == "ACTIVE", status
    return time.monotonic() - t0


async def test_seed_connectivity_matrix_and_scope_flip(sandbox: Sandbox, reconciler: Reconciler) -> None:
    m = Matrix(sandbox)
    await _apply(reconciler, router1(revision=1, floating_ip=False))
    ext, inst1, inst2 = await make_instances(sandbox.ns, sandbox.host, [EXT_HOST, INSTANCE1, INSTANCE2])

    async with echo_servers([ext, inst1, inst2]):
        # Same scope as the external network: routed both ways, no NAT.
        await asyncio.gather(
            m.reach(ext, I2_4, EXT4),
            m.reach(inst2, EXT4, I2_4),
            m.reach(ext, I2_6, EXT6),
            m.reach(inst2, EXT6, I2_6),
            # Unscoped IPv4 leaves by SNAT to the gateway address.
            m.reach(inst1, EXT4, GW4),
        )
        await m.blocked(ext, I1_4, QR1)  # external -> unscoped: no route without NAT
        await m.blocked(inst1, I2_4, QR2)  # across scopes on one router, both ways, both families
        await m.blocked(inst2, I1_4, QR1)
        await m.blocked(inst1, I2_6, QR2)
        await m.blocked(inst2, I1_6, QR1)
        await m.blocked(ext, I1_6, QR1)  # IPv6 of the unscoped network: neither in nor out (no NAT66)
        await m.blocked(inst1, EXT6, QG)

        # A floating IP for instance1: reachable through it both ways, the fixed IP still not.
        await _apply(reconciler, router1(revision=2, floating_ip=True))
        await asyncio.gather(m.reach(ext, FLOATING_IP, EXT4), m.reach(inst1, EXT4, FLOATING_IP))
        await m.blocked(ext, I1_4, QR1)

        # subnet-pool-ip4 leaves scope A: network2's IPv4 is now unscoped -> SNAT out, nothing in.
        flip = await _apply(reconciler, router1(revision=3, floating_ip=True, network2_scoped=False))
        await m.reach(inst2, EXT4, GW4)
        await m.blocked(ext, I2_4, QR2)
        await m.reach(ext, I2_6, EXT6)  # IPv6 is another pool: unchanged
        # ... and back into scope A: direct again.
        back = await _apply(reconciler, router1(revision=4, floating_ip=True, network2_scoped=True))
        await asyncio.gather(m.reach(ext, I2_4, EXT4), m.reach(inst2, EXT4, I2_4))
        print(f"\nscope flip applied in {flip * 1000:.1f} ms, back in {back * 1000:.1f} ms")
        assert flip < 1 and back < 1


async def test_snat_disabled_keeps_scope_and_drops_the_rest(sandbox: Sandbox, reconciler: Reconciler) -> None:
    """enable_snat=false: same scope still routed without NAT; unscoped IPv4 cannot leave at all."""
    m = Matrix(sandbox)
    await _apply(reconciler, router1(floating_ip=False, enable_snat=False))
    ext, inst1, inst2 = await make_instances(sandbox.ns, sandbox.host, [EXT_HOST, INSTANCE1, INSTANCE2])
    async with echo_servers([ext, inst1, inst2]):
        await asyncio.gather(m.reach(inst2, EXT4, I2_4), m.reach(ext, I2_4, EXT4))
        await m.blocked(inst1, EXT4, QG)
