"""The Neutron HTTP API as a user's client sees it while services die under it.

Every call ends in one of four ways, and the workload decides from that alone what to do next:

- ``ok``: a 2xx — the change is acknowledged;
- ``refused``: a 4xx other than a timeout-like one — nothing changed (Neutron's error type kept);
- ``unsent``: the API did not accept the connection — nothing was sent, so nothing changed;
- ``unknown``: a 503, a timeout, a connection that broke after the request went out — the change
  may or may not have happened, and only looking again tells.

A 5xx other than 503 is a bug of the service: it is recorded (``bugs``) and treated as unknown so
that the run goes on and the test reports every one at the end.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp

Kind = Literal["ok", "refused", "unsent", "unknown"]


@dataclass(frozen=True)
class Reply:
    kind: Kind
    status: int | None = None
    body: Any = None

    @property
    def error_type(self) -> str:
        if isinstance(self.body, dict):
            return str((self.body.get("NeutronError") or {}).get("type", ""))
        return ""

    @property
    def message(self) -> str:
        if isinstance(self.body, dict):
            return str((self.body.get("NeutronError") or {}).get("message", ""))
        return str(self.body)[:200]


@dataclass
class Api:
    """One project's view of the API (``noauth``: the project and roles are headers)."""

    base: str
    session: aiohttp.ClientSession
    project: str
    roles: str = "member"
    timeout: float = 8.0
    bugs: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    """Every call and how it ended (the test writes it beside the services' logs)."""

    def as_project(self, project: str, roles: str = "member") -> Api:
        return Api(self.base, self.session, project, roles, self.timeout, self.bugs, self.trace)

    async def call(self, method: str, path: str, body: Any = None) -> Reply:
        reply = await self._call(method, path, body)
        when = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
        self.trace.append(f"{when} {self.project[:8]} {method} {path} -> {reply.kind} {reply.status or ''}")
        return reply

    async def _call(self, method: str, path: str, body: Any) -> Reply:
        headers = {"X-Project-Id": self.project, "X-Roles": self.roles}
        try:
            async with asyncio.timeout(self.timeout):
                async with self.session.request(method, self.base + path, json=body, headers=headers) as resp:
                    data: Any = await resp.json(content_type=None) if resp.status != 204 else None
                    status = resp.status
        except aiohttp.ClientConnectorError:
            return Reply("unsent")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return Reply("unknown")
        if 200 <= status < 300:
            return Reply("ok", status, data)
        if status == 503:
            return Reply("unknown", status, data)
        if status >= 500:
            self.bugs.append(f"{method} {path} -> {status} {data}")
            return Reply("unknown", status, data)
        return Reply("refused", status, data)

    async def get(self, path: str) -> Any:
        """A read that must succeed: retried until the API answers 200 (reads change nothing)."""
        while True:
            reply = await self.call("GET", path)
            if reply.kind == "ok":
                return reply.body
            if reply.kind == "refused":
                raise AssertionError(f"GET {path}: {reply.status} {reply.error_type}: {reply.message}")
            await asyncio.sleep(0.1)
