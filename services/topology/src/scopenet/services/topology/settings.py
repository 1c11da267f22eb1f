"""Topology's own knobs (``SCOPENET_TOPOLOGY_*``), validated when built (fail fast)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TopologySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCOPENET_TOPOLOGY_", extra="ignore", frozen=True)

    reconcile_interval: float = Field(default=5.0, gt=0)
    """Seconds between reconciler passes (saga repair and the IPAM orphan sweep)."""

    stale_after: float = Field(default=10.0, gt=0)
    """A row left in ``allocating``/``deleting`` this long belongs to a dead saga: finish or roll it back.
    Keep it above the IPAM request timeout, so a slow live saga is never taken for a dead one."""

    agent_ttl: float = Field(default=10.0, gt=0)
    """An agent whose last heartbeat is older than this is dead (its routers move)."""

    ipam_timeout: float = Field(default=5.0, gt=0)
    """Seconds an IPAM command may take."""
