"""Port forwarding through the whole stack: NATS commands → topology → RouterSpec → the L3 agent (a
real process) → the kernel, on the seed's topology (``tests/netns/seed_stack.py``).

A floating IP forwards one UDP port to instance1, which is on the unscoped network1 — across scopes
from the external network: the external host reaches instance1's service through it and only
through it; deleting the forwarding shuts the port again.
"""

# The module-scoped fixtures `box` and `stack` are imported, then requested by name:
# ruff: noqa: F401, F811

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from scopenet.commands.instance import plug
from tests.helpers import eventually
from tests.integration.conftest import ADMIN
from tests.netns.probes import BLOCKED_WAIT, ECHO_PORT, echo_servers, udp_seen
from tests.netns.seed_stack import Matrix, World, applied, ext_routes, gateways, seed_topology
from tests.netns.stack import Box, Stack, box, running_agent, stack

pytestmark = pytest.mark.netns

AGENT = f"pf-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
async def world(box: Box, stack: Stack) -> AsyncIterator[World]:
    async with running_agent(box, stack, AGENT):
        t = await seed_topology(stack)
        await eventually(lambda: applied(stack, box.kernel, t["router"], AGENT), timeout=15, what="router1 applied")
        inst1_port, inst2_port, ext_port = t["ports"]
        instances = [
            await plug.create(box.ns, stack.topo.bus, port_id=p.id, name=n, host=box.host)
            for p, n in ((inst1_port, "instance1"), (inst2_port, "instance2"), (ext_port, "ext"))
        ]
        for dst, via in ext_routes(t["gw"]):
            done = await instances[2].exec("ip", "route", "add", dst, "via", via)
            assert done.returncode == 0, done.stderr
        yield World.of(t, ext=instances[2], inst1=instances[0], inst2=instances[1])
        for inst in instances:
            await inst.delete()


async def test_a_forwarded_port_reaches_the_service_across_scopes(stack: Stack, box: Box, world: World) -> None:
    w, m = world, Matrix(box.kernel, world)
    fip = (await stack.topo("floatingip.create", ADMIN, floatingip={"floating_network_id": w.fip_network})).floatingip
    address, ext4, i1_4 = fip.floating_ip_address, w.ext.ip(4), w.inst1.ip(4)
    pf = (
        await stack.topo(
            "port_forwarding.create",
            ADMIN,
            floatingip_id=fip.id,
            port_forwarding={
                "protocol": "udp",
                "internal_port_id": w.inst1_port,
                "internal_ip_address": i1_4,
                "external_port": 5000,
                "internal_port": ECHO_PORT,
            },
        )
    ).port_forwarding
    async with echo_servers([w.inst1]):

        async def forwarded() -> bool:
            return await udp_seen(w.ext, address, port=5000, timeout=0.3) == ext4

        await eventually(forwarded, timeout=10, what="the forwarded port answers from instance1")
        assert await udp_seen(w.ext, address, timeout=BLOCKED_WAIT) is None  # the service's own port: not forwarded
        await m.blocked(w.ext, i1_4, gateways(w.inst1)[4])  # instance1's address itself: still out of reach

        await stack.topo("port_forwarding.delete", ADMIN, floatingip_id=fip.id, id=pf.id)

        async def shut() -> bool:
            return await udp_seen(w.ext, address, port=5000, timeout=0.3) is None

        await eventually(shut, timeout=10, what="the port shut again")
    await stack.topo("floatingip.delete", ADMIN, id=fip.id)
