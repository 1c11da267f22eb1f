"""A steady load of API writes, every response written down.

Lanes (concurrent clients) run the same life cycle over and over: network → subnet → two ports →
router → router interface → delete one port; then, once a lane holds more than ``keep`` finished
cycles, the oldest is torn down (interface, router, port, subnet, network). All lanes share one
rate limit, so the request rate stays the same whether the stack answers in 2 ms or refuses at
once. Every create carries a unique name, which is how the audit later tells "created, as
acknowledged" from "created by nobody": a create answered 503 may or may not have committed, and
the audit accepts either (but never half of it).

A create that fails ends its cycle (what was made is torn down); a delete is retried (as clients
do) until it is acknowledged, found gone (404), refused because of something a 503'd create may
have left (409), or the load is over and a deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tests.faults.cluster import ADMIN_TOKEN

OK = {200, 201, 204}
GONE = OK | {404}


@dataclass
class Call:
    op: str
    """create_network, create_subnet, create_port, create_router, add_interface,
    remove_interface, delete_port, delete_router, delete_subnet, delete_network"""
    name: str | None
    target: str | None
    """The id acted on (deletes, interfaces: the router), or None for creates."""
    status: int
    """HTTP status; 0 when no answer came (connection refused, client timeout)."""
    started: float
    latency: float
    id: str | None = None
    """The created resource's id (the interface's port id for add_interface)."""
    subnet: str | None = None
    """For interface calls: the subnet attached or detached."""
    error: str | None = None


@dataclass
class Cycle:
    lane: int
    n: int
    network: str | None = None
    subnet: str | None = None
    ports: list[str] = field(default_factory=list)
    router: str | None = None
    interface: bool = False


class Load:
    def __init__(self, url: str, *, prefix: str, rate: float, lanes: int = 4, keep: int = 2) -> None:
        self.url = url
        self.prefix = prefix
        self.rate = rate
        self.lanes = lanes
        self.keep = keep
        self.calls: list[Call] = []
        self.t0 = time.monotonic()
        self._next = time.monotonic()
        self._stop = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ running

    async def start(self) -> Load:
        # No client-side timeout below a minute: a hanging call must show up as a long latency.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self._tasks = [asyncio.create_task(self._lane(i), name=f"load-lane-{i}") for i in range(self.lanes)]
        return self

    async def stop(self, *, teardown_deadline: float = 60) -> None:
        """Stop starting cycles; let lanes finish the deletes they are retrying (bounded)."""
        self._stop.set()
        self._deadline = time.monotonic() + teardown_deadline
        try:
            await asyncio.wait_for(asyncio.gather(*self._tasks), timeout=teardown_deadline + 30)
        finally:
            for task in self._tasks:
                task.cancel()
            if self._session is not None:
                await self._session.close()

    _deadline = float("inf")

    async def _tick(self) -> None:
        """The shared rate limit: one request per 1/rate seconds across all lanes."""
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + 1.0 / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _call(
        self, op: str, method: str, path: str, body: Any = None, *, name: str | None = None, target: str | None = None
    ) -> tuple[Call, Any]:
        await self._tick()
        assert self._session is not None
        started = time.monotonic()
        status, parsed, error = 0, None, None
        try:
            async with self._session.request(
                method,
                self.url + path,
                data=orjson.dumps(body) if body is not None else None,
                headers={"X-Auth-Token": ADMIN_TOKEN, "Content-Type": "application/json"},
            ) as resp:
                status = resp.status
                raw = await resp.read()
                with contextlib.suppress(ValueError):
                    parsed = orjson.loads(raw) if raw else None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = repr(exc)
        call = Call(op, name, target, status, started - self.t0, time.monotonic() - started, error=error)
        if status not in OK and isinstance(parsed, dict) and "NeutronError" in parsed:
            call.error = parsed["NeutronError"].get("type")
        self.calls.append(call)
        return call, parsed

    async def _create(self, kind: str, body: dict[str, Any], name: str) -> str | None:
        call, parsed = await self._call(f"create_{kind}", "POST", f"/v2.0/{kind}s", {kind: body}, name=name)
        if call.status == 201 and isinstance(parsed, dict):
            call.id = parsed[kind]["id"]
            return call.id
        return None

    async def _delete(self, kind: str, id_: str) -> bool:
        """Retried until gone (True) or refused with 409 / out of time (False)."""
        while True:
            call, _ = await self._call(f"delete_{kind}", "DELETE", f"/v2.0/{kind}s/{id_}", target=id_)
            if call.status in GONE:
                return True
            if call.status == 409 or time.monotonic() > self._deadline:
                return False

    async def _interface(self, verb: str, router: str, subnet: str) -> bool:
        while True:
            call, parsed = await self._call(
                f"{verb}_interface",
                "PUT",
                f"/v2.0/routers/{router}/{verb}_router_interface",
                {"subnet_id": subnet},
                target=router,
            )
            call.subnet = subnet
            if call.status == 200 and isinstance(parsed, dict):
                call.id = parsed.get("port_id")
                return True
            if verb == "add":  # a create: not retried (the cycle ends)
                return False
            if call.status == 404 or time.monotonic() > self._deadline:
                return call.status == 404
            if call.status == 409:
                return False

    async def _lane(self, lane: int) -> None:
        kept: deque[Cycle] = deque()
        n = 0
        while not self._stop.is_set():
            cycle = Cycle(lane, n)
            complete = await self._build(cycle)
            n += 1
            if complete:
                kept.append(cycle)
            else:
                await self._teardown(cycle)
            while len(kept) > self.keep:
                await self._teardown(kept.popleft())

    async def _build(self, c: Cycle) -> bool:
        base = f"{self.prefix}-{c.lane}-{c.n}"
        c.network = await self._create("network", {"name": f"{base}-net"}, f"{base}-net")
        if c.network is None:
            return False
        index = c.lane * 4096 + c.n % 4096  # a /24 of its own per lane and cycle (64k in 10/8)
        cidr = f"10.{index // 256 % 256}.{index % 256}.0/24"
        c.subnet = await self._create(
            "subnet",
            {"name": f"{base}-sub", "network_id": c.network, "ip_version": 4, "cidr": cidr},
            f"{base}-sub",
        )
        if c.subnet is None:
            return False
        for i in range(2):
            port = await self._create("port", {"name": f"{base}-port{i}", "network_id": c.network}, f"{base}-port{i}")
            if port is None:
                return False
            c.ports.append(port)
        c.router = await self._create("router", {"name": f"{base}-router"}, f"{base}-router")
        if c.router is None:
            return False
        c.interface = await self._interface("add", c.router, c.subnet)
        if not c.interface:
            return False
        if await self._delete("port", c.ports[0]):
            c.ports.pop(0)
        return True

    async def _teardown(self, c: Cycle) -> None:
        """Best effort, in dependency order; stops at the first step a 503'd create may block."""
        if c.router is not None and c.subnet is not None:
            # Also when the add was not acknowledged: it may have committed.
            if not await self._interface("remove", c.router, c.subnet):
                return
        if c.router is not None and not await self._delete("router", c.router):
            return
        for port in list(c.ports):
            if not await self._delete("port", port):
                return
        if c.subnet is not None and not await self._delete("subnet", c.subnet):
            return
        if c.network is not None:
            await self._delete("network", c.network)

    # ------------------------------------------------------------ figures

    def summary(self, since: float = 0.0) -> dict[str, Any]:
        calls = [c for c in self.calls if c.started >= since]
        statuses = Counter(str(c.status) for c in calls)
        refused = [c.latency for c in calls if c.status == 503]
        return {
            "operations": len(calls),
            "by_status": dict(sorted(statuses.items())),
            "max_latency_s": round(max((c.latency for c in calls), default=0.0), 3),
            "max_503_latency_s": round(max(refused, default=0.0), 3),
            "p50_503_latency_s": round(sorted(refused)[len(refused) // 2], 4) if refused else None,
        }
