"""``scopenet bench api --auth tokens,keystone``: what an authentication mode costs, side by side.

On a shared machine the load of the neighbours moves throughput by more than the few percent one
auth mode may cost over another, so two runs one after the other compare the neighbours, not the
modes. Here one IPAM and one topology serve one API process per mode (each with its own port and
token), and every concurrency level is cut into ``repeats`` slices run mode after mode, the order
flipped every slice: drift hits every mode alike. Per mode and level: creations per second over all
its slices (operations / seconds), the median of the slices' p50 and the worst p99; then each
mode's change against the first mode given.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from scopenet.commands.bench.api import Client, auth_setup, free_port, level, validation_cost, wait_ready
from scopenet.commands.bench.common import machine, peak_rss_mb, scratch_database, start_service, stop
from scopenet.infra.select import Endpoints

KINDS = ("subnets", "ports", "get")


def merge(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """One level of one mode from its slices (each a ``level()`` result)."""
    out: dict[str, Any] = {"clients": slices[0]["clients"], "slices": len(slices)}
    for kind in KINDS:
        parts = [s[kind] for s in slices]
        ops, seconds = sum(p["operations"] for p in parts), sum(p["seconds"] for p in parts)
        out[kind] = {
            "operations": ops,
            "errors": sum(p["errors"] for p in parts),
            "ops_per_s": round(ops / seconds, 1) if seconds else None,
            "p50_ms": statistics.median(p["p50_ms"] for p in parts if p["p50_ms"] is not None),
            "p99_ms": max(p["p99_ms"] for p in parts if p["p99_ms"] is not None),
            "slices_ops_per_s": [p["ops_per_s"] for p in parts],
        }
    return out


def changes(by_mode: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each mode's creation throughput against the first mode's, per level (negative: slower)."""
    base_mode, *others = list(by_mode)
    out = {}
    for mode in others:
        rows = []
        for base, this in zip(by_mode[base_mode], by_mode[mode], strict=True):
            row: dict[str, Any] = {"clients": base["clients"]}
            for kind in ("subnets", "ports"):
                b, t = base[kind]["ops_per_s"], this[kind]["ops_per_s"]
                row[f"{kind}_change_pct"] = round((t / b - 1) * 100, 1) if b and t else None
            rows.append(row)
        out[f"{mode}_vs_{base_mode}"] = rows
    return out


async def run(
    ep: Endpoints, *, levels: list[int], per_level: int, modes: list[str], repeats: int = 4
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="scopenet-bench-auth-") as workdir, contextlib.ExitStack() as stack:
        ports = {m: free_port() for m in modes}
        setups = {}
        for m in modes:
            (Path(workdir) / m).mkdir()
            setups[m] = await asyncio.to_thread(auth_setup, m, Path(workdir) / m, ports[m], stack)
        try:
            result = await _run(ep, levels=levels, per_level=per_level, ports=ports, setups=setups, repeats=repeats)
            keystone_env, keystone_token = setups.get("keystone", ({}, None))
            if keystone_token:
                result["keystone_validation"] = await validation_cost(keystone_env, keystone_token)
        finally:
            await asyncio.to_thread(stack.close)
    return result


async def _run(
    ep: Endpoints,
    *,
    levels: list[int],
    per_level: int,
    ports: dict[str, int],
    setups: dict[str, tuple[dict[str, str], str | None]],
    repeats: int,
) -> dict[str, Any]:
    modes = list(setups)
    async with scratch_database(ep) as db_url, contextlib.AsyncExitStack() as sessions:
        procs = {
            "ipam": start_service("ipam", database_url=db_url, nats_url=ep.nats_url),
            "topology": start_service("topology", database_url=db_url, nats_url=ep.nats_url),
        }
        for m in modes:
            env = {**setups[m][0], "SCOPENET_API_PORT": str(ports[m])}
            procs[f"api-{m}"] = start_service("api", database_url=db_url, nats_url=ep.nats_url, extra_env=env)
        try:
            clients = {}
            for m in modes:
                token = setups[m][1]
                session = await sessions.enter_async_context(
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=max(levels) * 2),
                        headers={"X-Auth-Token": token} if token else {},
                    )
                )
                clients[m] = Client(session, f"http://127.0.0.1:{ports[m]}")
                await wait_ready(clients[m])
            slices: dict[str, list[list[dict[str, Any]]]] = {m: [[] for _ in levels] for m in modes}
            index = 0
            for li, n in enumerate(levels):
                for r in range(repeats):
                    for m in modes if r % 2 == 0 else modes[::-1]:
                        slices[m][li].append(await level(clients[m], n, max(1, per_level // repeats), index))
                        index += 1
        finally:
            rss = {name: peak_rss_mb(p.pid) for name, p in procs.items()}
            for p in procs.values():
                stop(p)
    by_mode = {m: [merge(s) for s in slices[m]] for m in modes}
    return {
        "benchmark": "api-auth",
        "machine": machine(),
        "infrastructure": ep.source,
        "per_level": per_level,
        "repeats": repeats,
        "auth": modes,
        "by_auth": by_mode,
        "changes": changes(by_mode),
        "peak_rss_mb": rss,
    }
