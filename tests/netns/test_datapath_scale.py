"""Twenty routers through the reconciler: cold apply, one update each, complete cleanup.

Prints the latencies (spec handed to the reconciler → kernel applied); the targets of issue 5
(update p99 ≤ 50 ms, 200 routers from cold ≤ 10 s) are measured by ``scopenet bench agent``, not
asserted here, because this machine's timing is noisy.
"""

from __future__ import annotations

import statistics
import time

import pytest

from scopenet.contracts.routerspec import FloatingIp, RouterSpec
from scopenet.datapath.example import FIP, INST1_PORT, random_router
from scopenet.services.l3_agent.reconciler import Reconciler
from tests.netns.conftest import Sandbox

pytestmark = pytest.mark.netns
N = 20


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def test_twenty_routers_apply_update_and_cleanup(sandbox: Sandbox, reconciler: Reconciler) -> None:
    links_before = {m.get("ifname") async for m in await sandbox.kernel.host_ipr.link("dump")}  # type: ignore[union-attr]
    specs = [random_router(net_segs=(2000 + 2 * i, 2001 + 2 * i)) for i in range(N)]

    t0 = time.monotonic()
    for spec in specs:
        reconciler.desired(spec)
    await reconciler.wait_idle(60)
    cold = time.monotonic() - t0
    reconciler.mark_caught_up()  # what the agent does once its stream is read: also settles the GC
    assert all(reconciler.status(s.router_id).status == "ACTIVE" for s in specs)  # type: ignore[union-attr]
    assert len(await sandbox.kernel.routers()) == N

    updates = []
    for spec in specs:
        fip = FloatingIp(
            id=FIP, floating_ip_address="203.0.113.80", fixed_ip_address="198.51.100.3", port_id=INST1_PORT
        )
        changed = RouterSpec.model_validate(spec.model_dump() | {"revision": 2, "floating_ips": [fip.model_dump()]})
        t = time.monotonic()
        reconciler.desired(changed)
        await reconciler.wait_idle(10)
        updates.append(time.monotonic() - t)
        status = reconciler.status(spec.router_id)
        assert status is not None and status.status == "ACTIVE" and status.changes >= 2  # table + FIP address

    t = time.monotonic()
    for spec in specs:
        reconciler.forget(spec.router_id)
    await reconciler.wait_idle(60)
    teardown = time.monotonic() - t
    assert await sandbox.kernel.routers() == []
    links_after = {m.get("ifname") async for m in await sandbox.kernel.host_ipr.link("dump")}  # type: ignore[union-attr]
    assert links_after == links_before  # every veth and every bridge is gone

    print(
        f"\n{N} routers: cold {cold * 1000:.0f} ms ({cold / N * 1000:.1f} ms/router); "
        f"update p50 {_p(updates, 0.5):.1f} ms, p99 {_p(updates, 0.99):.1f} ms, "
        f"mean {statistics.mean(updates) * 1000:.1f} ms; teardown {teardown * 1000:.0f} ms"
    )
