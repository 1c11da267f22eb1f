"""The agent's heartbeat: its ``AgentHeartbeat`` under its id in the ``scopenet_agents`` KV bucket.

Topology counts an agent alive while it has heard from it within ``agent_ttl`` (10 s by default)
and schedules routers only onto live agents, so the agent puts its heartbeat every
``agent_heartbeat_interval`` seconds (2 s), whatever else it is doing. A failed put (NATS away) is
logged and retried on the next beat; there is nothing else to do about it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError

from scopenet.contracts.routerspec import AGENTS_BUCKET, AgentHeartbeat
from scopenet.runtime import log
from scopenet.runtime.supervise import every

_log = log.get("scopenet.l3_agent.heartbeat")

BUCKET_TTL = 10.0
"""Entry lifetime if the agent has to create the bucket itself: topology's default ``agent_ttl``
(topology creates the bucket the same way when it starts first)."""


async def agents_bucket(js: JetStreamContext) -> Any:
    try:
        return await js.key_value(AGENTS_BUCKET)
    except BucketNotFoundError:
        try:
            return await js.create_key_value(KeyValueConfig(bucket=AGENTS_BUCKET, ttl=BUCKET_TTL, history=1))
        except Exception:  # created by topology meanwhile
            return await js.key_value(AGENTS_BUCKET)


class Heartbeat:
    def __init__(
        self, js: JetStreamContext, *, agent_id: str, host: str, routers: Callable[[], int], interval: float
    ) -> None:
        self.js = js
        self.agent_id = agent_id
        self.host = host
        self.routers = routers
        self.interval = interval
        self.started_at = datetime.now(UTC).isoformat()
        self.last_beat: float | None = None
        """``time.monotonic()`` of the last successful put."""
        self.ttl: float | None = None
        """The bucket's entry lifetime: how long topology waits before it moves this agent's routers."""
        self._kv: Any = None
        self._failing = False

    def beat(self) -> AgentHeartbeat:
        return AgentHeartbeat(
            agent_id=self.agent_id, host=self.host, routers=self.routers(), started_at=self.started_at
        )

    async def run(self) -> None:
        await every(self.interval, self.put, log=_log, event="heartbeat_failed", first=True)

    async def put(self) -> None:
        """One beat (a failure is logged by ``run``, which beats again an interval later)."""
        try:
            if self._kv is None:
                self._kv = await agents_bucket(self.js)
                self.ttl = (await self._kv.status()).ttl or None
            await self._kv.put(self.agent_id, self.beat().model_dump_json().encode())
        except Exception:
            self._failing = True
            raise
        now = time.monotonic()
        if self._failing:
            _log.info("heartbeat_resumed", down_seconds=round(now - (self.last_beat or now), 1))
        self.last_beat = now
        self._failing = False
