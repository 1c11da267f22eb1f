"""NATS stopped, Postgres restarted, under a steady load of API writes: nothing lost, nothing twice.

The stack is production-shaped (``cluster``): IPAM, topology and the API as processes, the L3 agent
as a process in a private sandbox, a Postgres and a NATS of the test's own that it stops and starts
on the same address. A load of HTTP writes (``load``) runs throughout; every answer is kept.

While NATS is down, every call that needs it is answered 503 (never a 500, never a hang past the
request timeout) and the probes say "not ready" without the processes dying; when it returns,
every service is ready again, the outboxes drain, and the agent converges. The same for a Postgres
restart. Then the audit (``audit``) compares every acknowledged answer with both databases and the
streams: lost and duplicated must both be zero, and the two databases must agree.

CI runs one short outage of each kind; ``make soak`` (``SCOPENET_SOAK_SECONDS``) repeats them,
30 s NATS outages and Postgres restarts (clean and crash), for as long as asked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import asyncpg
import nats
import pytest

from tests.faults.audit import Findings, audit
from tests.faults.cluster import ADMIN_TOKEN, REQUEST_TIMEOUT, Cluster
from tests.faults.conftest import soak_seconds
from tests.faults.load import Call, Load

pytestmark = pytest.mark.netns  # the agent runs in a private network namespace: root

SOAK = bool(os.environ.get("SCOPENET_SOAK_SECONDS"))
RATE = 20.0
"""API writes per second, across the load's lanes."""
MARGIN = 2.0
"""Seconds over the request timeout a refused call may take (a busy two-core machine)."""
SETTLE = 240.0 if SOAK else 90.0
"""Seconds the stack has to converge once the load stops."""
ALLOWED = {200, 201, 204, 404, 409, 503}
"""404/409: a retried delete finding its object gone / a teardown blocked by a 503'd create."""


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[Cluster]:
    stack = Cluster()
    try:
        await stack.start()
        yield stack
    finally:
        await stack.close()


async def _outbox(cluster: Cluster) -> int:
    conn = await asyncpg.connect(cluster.database_url)
    try:
        sql = "SELECT (SELECT count(*) FROM ipam.outbox) + (SELECT count(*) FROM topology.outbox)"
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def _probes(cluster: Cluster, path: str = "/readyz") -> dict[str, int]:
    """Each service's answer to ``path``. A probe that got no answer is asked once more: on a busy
    two-core machine a process (or this test) may miss one 3-second deadline without being stuck."""

    async def ask(proc: Any) -> int:
        status = (await proc.probe(path))[0]
        return status or (await proc.probe(path))[0]

    results = await asyncio.gather(*(ask(p) for p in cluster.procs.values()))
    return dict(zip(cluster.procs, results, strict=True))


async def _all_ready(cluster: Cluster, since: float, timeout: float = 60) -> float:
    """Seconds from ``since`` until every service's /readyz answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        probes = await _probes(cluster)
        if all(s == 200 for s in probes.values()):
            return time.monotonic() - since
        if time.monotonic() > deadline:
            bodies = {n: (await p.probe())[1] for n, p in cluster.procs.items() if probes[n] != 200}
            raise AssertionError(f"not ready {timeout}s after the fault: {bodies}\n{cluster.tails()}")
        await asyncio.sleep(0.2)


async def _watch_outage(cluster: Cluster, stop: asyncio.Event, seen: dict[str, set[int]]) -> None:
    """Probe every service once a second during the outage: what /readyz and /livez said."""
    while not stop.is_set():
        for path in ("/readyz", "/livez"):
            for name, status in (await _probes(cluster, path)).items():
                seen.setdefault(f"{name}{path}", set()).add(status)
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


async def _settle(cluster: Cluster, load: Load, prefix: str) -> tuple[Findings, float]:
    """Audit until the stack has converged with nothing wrong (or SETTLE passes); the last findings."""
    t0 = time.monotonic()
    while True:
        findings = await audit(cluster.database_url, cluster.nats.url, load.calls, prefix=prefix, streams=False)
        if findings.settled and not findings.problems:
            break
        if time.monotonic() - t0 > SETTLE:
            return findings, time.monotonic() - t0
        await asyncio.sleep(0.5)
    took = time.monotonic() - t0
    return await audit(cluster.database_url, cluster.nats.url, load.calls, prefix=prefix, streams=True), took


async def _event_latency(cluster: Cluster, name: str) -> float:
    """Seconds from a create's 201 to its event on the stream (then the network is deleted again)."""
    nc = await nats.connect(cluster.nats.url)
    got = asyncio.Event()

    async def on_event(msg: Any) -> None:
        if json.loads(msg.data)["resource"]["name"] == name:
            got.set()

    headers = {"X-Auth-Token": ADMIN_TOKEN}
    try:
        await nc.subscribe("scopenet.v1.evt.network.created", cb=on_event)
        await nc.flush()
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(f"{cluster.api_url}/v2.0/networks", json={"network": {"name": name}}) as r:
                assert r.status == 201, await r.text()
                id_ = (await r.json())["network"]["id"]
            t0 = time.monotonic()
            await asyncio.wait_for(got.wait(), 60)
            took = time.monotonic() - t0
            async with http.delete(f"{cluster.api_url}/v2.0/networks/{id_}") as r:
                assert r.status == 204, await r.text()
        return took
    finally:
        await nc.close()


def _check_calls(load: Load, windows: list[tuple[float, float]]) -> dict[str, Any]:
    """No call outside the allowed answers; none longer than the request timeout (+ margin); every
    call made while the dependency was down refused with 503."""
    bad = [c for c in load.calls if c.status not in ALLOWED]
    slow = [c for c in load.calls if c.latency > REQUEST_TIMEOUT + MARGIN]
    during: list[Call] = [c for c in load.calls if any(a + 0.5 <= c.started <= b for a, b in windows)]
    accepted = [c for c in during if c.status != 503]
    assert not bad, f"{len(bad)} calls answered outside {sorted(ALLOWED)}, e.g. {bad[:5]}"
    assert not slow, f"{len(slow)} calls took over {REQUEST_TIMEOUT + MARGIN}s, e.g. {slow[:5]}"
    assert during, "no call was made during the outage"
    assert not accepted, f"calls made while down were not refused with 503: {accepted[:5]}"
    refused = sorted(c.latency for c in during)
    return {"calls_during_outage": len(during), "max_latency_during_outage_s": round(refused[-1], 3)}


def _verdict(findings: Findings, took: float, cluster: Cluster) -> None:
    assert findings.settled, f"not converged {took:.0f}s after the load stopped: {findings.pending[:10]}"
    assert not findings.problems, "\n".join(findings.problems[:30])
    assert not cluster.dead(), f"{cluster.dead()} died:\n{cluster.tails()}"


async def _run(
    cluster: Cluster,
    record: Callable[..., None],
    *,
    prefix: str,
    kind: str,
    inject: Callable[[int], Any],
    short: float,
) -> None:
    """Load throughout; ``inject(i)`` is one fault (stop … start), repeated until the duration is up."""
    duration = soak_seconds(short)
    load = await Load(cluster.api_url, prefix=prefix, rate=RATE).start()
    started = time.monotonic()
    faults: list[dict[str, Any]] = []
    windows: list[tuple[float, float]] = []
    peak = 0
    try:
        i = 0
        while True:
            await asyncio.sleep(30 if SOAK else 3)  # steady load before each fault
            seen: dict[str, set[int]] = {}
            stop = asyncio.Event()
            watcher = asyncio.create_task(_watch_outage(cluster, stop, seen))
            down = time.monotonic()
            fault = await inject(i)
            up = time.monotonic()
            stop.set()
            await watcher
            # Down from the stop until the start began (a started server answers before `start` returns).
            windows.append((down - load.t0, fault.pop("starting_at") - load.t0))
            fault["ready_after_s"] = round(await _all_ready(cluster, up), 2)
            drained = time.monotonic()
            while (backlog := await _outbox(cluster)) > 0 and time.monotonic() - drained < 60:
                peak = max(peak, backlog)
                await asyncio.sleep(0.1)
            fault["outbox_drained_after_s"] = round(time.monotonic() - up, 2)
            # Events flow on NOTIFY again (the relays' poll is 30 s: a deaf relay shows here).
            fault["event_latency_after_s"] = round(await _event_latency(cluster, f"probe-{prefix}-{i}"), 3)
            fault["probes_while_down"] = {k: sorted(v) for k, v in sorted(seen.items())}
            faults.append(fault)
            i += 1
            if time.monotonic() - started >= duration:
                break
        await asyncio.sleep(3)  # load on the recovered stack
    finally:
        await load.stop()
    with (cluster.tmp / f"calls-{prefix}.jsonl").open("w") as out:  # for a post-mortem (SCOPENET_FAULTS_KEEP=1)
        out.writelines(json.dumps(dataclasses.asdict(c)) + "\n" for c in load.calls)
    findings, took = await _settle(cluster, load, prefix)
    figures = {
        "kind": kind,
        "faults": len(faults),
        "fault_details": faults,
        **load.summary(),
        "converged_after_load_s": round(took, 2),
        "outbox_peak": peak,
        "lost": len(findings.lost),
        "duplicated": len(findings.duplicated),
        "inconsistent": len(findings.half),
        **findings.figures,
    }
    try:
        figures |= _check_calls(load, windows)
        for fault in faults:
            probes = fault["probes_while_down"]
            assert all(statuses == [200] for k, statuses in probes.items() if k.endswith("/livez")), probes
            assert fault["event_latency_after_s"] < 5, f"events wait for the poll after {fault['fault']}"
        _verdict(findings, took, cluster)
    finally:
        record(**figures)


async def test_nats_outage(cluster: Cluster, record: Callable[..., None]) -> None:
    """NATS stopped (8 s in CI, 30 s in the soak) under load, then started again on the same port."""
    outage = 30.0 if SOAK else 8.0

    async def inject(_: int) -> dict[str, Any]:
        t0 = time.monotonic()
        await asyncio.to_thread(cluster.nats.stop)
        await asyncio.sleep(outage)
        starting = time.monotonic()
        await asyncio.to_thread(cluster.nats.start)
        return {"fault": "nats_stopped", "down_s": round(time.monotonic() - t0, 2), "starting_at": starting}

    await _run(cluster, record, prefix="nats", kind="nats", inject=inject, short=1)


async def test_postgres_restart(cluster: Cluster, record: Callable[..., None]) -> None:
    """Postgres stopped (clean, or crashed in the soak every other time), down a few seconds, started again."""
    down_for = 10.0 if SOAK else 3.0

    async def inject(i: int) -> dict[str, Any]:
        mode = "immediate" if SOAK and i % 2 else "fast"
        t0 = time.monotonic()
        await asyncio.to_thread(cluster.pg.stop, mode)
        await asyncio.sleep(down_for)
        starting = time.monotonic()
        await asyncio.to_thread(cluster.pg.start)
        return {"fault": f"postgres_stop_{mode}", "down_s": round(time.monotonic() - t0, 2), "starting_at": starting}

    await _run(cluster, record, prefix="pg", kind="postgres", inject=inject, short=1)
