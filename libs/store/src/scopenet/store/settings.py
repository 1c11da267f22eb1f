"""What a Postgres-backed command service (ipam, topology) reads besides the shared settings.

Only the services that own a schema, serve commands and relay an outbox read these; the API and
the L3 agent never see them.
"""

from __future__ import annotations

from pydantic import Field

from scopenet.runtime.settings import Settings


class StoreSettings(Settings):
    """The shared settings plus the pool, outbox, command and stream knobs of a Postgres-backed service."""

    db_pool_size: int = Field(default=10, ge=1, le=500)
    """Postgres connections per service process."""

    max_concurrency: int = Field(default=64, ge=1, le=10_000)
    """Requests a service handles at once; further ones wait in NATS (back-pressure)."""

    outbox_batch: int = Field(default=256, ge=1, le=10_000)
    """Events the outbox relay publishes per transaction."""

    outbox_poll: float = Field(default=1.0, gt=0)
    """Seconds between outbox polls when no NOTIFY arrives (a safety net, not the main path)."""

    stream_replicas: int = Field(default=1, ge=1, le=5)
    """Replicas of the JetStream streams scopenet creates (3 on a 3-node NATS cluster)."""
