"""``scopenet bench api``: the HTTP API end to end, side by side with Neutron's figures (issue 4).

IPAM, topology and the API run as their own processes (as in production, API in ``noauth`` mode so
the clients need no tokens file); the clients are aiohttp sessions in this process. Per concurrency
level: subnets created from one pool, ports created on one subnet, GET of one resource, and a list
of 1,000 ports. Each level uses fresh networks so levels do not slow each other down.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp

from scopenet.commands.bench.common import drive, machine, peak_rss_mb, scratch_database, start_service, stop
from scopenet.infra.select import Endpoints

NEUTRON = {
    "source": "issue 4: Neutron 29, uWSGI 2 workers, MariaDB, this kind of machine",
    "subnets_per_s_1_client": 7,
    "ports_per_s_1_client": "7-15",
    "subnets_per_s_8_clients": "4.5-6",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.s = session
        self.base = base

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        async with self.s.request(method, self.base + path, json=body) as resp:
            data = await resp.read()
            if resp.status != expect:
                raise RuntimeError(f"{method} {path} -> {resp.status} {data[:200]!r}")
            return await resp.json() if data else None


async def _wait_ready(c: Client, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await c.call("GET", "/v2.0/networks")
            await c.call("GET", "/v2.0/subnetpools")
            return
        except (RuntimeError, aiohttp.ClientError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def _level(c: Client, clients: int, per_level: int, index: int) -> dict[str, Any]:
    pool = (
        await c.call(
            "POST",
            "/v2.0/subnetpools",
            {"subnetpool": {"name": f"bench-{index}", "prefixes": [f"{10 + index}.0.0.0/8"], "default_prefixlen": 28}},
            201,
        )
    )["subnetpool"]
    nets = [
        (await c.call("POST", "/v2.0/networks", {"network": {"name": f"bench-{index}-{i}"}}, 201))["network"]["id"]
        for i in range(clients)
    ]

    async def subnet(i: int) -> None:
        body = {"subnet": {"network_id": nets[i % clients], "ip_version": 4, "subnetpool_id": pool["id"]}}
        await c.call("POST", "/v2.0/subnets", body, 201)

    subnets = await drive(clients, per_level, subnet)

    net = (await c.call("POST", "/v2.0/networks", {"network": {"name": f"bench-ports-{index}"}}, 201))["network"]
    sub_body = {"network_id": net["id"], "ip_version": 4, "cidr": f"{100 + index}.0.0.0/16"}
    await c.call("POST", "/v2.0/subnets", {"subnet": sub_body}, 201)

    async def port(_: int) -> None:
        await c.call("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}, 201)

    ports = await drive(clients, per_level, port)

    async def get(_: int) -> None:
        await c.call("GET", f"/v2.0/networks/{net['id']}")

    gets = await drive(clients, per_level, get)
    listing: dict[str, Any] | None = None
    if per_level >= 1000:

        async def list_(_: int) -> None:
            body = await c.call("GET", f"/v2.0/ports?network_id={net['id']}&limit=1000")
            if len(body["ports"]) != 1000:
                raise RuntimeError(f"listed {len(body['ports'])} ports")

        listing = await drive(clients, max(clients * 4, 20), list_)
    return {"clients": clients, "subnets": subnets, "ports": ports, "get": gets, "list_1000": listing}


async def run(ep: Endpoints, *, levels: list[int], per_level: int) -> dict[str, Any]:
    async with scratch_database(ep) as db_url:
        port = _free_port()
        procs = {
            "ipam": start_service("ipam", database_url=db_url, nats_url=ep.nats_url),
            "topology": start_service("topology", database_url=db_url, nats_url=ep.nats_url),
            "api": start_service(
                "api",
                database_url=db_url,
                nats_url=ep.nats_url,
                extra_env={"SCOPENET_AUTH": "noauth", "SCOPENET_API_PORT": str(port)},
            ),
        }
        try:
            conn = aiohttp.TCPConnector(limit=max(levels) * 2)
            async with aiohttp.ClientSession(connector=conn) as session:
                c = Client(session, f"http://127.0.0.1:{port}")
                await _wait_ready(c)
                results = [await _level(c, n, per_level, i) for i, n in enumerate(levels)]
        finally:
            rss = {name: peak_rss_mb(p.pid) for name, p in procs.items()}
            for p in procs.values():
                stop(p)
    return {
        "benchmark": "api",
        "machine": machine(),
        "infrastructure": ep.source,
        "per_level": per_level,
        "levels": results,
        "peak_rss_mb": rss,
        "neutron": NEUTRON,
    }
