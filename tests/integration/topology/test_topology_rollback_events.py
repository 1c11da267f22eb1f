"""A port whose create is rolled back (its IPAM step got an address, then the saga failed — what a
NATS outage does to a port create in flight) never existed for anyone: no ``port.*`` event is
published for it, only IPAM's own allocation and release. Before, the rollback went through the
delete path and published ``port.deleted`` for a port nobody had seen created."""

from __future__ import annotations

import uuid
from typing import Any

from scopenet.services.topology.app import TopologyRunning
from scopenet.services.topology.ports import saga as portsaga
from scopenet.services.topology.ports.rules import NewPort
from tests.integration.conftest import EventTap, Ipam
from tests.integration.topology.conftest import Build, project


async def test_rolled_back_port_publishes_no_port_event(
    topology_running: TopologyRunning, mk: Build, ipam: Ipam, nats_client: Any
) -> None:
    deps = topology_running.deps
    ctx = project()
    net = await mk.network(ctx)
    subnet = await mk.subnet(ctx, net, cidr="10.201.7.0/24")
    port_id = uuid.uuid4()
    async with EventTap(nats_client.jetstream(), ipam) as tap:
        async with deps.db.acquire() as conn:
            await portsaga.insert(conn, NewPort(id=port_id, network_id=net.id, project_id=ctx.project_id))
        await deps.ipam.allocate_ip(ctx, subnet_id=subnet.id, port_id=port_id, ip_address=None)
        await portsaga.abandon(deps, port_id)  # the saga's compensation (or the reconciler's)
        await tap.settle()
    async with deps.db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM ports WHERE id = $1", port_id) == 0
    types = [t for t, _ in tap.about(port_id)]
    assert [t for t in types if ".port." in t] == [], types
    assert sorted(types) == ["scopenet.v1.ip_allocation.created", "scopenet.v1.ip_allocation.deleted"]
