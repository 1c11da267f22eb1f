"""Extra routes on a real kernel: a prefix behind a next-hop host is reached through the router when
the traffic stays in one scope, and dropped by the scope filter when the route would carry it across
scopes (docs/datapath.md#extra-routes).

The seed's router1 gets two next-hop hosts, each holding a prefix of its own: ``hop2`` on network2
(scope A, as the external network) with 10.2.0.1 behind it, ``hop1`` on network1 (no scope) with
10.1.0.1. Blocked rows assert no reply *and* a rise of the drop counter of the interface the route
leads out of, so the drop is the router's.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from scopenet.contracts.routerspec import StaticRoute
from scopenet.datapath.example import EXT_HOST, INSTANCE1, INSTANCE2, NET1_SEG, NET2_SEG, InstanceSpec, router1
from scopenet.services.l3_agent.reconciler import Reconciler
from tests.netns.conftest import Sandbox
from tests.netns.probes import echo_servers, make_instances
from tests.netns.test_datapath_matrix import EXT4, I1_4, I2_4, QR1, QR2, RID, Matrix

pytestmark = pytest.mark.netns

BEHIND2, BEHIND1 = "10.2.0.1", "10.1.0.1"
HOP2 = InstanceSpec(
    "hop2", NET2_SEG, "fa:16:3e:aa:02:10", ("203.0.113.10/26", f"{BEHIND2}/32"), ("203.0.113.1",), port_id=uuid.uuid4()
)
HOP1 = InstanceSpec(
    "hop1",
    NET1_SEG,
    "fa:16:3e:aa:01:10",
    ("198.51.100.10/26", f"{BEHIND1}/32"),
    ("198.51.100.1",),
    port_id=uuid.uuid4(),
)
#: The external host knows both prefixes are behind the router (as BGP would tell it for a scoped one).
EXT = dataclasses.replace(
    EXT_HOST, routes=(*EXT_HOST.routes, ("10.2.0.0/24", "203.0.113.66"), ("10.1.0.0/24", "203.0.113.66"))
)
ROUTES = [
    StaticRoute(destination="10.2.0.0/24", nexthop="203.0.113.10"),
    StaticRoute(destination="10.1.0.0/24", nexthop="198.51.100.10"),
]


async def _apply(reconciler: Reconciler, revision: int, routes: list[StaticRoute]) -> None:
    spec = router1(revision=revision, floating_ip=False).model_copy(update={"routes": routes})
    assert reconciler.desired(spec)
    await reconciler.wait_idle(10)
    status = reconciler.status(RID)
    assert status is not None and status.status == "ACTIVE", status


async def _kernel_routes(sandbox: Sandbox) -> set[tuple[str, str]]:
    """The static routes the router's namespace has, as the agent observes them."""
    observed = await sandbox.kernel.observe(RID, None)
    return {(r.dst, r.via) for r in observed.routes}


async def test_extra_routes_pass_within_a_scope_and_never_across(sandbox: Sandbox, reconciler: Reconciler) -> None:
    m = Matrix(sandbox)
    await _apply(reconciler, 1, ROUTES)
    assert {("10.2.0.0/24", "203.0.113.10"), ("10.1.0.0/24", "198.51.100.10")} <= await _kernel_routes(sandbox)
    ext, inst1, inst2, hop1, hop2 = await make_instances(
        sandbox.ns, sandbox.host, [EXT, INSTANCE1, INSTANCE2, HOP1, HOP2]
    )
    async with echo_servers([ext, inst1, inst2, hop1, hop2]):
        # The route stays in scope A (external -> network2's next hop): routed, no NAT.
        await m.reach(ext, BEHIND2, EXT4)
        # Within "no scope" (network1 -> network1's next hop, through the router): routed.
        await m.reach(inst1, BEHIND1, I1_4)
        # Within scope A on the inside too.
        await m.reach(inst2, BEHIND2, I2_4)

        # Across scopes, the route leads out of an interface of another scope: the filter drops it.
        await m.blocked(ext, BEHIND1, QR1)  # scope A -> a route via the unscoped network
        await m.blocked(inst2, BEHIND1, QR1)  # scope A inside -> the same
        await m.blocked(inst1, BEHIND2, QR2)  # no scope -> a route via scope A's network

        # Routes go as they came: the prefix behind hop2 is unreachable once its route is removed.
        await _apply(reconciler, 2, ROUTES[1:])
        assert ("10.2.0.0/24", "203.0.113.10") not in await _kernel_routes(sandbox)
        await _apply(reconciler, 3, ROUTES)
        await m.reach(ext, BEHIND2, EXT4)
