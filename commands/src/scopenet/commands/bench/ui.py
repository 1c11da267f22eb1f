"""``scopenet bench ui``: how long the web UI's scope map takes to answer for a large model — by
default 1,000 routers and 10,000 ports in a real database (IPAM and topology as their own processes,
the API in this process, ``noauth`` so the caller is an admin who sees everything).

Each router has its gateway on one external network (numbered from a scoped pool), an interface on
an unscoped network and one on a network from the scope's pool (so every router crosses scopes);
the remaining ports are instances spread over those networks. Reported: the map's full answer
(fetching every list over NATS + building the layout + rendering the SVG) and its render part alone
(the ``Server-Timing`` header), median and max over the runs, for the default (collapsed) map, a
search, and the findings page."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import time
from typing import Any

import aiohttp

from scopenet.commands.bench.common import machine, scratch_database, start_service, stop
from scopenet.infra.select import Endpoints


class _Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        for _ in range(100):
            async with self.session.post(self.base + path, json=body) as r:
                if r.status == 503:  # services still starting
                    await asyncio.sleep(0.2)
                    continue
                assert r.status in (200, 201), (path, r.status, await r.text())
                return await r.json()
        raise RuntimeError(f"{path}: the services did not come up")

    async def put(self, path: str, body: dict[str, Any]) -> Any:
        async with self.session.put(self.base + path, json=body) as r:
            assert r.status == 200, (path, r.status, await r.text())
            return await r.json()


async def _populate(api: _Api, *, routers: int, ports: int, clients: int) -> dict[str, int]:
    scope = (await api.post("/v2.0/address-scopes", {"address_scope": {"name": "bench-scope", "ip_version": 4,
             "shared": True}}))["address_scope"]  # fmt: skip
    pool = (await api.post("/v2.0/subnetpools", {"subnetpool": {"name": "bench-pool", "prefixes": ["100.64.0.0/10"],
            "address_scope_id": scope["id"], "default_prefixlen": 26, "shared": True}}))["subnetpool"]  # fmt: skip
    ext = (await api.post("/v2.0/networks", {"network": {"name": "bench-public", "router:external": True}}))["network"]
    await api.post("/v2.0/subnets", {"subnet": {"network_id": ext["id"], "ip_version": 4, "cidr": "100.64.0.0/20",
                   "subnetpool_id": pool["id"], "enable_dhcp": False}})  # fmt: skip
    networks: list[str] = []
    made = {"routers": 0, "ports": 0}
    gate = asyncio.Semaphore(clients)

    async def one_router(i: int) -> None:
        async with gate:
            a = (await api.post("/v2.0/networks", {"network": {"name": f"bench-a-{i}"}}))["network"]
            b = (await api.post("/v2.0/networks", {"network": {"name": f"bench-b-{i}"}}))["network"]
            sa = (await api.post("/v2.0/subnets", {"subnet": {"network_id": a["id"], "ip_version": 4, "name": f"a-{i}",
                  "cidr": f"10.{i // 256}.{i % 256}.0/24", "enable_dhcp": False}}))["subnet"]  # fmt: skip
            sb = (await api.post("/v2.0/subnets", {"subnet": {"network_id": b["id"], "ip_version": 4, "name": f"b-{i}",
                  "subnetpool_id": pool["id"], "enable_dhcp": False}}))["subnet"]  # fmt: skip
            r = (await api.post("/v2.0/routers", {"router": {"name": f"bench-router-{i:04d}",
                 "external_gateway_info": {"network_id": ext["id"]}}}))["router"]  # fmt: skip
            for s in (sa, sb):
                await api.put(f"/v2.0/routers/{r['id']}/add_router_interface", {"subnet_id": s["id"]})
            networks.extend((a["id"], b["id"]))
            made["routers"] += 1
            made["ports"] += 3

    await asyncio.gather(*(one_router(i) for i in range(routers)))

    async def one_port(i: int) -> None:
        async with gate:
            await api.post("/v2.0/ports", {"port": {"network_id": networks[i % len(networks)], "name": f"vm-{i}"}})
            made["ports"] += 1

    await asyncio.gather(*(one_port(i) for i in range(max(0, ports - made["ports"]))))
    return made


async def _time(session: aiohttp.ClientSession, url: str, runs: int) -> dict[str, Any]:
    total, render = [], []
    for _ in range(runs):
        started = time.perf_counter()
        async with session.get(url) as r:
            assert r.status == 200, (url, r.status)
            await r.read()
            timing = r.headers.get("Server-Timing", "")
        total.append(1000 * (time.perf_counter() - started))
        found = re.search(r"render;dur=([0-9.]+)", timing)
        if found:
            render.append(float(found.group(1)))
    out: dict[str, Any] = {
        "runs": runs,
        "median_ms": round(statistics.median(total), 1),
        "max_ms": round(max(total), 1),
    }
    if render:
        out |= {"render_median_ms": round(statistics.median(render), 1), "render_max_ms": round(max(render), 1)}
    return out


async def run(ep: Endpoints, *, routers: int, ports: int, runs: int, clients: int = 16) -> dict[str, Any]:
    from pathlib import Path

    from scopenet.services.api.app import api_service
    from scopenet.services.api.settings import ApiSettings

    async with scratch_database(ep) as db_url:
        ipam = start_service("ipam", database_url=db_url, nats_url=ep.nats_url)
        topo = start_service("topology", database_url=db_url, nats_url=ep.nats_url)
        try:
            settings = ApiSettings(nats_url=ep.nats_url, api_port=0, health_port=0, auth="noauth", request_timeout=60,
                                   state_dir=Path(os.environ.get("TMPDIR", "/tmp")))  # fmt: skip
            async with api_service(settings, nats_url=ep.nats_url) as running, aiohttp.ClientSession() as s:
                started = time.perf_counter()
                made = await _populate(_Api(s, running.url), routers=routers, ports=ports, clients=clients)
                populate_s = round(time.perf_counter() - started, 1)
                await _time(s, f"{running.url}/ui/", 1)  # warm: templates compiled, connections made
                results = {
                    "map": await _time(s, f"{running.url}/ui/", runs),
                    "map_search": await _time(s, f"{running.url}/ui/?q=bench-router-0007", runs),
                    "map_routers_expanded": await _time(s, f"{running.url}/ui/?expand=routers", runs),
                    "findings": await _time(s, f"{running.url}/ui/findings", runs),
                }
        finally:
            stop(topo)
            stop(ipam)
    return {
        "benchmark": "ui",
        "machine": machine(),
        "infrastructure": ep.source,
        "model": made,
        "populate_seconds": populate_s,
        "pages": results,
        "target": {"map_ms": 500},
    }
