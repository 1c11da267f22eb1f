"""Creates arriving together share their transactions and IPAM messages (group commit), yet each
keeps its own outcome; IPAM's batch commands and its lists at scale (pages, and a clear error for a
reply larger than NATS carries)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from netaddr import IPAddress, IPNetwork

from scopenet.contracts.errors import DomainError
from tests.helpers import eventually
from tests.integration.conftest import ADMIN, fails, new_id
from tests.integration.topology.conftest import Build, Topo, project


async def _outcomes(calls: list[Any]) -> list[Any]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


async def test_ports_created_together_keep_their_own_outcomes(topo: Topo, mk: Build) -> None:
    alice = project()
    net = await mk.network(alice)
    small = await mk.subnet(alice, net, cidr="10.30.0.0/29")  # .2-.6 for ports (.1 is the gateway)
    big = await mk.subnet(alice, net, cidr="10.30.1.0/24")
    first = await mk.port(alice, net, fixed_ips=[{"subnet_id": str(big.id), "ip_address": "10.30.1.10"}])
    bad = [
        mk.port(alice, net, fixed_ips=[{"ip_address": "10.30.1.10"}]),  # taken
        mk.port(alice, net, mac_address=first.mac_address),  # MAC taken
        mk.port(project(), net),  # someone else's network
    ]
    good = [mk.port(alice, net, name=f"p{i}") for i in range(30)]
    results = await _outcomes([*bad, *good])
    errors = [(r.code, r.type) if isinstance(r, DomainError) else r for r in results[:3]]
    assert errors == [(409, "IpAddressAlreadyAllocated"), (409, "MacAddressInUse"), (404, "NetworkNotFound")]
    ports = results[3:]
    assert all(not isinstance(p, BaseException) for p in ports), [p for p in ports if isinstance(p, BaseException)]
    # the small subnet fills first, the others fall back to the next subnet (one IPv4 address each)
    addresses = [p.fixed_ips[0].ip_address for p in ports]
    assert all(len(p.fixed_ips) == 1 for p in ports) and len(set(addresses)) == 30
    assert sorted(a for a in addresses if IPAddress(a) in IPNetwork("10.30.0.0/29")) == [
        f"10.30.0.{i}" for i in range(2, 7)
    ]
    assert len({p.mac_address for p in ports} | {first.mac_address}) == 31
    # topology and IPAM agree on every address, nothing was left half-made
    held = await mk.ipam("ip.list", ADMIN, filters={"subnet_id": [str(small.id), str(big.id)]})
    assert {(a.port_id, a.ip_address) for a in held.allocations} == {
        (p.id, f.ip_address) for p in [*ports, first] for f in p.fixed_ips
    }
    listed = (await topo("port.list", alice, filters={"network_id": str(net.id)})).ports
    assert {p.id for p in listed} == {p.id for p in [*ports, first]}


async def test_subnets_created_together_keep_their_own_outcomes(topo: Topo, mk: Build) -> None:
    alice, bob = project(), project()
    pool = await mk.pool(["10.210.0.0/16"], default_prefixlen=26)
    private = await mk.pool(["10.211.0.0/16"], ctx=bob, shared=False, default_prefixlen=26)
    nets = [await mk.network(alice) for _ in range(12)]
    tiny = await mk.network(alice, mtu=1000)
    bobs = await mk.network(bob)
    before = {n.id: n.revision_number for n in nets}
    bad = [
        mk.subnet(alice, tiny, cidr="2001:db8:77::/64"),  # rule 50: IPv6 needs an MTU of 1280
        mk.subnet(alice, bobs, pool=pool),  # another project's network
        mk.subnet(alice, nets[0], pool=private),  # a pool alice cannot see (IPAM decides, per caller)
    ]
    good = [mk.subnet(alice, nets[i % len(nets)], pool=pool) for i in range(36)]
    results = await _outcomes([*bad, *good])
    errors = [(r.code, r.type) if isinstance(r, DomainError) else r for r in results[:3]]
    assert errors == [(409, "NetworkMTUSubnetConflict"), (404, "NetworkNotFound"), (404, "SubnetPoolNotFound")]
    subnets = results[3:]
    assert all(not isinstance(s, BaseException) for s in subnets), [s for s in subnets if isinstance(s, BaseException)]
    assert len({s.cidr for s in subnets}) == 36
    assert all(IPNetwork(s.cidr) in IPNetwork("10.210.0.0/16") and s.revision_number == 0 for s in subnets)
    for n in nets:  # each subnet bumped its network's revision once
        view = (await topo("network.get", alice, id=str(n.id))).network
        assert view.revision_number == before[n.id] + 3 and len(view.subnets) == 3
        assert sorted(view.subnets) == sorted(s.id for s in subnets if s.network_id == n.id)
    allocated = await mk.ipam("subnet.list", ADMIN, filters={"network_id": [str(n.id) for n in nets]})
    assert {(s.id, s.cidr) for s in allocated.subnets} == {(s.id, s.cidr) for s in subnets}


async def test_ipam_batch_commands_answer_each_request(mk: Build) -> None:
    alice = project()
    pool = await mk.pool(["10.212.0.0/16"], default_prefixlen=28)
    sub = (
        await mk.ipam(
            "subnet.allocate_many",
            ADMIN,
            requests=[
                {
                    "context": alice.model_dump(),
                    "subnet_id": new_id(),
                    "network_id": new_id(),
                    "project_id": "p",
                    "ip_version": 4,
                    "subnetpool_id": str(pool.id),
                },
                {
                    "context": alice.model_dump(),
                    "subnet_id": new_id(),
                    "network_id": new_id(),
                    "project_id": "p",
                    "ip_version": 6,
                    "subnetpool_id": str(pool.id),
                },
            ],
        )
    ).results
    assert sub[0].error is None and sub[0].subnet.cidr.endswith("/28")
    assert sub[1].subnet is None and (sub[1].error.code, sub[1].error.field) == (400, "ip_version")
    port = new_id()
    ips = (
        await mk.ipam(
            "ip.allocate_many",
            ADMIN,
            requests=[
                {"context": alice.model_dump(), "subnet_id": str(sub[0].subnet.id), "port_id": port},
                {
                    "context": alice.model_dump(),
                    "subnet_id": str(sub[0].subnet.id),
                    "port_id": port,
                    "ip_address": "10.99.0.1",
                },
                {"context": alice.model_dump(), "subnet_id": new_id(), "port_id": port},
                # the same port asks again for "next free" on the subnet: it gets the one it holds
                {"context": alice.model_dump(), "subnet_id": str(sub[0].subnet.id), "port_id": port},
            ],
        )
    ).results
    assert ips[0].allocation.ip_address == ips[3].allocation.ip_address
    assert (ips[1].error.code, ips[1].error.type) == (400, "InvalidIpForSubnet")
    assert (ips[2].error.code, ips[2].error.type) == (404, "SubnetNotFound")
    await mk.ipam("ip.release", ADMIN, port_id=port)
    await mk.ipam("subnet.release", ADMIN, id=str(sub[0].subnet.id))


async def test_lists_larger_than_the_max_payload(topo: Topo, mk: Build, nats_client: Any) -> None:
    """IPAM holds more addresses than one NATS message carries: a whole list is refused with a clear
    400 (not a 500, not a timeout), pages read all of it, and topology's orphan sweep (which reads
    every allocation) still runs, releasing orphans on its networks and nothing else."""
    per_allocation = 120  # bytes of one allocation in a reply, at least (~128 for these)
    count = nats_client.max_payload // per_allocation + 200
    foreign = (
        await mk.ipam(
            "subnet.allocate",
            ADMIN,
            subnet_id=new_id(),
            network_id=new_id(),  # not a topology network: another system's allocations
            project_id="other-system",
            ip_version=4,
            cidr="10.240.0.0/16",
        )
    ).subnet
    owners = [str(uuid.uuid4()) for _ in range(8)]
    base = int(IPAddress("10.240.1.0"))
    requests = [
        {
            "context": ADMIN.model_dump(),
            "subnet_id": str(foreign.id),
            "port_id": owners[i % 8],
            "ip_address": str(IPAddress(base + i)),
        }
        for i in range(count)
    ]
    for i in range(0, count, 500):
        results = (await mk.ipam("ip.allocate_many", ADMIN, requests=requests[i : i + 500])).results
        assert all(r.error is None for r in results)
    try:
        err = await fails(mk.ipam("ip.list", ADMIN, filters={"subnet_id": str(foreign.id)}), 400, "ReplyTooLarge")
        assert "max payload" in err.message and "limit and marker" in err.message
        seen: list[str] = []
        marker = None
        while True:
            page = await mk.ipam("ip.list", ADMIN, filters={"subnet_id": str(foreign.id)}, limit=4000, marker=marker)
            assert len(page.allocations) <= 4000
            seen += [a.ip_address for a in page.allocations]
            if (marker := page.next_marker) is None:
                break
        assert len(seen) == len(set(seen)) == count
        # orphans on a topology network (allocations whose port topology never had) go back to IPAM
        alice = project()
        net = await mk.network(alice)
        sub = await mk.subnet(alice, net, cidr="10.241.0.0/22")
        kept = await mk.port(alice, net)
        orphan = str(uuid.uuid4())
        await mk.ipam(
            "ip.allocate_many",
            ADMIN,
            requests=[{"context": ADMIN.model_dump(), "subnet_id": str(sub.id), "port_id": orphan} for _ in range(3)]
            + [
                {
                    "context": ADMIN.model_dump(),
                    "subnet_id": str(sub.id),
                    "port_id": orphan,
                    "ip_address": f"10.241.2.{i}",
                }
                for i in range(1, 200)
            ],
        )

        async def released() -> bool:
            return not (await mk.ipam("ip.list", ADMIN, filters={"port_id": orphan})).allocations

        # (by this process's reconciler or another topology replica's in the session: either is right)
        await eventually(released, timeout=15, every=0.2)
        held = (await mk.ipam("ip.list", ADMIN, filters={"subnet_id": str(sub.id)})).allocations
        assert [(a.port_id, a.ip_address) for a in held] == [(kept.id, kept.fixed_ips[0].ip_address)]
        page = await mk.ipam("ip.list", ADMIN, filters={"subnet_id": str(foreign.id)}, limit=1)
        assert len(page.allocations) == 1, "another system's allocations are not topology's to release"
    finally:
        for owner in owners:
            await mk.ipam("ip.release", ADMIN, port_id=owner)
        await mk.ipam("subnet.release", ADMIN, id=str(foreign.id))


async def test_subnet_list_filters_by_sets_and_pages(mk: Build) -> None:
    alice = project()
    pool = await mk.pool(["10.213.0.0/16"], default_prefixlen=28)
    nets = [new_id() for _ in range(3)]
    made = [
        (
            await mk.ipam(
                "subnet.allocate",
                alice,
                subnet_id=new_id(),
                network_id=n,
                project_id=alice.project_id,
                ip_version=4,
                subnetpool_id=str(pool.id),
            )
        ).subnet
        for n in nets
        for _ in range(2)
    ]
    some = await mk.ipam("subnet.list", ADMIN, filters={"network_id": nets[:2]})
    assert {s.id for s in some.subnets} == {s.id for s in made if str(s.network_id) in nets[:2]}
    pages: list[Any] = []
    marker = None
    while True:
        page = await mk.ipam("subnet.list", ADMIN, filters={"subnetpool_id": str(pool.id)}, limit=4, marker=marker)
        pages.append([s.id for s in page.subnets])
        if (marker := page.next_marker) is None:
            break
    assert [len(p) for p in pages] == [4, 2]
    assert sorted(i for p in pages for i in p) == sorted(s.id for s in made) == [i for p in pages for i in p]
    await fails(mk.ipam("subnet.list", ADMIN, filters={"network_id": ["x"]}), 400, "BadRequest", "filters")
    await fails(mk.ipam("ip.list", ADMIN, filters={}, marker="nonsense"), 400, "BadRequest", "marker")
