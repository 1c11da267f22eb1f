"""Shared benchmark plumbing: a throwaway database, service subprocesses, latency figures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from scopenet.infra import processes
from scopenet.infra.select import Endpoints
from scopenet.store.roles import drop_roles_sql


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


@contextlib.asynccontextmanager
async def scratch_database(ep: Endpoints) -> AsyncIterator[str]:
    """A database of its own for one run, dropped afterwards."""
    name = f"scopenet_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(ep.database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield urlunsplit(urlsplit(ep.database_url)._replace(path=f"/{name}"))
    finally:
        conn = await asyncpg.connect(ep.database_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(drop_roles_sql(name))  # the services' roles for it (store/roles.py)
        finally:
            await conn.close()


_QUOTAS = {
    "IPAM": ("SUBNETPOOL", "ADDRESS_SCOPE", "RBAC_POLICY"),
    "TOPOLOGY": ("NETWORK", "SUBNET", "PORT", "ROUTER", "FLOATINGIP", "RBAC_POLICY"),
}


def start_service(
    name: str, *, database_url: str, nats_url: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A service for a benchmark: warnings only, nothing on stdout (the figures go there), and no
    per-project quota (a benchmark creates thousands of ports in one project; the quota check
    itself still runs)."""
    env = {"SCOPENET_DATABASE_URL": database_url, "SCOPENET_NATS_URL": nats_url, "SCOPENET_LOG_LEVEL": "warning"}
    env |= {f"SCOPENET_{svc}_QUOTA_{r}": "-1" for svc, names in _QUOTAS.items() for r in names}
    return processes.start_service(name, env={**env, **(extra_env or {})}, quiet=True)


def peak_rss_mb(pid: int) -> float | None:
    """The kernel's high-water mark of the process's resident memory (VmHWM)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def stop(proc: subprocess.Popen[bytes]) -> None:
    processes.stop([proc], timeout=15)


async def drive(clients: int, total: int, op: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    """Run ``total`` operations with ``clients`` concurrent workers; ops/s and latency percentiles."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            try:
                await op(i)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "clients": clients,
        "operations": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": round(elapsed, 3),
        "ops_per_s": round(len(latencies) / elapsed, 1) if elapsed else None,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
    }
