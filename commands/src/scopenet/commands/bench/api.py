"""``scopenet bench api``: the HTTP API end to end, side by side with Neutron's figures (issue 4).

IPAM, topology and the API run as their own processes (as in production); the clients are aiohttp
sessions in this process. ``auth`` picks the API's authentication: ``noauth`` (no token at all),
``tokens`` (a tokens file) or ``keystone`` (a Keystone of its own; the clients send a token of its
admin, which auth_token validates once and then finds in its cache), so the cost of each can be
compared. Per concurrency
level: subnets created from one pool, ports created on one subnet, GET of one resource, and a list
of 1,000 ports. Each level uses fresh networks so levels do not slow each other down.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import time
from pathlib import Path
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


def free_port() -> int:
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


async def wait_ready(c: Client, timeout: float = 90) -> None:
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


async def level(c: Client, clients: int, per_level: int, index: int) -> dict[str, Any]:
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


def auth_setup(auth: str, workdir: Path, port: int, stack: contextlib.ExitStack) -> tuple[dict[str, str], str | None]:
    """The API's variables for ``auth`` and the token the clients send (None: no token)."""
    if auth == "noauth":
        return {"SCOPENET_AUTH": "noauth"}, None
    if auth == "tokens":
        from scopenet.services.api.auth import write_tokens_file

        path = workdir / "tokens.yaml"
        doc = write_tokens_file(path)
        admin = next(t for t, spec in doc["tokens"].items() if "admin" in spec["roles"])
        return {"SCOPENET_AUTH": "tokens", "SCOPENET_TOKENS_FILE": str(path)}, admin
    from scopenet.commands.keystone import issue_token, local_keystone

    api_url = f"http://127.0.0.1:{port}"
    local = stack.enter_context(local_keystone(workdir / "keystone", api_url=api_url, throwaway=True))
    return local.api_env, issue_token(local.admin_env)[0]


async def run(ep: Endpoints, *, levels: list[int], per_level: int, auth: str = "noauth") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="scopenet-bench-api-") as workdir, contextlib.ExitStack() as stack:
        port = free_port()
        auth_env, token = await asyncio.to_thread(auth_setup, auth, Path(workdir), port, stack)
        try:
            result = await _run(ep, levels=levels, per_level=per_level, port=port, auth_env=auth_env, token=token)
            if auth == "keystone" and token:
                result["keystone_validation"] = await validation_cost(auth_env, token)
        finally:
            await asyncio.to_thread(stack.close)
    return {**result, "auth": auth}


async def validation_cost(auth_env: dict[str, str], token: str, n: int = 2000) -> dict[str, Any]:
    """What auth_token costs per request once the token is cached: ``n`` validations one after the
    other through the API's own path (event loop → thread pool → AuthProtocol), wall and CPU time.
    CPU time hardly depends on the neighbours' load, unlike the throughput figures."""
    from aiohttp.test_utils import make_mocked_request

    from scopenet.services.api.keystone import KeystoneAuthenticator, config_from
    from scopenet.services.api.settings import ApiSettings

    settings = ApiSettings(**{k.removeprefix("SCOPENET_").lower(): v for k, v in auth_env.items()})  # type: ignore[arg-type]
    auth = KeystoneAuthenticator(config_from(settings))
    request = make_mocked_request("POST", "/v2.0/ports", headers={"X-Auth-Token": token})
    try:
        t0 = time.perf_counter()
        await auth.identify(request, "req-0")  # not cached yet: one call to Keystone
        first = time.perf_counter() - t0
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(n):
            await auth.identify(request, f"req-{i}")
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        auth.close()
    return {
        "validations": n,
        "first_ms": round(first * 1000, 2),
        "cached_wall_us": round(wall / n * 1e6, 1),
        "cached_cpu_us": round(cpu / n * 1e6, 1),
    }


async def _run(
    ep: Endpoints, *, levels: list[int], per_level: int, port: int, auth_env: dict[str, str], token: str | None
) -> dict[str, Any]:
    async with scratch_database(ep) as db_url:
        procs = {
            "ipam": start_service("ipam", database_url=db_url, nats_url=ep.nats_url),
            "topology": start_service("topology", database_url=db_url, nats_url=ep.nats_url),
            "api": start_service(
                "api",
                database_url=db_url,
                nats_url=ep.nats_url,
                extra_env={**auth_env, "SCOPENET_API_PORT": str(port)},
            ),
        }
        try:
            conn = aiohttp.TCPConnector(limit=max(levels) * 2)
            headers = {"X-Auth-Token": token} if token else {}
            async with aiohttp.ClientSession(connector=conn, headers=headers) as session:
                c = Client(session, f"http://127.0.0.1:{port}")
                await wait_ready(c)
                results = [await level(c, n, per_level, i) for i, n in enumerate(levels)]
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
