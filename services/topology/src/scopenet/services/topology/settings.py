"""Topology's settings: the shared ones, those of a Postgres-backed service, and its own
``SCOPENET_TOPOLOGY_*`` knobs, validated when built (fail fast).

Its own fields are named ``topology_<knob>`` so that the one ``SCOPENET_`` prefix gives their
variables (``SCOPENET_TOPOLOGY_AGENT_TTL``); the code reads them by their short names.
"""

from __future__ import annotations

from pydantic import Field

from scopenet.store.settings import StoreSettings


class TopologySettings(StoreSettings):
    """Everything the ``topology`` service reads (``SCOPENET_*`` and ``SCOPENET_TOPOLOGY_*``)."""

    topology_reconcile_interval: float = Field(default=5.0, gt=0)
    """Seconds between reconciler passes (saga repair and the IPAM orphan sweep)."""

    topology_stale_after: float = Field(default=10.0, gt=0)
    """A row left in ``allocating``/``deleting`` this long belongs to a dead saga: finish or roll it back.
    Keep it above the IPAM request timeout, so a slow live saga is never taken for a dead one."""

    topology_agent_ttl: float = Field(default=10.0, gt=0)
    """An agent whose last heartbeat is older than this is dead (its routers move)."""

    topology_ipam_timeout: float = Field(default=5.0, gt=0)
    """Seconds an IPAM command may take."""

    @property
    def reconcile_interval(self) -> float:
        return self.topology_reconcile_interval

    @property
    def stale_after(self) -> float:
        return self.topology_stale_after

    @property
    def agent_ttl(self) -> float:
        return self.topology_agent_ttl

    @property
    def ipam_timeout(self) -> float:
        return self.topology_ipam_timeout
