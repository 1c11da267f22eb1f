"""A pool's allocation history is complete: every prefix taken or released is one entry, written in
the transaction that made the change, however many requests race and however often they are retried
(docs/operations.md#pool-allocation-history)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from netaddr import IPNetwork, IPSet

from scopenet.contracts.base import CallContext
from tests.integration.conftest import ADMIN, Ipam, IpamFixtures, fails, project

N = 60


async def history(ipam: Ipam, ctx: CallContext, pool: Any, **q: Any) -> list[Any]:
    """Every entry, oldest first, page by page."""
    out: list[Any] = []
    marker = None
    while True:
        page = await ipam("subnetpool.history", ctx, id=str(pool.id), limit=25, descending=False, marker=marker, **q)
        out += page.entries
        if page.next_marker is None:
            return out
        marker = page.next_marker


async def test_concurrent_allocations_and_retries_are_each_exactly_one_entry(ipam: Ipam, mk: IpamFixtures) -> None:
    owner = project()
    who = owner.model_copy(update={"user_id": "u-owner", "request_id": "req-fixed"})
    pool = await mk.pool(owner, ["10.233.0.0/16"], default_prefixlen=26)
    requests = [mk.subnet_request(who, None, 4, None, {"subnetpool_id": str(pool.id)}) for _ in range(N)]

    # Every request twice at once (a retry racing its original), all N at once: one allocation each.
    replies = await asyncio.gather(*(ipam("subnet.allocate", who, **r) for r in requests + requests))
    assert len({r.subnet.cidr for r in replies}) == N
    ids = [r["subnet_id"] for r in requests]
    # Releases, each twice, racing each other: one release each.
    await asyncio.gather(*(ipam("subnet.release", who, id=i) for i in ids + ids))

    entries = await history(ipam, owner, pool)
    assert [e.id for e in entries] == sorted({e.id for e in entries})
    assert [(e.action, e.cidr) for e in entries[:1]] == [("prefixes_added", "10.233.0.0/16")]
    allocated = [e for e in entries if e.action == "allocated"]
    released = [e for e in entries if e.action == "released"]
    assert len(allocated) == len(released) == N
    assert sorted(str(e.subnet_id) for e in allocated) == sorted(str(e.subnet_id) for e in released) == sorted(ids)
    live: dict[Any, IPNetwork] = {}
    for e in entries[1:]:
        cidr = IPNetwork(e.cidr)
        if e.action == "allocated":
            assert not (IPSet(live.values()) & IPSet([cidr]))
            live[e.subnet_id] = cidr
        else:
            assert live.pop(e.subnet_id) == cidr
        assert (e.caller_project_id, e.caller_user_id, e.request_id) == (owner.project_id, "u-owner", "req-fixed")
    assert live == {}


async def test_refusals_write_nothing_and_prefix_changes_are_recorded(ipam: Ipam, mk: IpamFixtures) -> None:
    owner = project()
    pool = await mk.pool(owner, ["10.234.0.0/24"], default_prefixlen=25, default_quota=128)
    sub = await mk.subnet(owner, pool)
    # Over quota, too large, overlapping: refused, and the history does not mention them.
    await fails(mk.subnet(owner, pool), 409, "SubnetPoolQuotaExceeded")
    await fails(mk.subnet(ADMIN, pool, cidr=str(sub.cidr)), 409, "SubnetAllocationError")
    await ipam("subnetpool.add_prefixes", owner, id=str(pool.id), prefixes=["10.234.1.0/24"])
    await ipam("subnetpool.remove_prefixes", owner, id=str(pool.id), prefixes=["10.234.1.128/25"])
    await ipam("subnetpool.update", owner, id=str(pool.id), subnetpool={"description": "no space change"})
    entries = await history(ipam, owner, pool)
    assert [(e.action, e.cidr) for e in entries] == [
        ("prefixes_added", "10.234.0.0/24"),
        ("allocated", str(sub.cidr)),
        ("prefixes_added", "10.234.1.0/24"),
        ("prefixes_removed", "10.234.1.128/25"),
    ]
    # Filters: by action, by project, by time; a marker past the end is an empty page.
    assert [e.action for e in await history(ipam, owner, pool, action="allocated")] == ["allocated"]
    assert await history(ipam, owner, pool, project_id=project().project_id) == []
    assert await history(ipam, owner, pool, since=entries[-1].at) == entries[-1:]
    page = await ipam("subnetpool.history", owner, id=str(pool.id), marker=entries[-1].id, descending=False)
    assert (page.entries, page.next_marker) == ([], None)


async def test_history_and_usage_need_sight_of_the_pool(ipam: Ipam, mk: IpamFixtures) -> None:
    owner, stranger = project(), project()
    pool = await mk.pool(owner, ["10.235.0.0/24"])
    for verb in ("subnetpool.history", "subnetpool.space"):
        await fails(ipam(verb, stranger, id=str(pool.id)), 404, "SubnetPoolNotFound")
        await fails(ipam(verb, owner, id=str(uuid.uuid4())), 404, "SubnetPoolNotFound")
    assert (await ipam("subnetpool.space", ADMIN, id=str(pool.id))).subnetpool_usage.total_ips == 256
    await ipam("subnetpool.delete", owner, id=str(pool.id))
    await fails(ipam("subnetpool.history", ADMIN, id=str(pool.id)), 404, "SubnetPoolNotFound")
