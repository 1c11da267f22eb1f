"""The agents' heartbeat bucket on NATS, and following it.

Agents put an ``AgentHeartbeat`` under their id in the ``scopenet_agents`` KV bucket every few
seconds; entries expire (bucket TTL). The TTL is the bucket's (whoever created it), and "heard"
is the server's timestamp of the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError
from pydantic import ValidationError

from scopenet.contracts import routerspec as rs
from scopenet.services.topology.agents.rules import age

log = structlog.get_logger("topology.agents")


async def agents_bucket(js: JetStreamContext, ttl: float):  # type: ignore[no-untyped-def]
    """The heartbeat bucket, created if missing (agents may create it too: same config)."""
    try:
        return await js.key_value(rs.AGENTS_BUCKET)
    except BucketNotFoundError:
        try:
            return await js.create_key_value(KeyValueConfig(bucket=rs.AGENTS_BUCKET, ttl=ttl, history=1))
        except Exception:
            return await js.key_value(rs.AGENTS_BUCKET)


async def follow(watcher: Any, *, silence: float, heard: Callable[[rs.AgentHeartbeat, float], None]) -> None:
    """Hear heartbeats until the watcher has been silent for ``silence`` seconds — agents beat every
    few seconds, so silence that long means the watcher itself was lost (e.g. NATS restarted
    without it): return, and a new one replays each agent's last entry with its timestamp."""
    while True:
        try:
            entry = await watcher.updates(timeout=silence)
        except NatsTimeout:
            return
        if entry is None or entry.value is None or entry.operation is not None:
            continue
        try:
            beat = rs.AgentHeartbeat.model_validate_json(entry.value)
        except ValidationError as exc:
            log.warning("agent_heartbeat_invalid", key=entry.key, error=str(exc.errors()[0]["msg"]))
            continue
        heard(beat, age(entry.created, now=datetime.now(UTC)))
