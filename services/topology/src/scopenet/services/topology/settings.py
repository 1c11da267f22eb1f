"""Topology's settings: the shared ones, those of a Postgres-backed service, and its own
``SCOPENET_TOPOLOGY_*`` knobs, validated when built (fail fast).

Its own fields are named ``topology_<knob>`` so that the one ``SCOPENET_`` prefix gives their
variables (``SCOPENET_TOPOLOGY_AGENT_TTL``); the code reads them by their short names.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from scopenet.bus.backoff import DEFAULT_SCHEDULE, format_schedule, parse_schedule
from scopenet.contracts.quotas import MAX_LIMIT, UNLIMITED
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

    topology_event_backoff: str = format_schedule(DEFAULT_SCHEDULE)
    """When topology's consumers of IPAM's events try an event again after a failure (Postgres or
    IPAM away): comma-separated seconds to wait before each redelivery, the JetStream ``BackOff`` of
    the consumers. After one more delivery than there are steps the event is dead-lettered, so the
    sum is the longest outage that loses nothing: the default's is 828 s. Set the same on every
    replica; a changed schedule is applied to the existing consumers at start."""

    @field_validator("topology_event_backoff")
    @classmethod
    def _schedule(cls, v: str) -> str:
        return format_schedule(parse_schedule(v))

    topology_quota_network: int = Field(default=100, ge=UNLIMITED, le=MAX_LIMIT)
    """Networks a project may own unless an admin set its own limit; -1 is unlimited (Neutron's ``quota_network``)."""

    topology_quota_subnet: int = Field(default=100, ge=UNLIMITED, le=MAX_LIMIT)
    """Subnets a project may own; -1 is unlimited (Neutron's ``quota_subnet``)."""

    topology_quota_port: int = Field(default=500, ge=UNLIMITED, le=MAX_LIMIT)
    """Ports a project may own; -1 is unlimited (Neutron's ``quota_port``)."""

    topology_quota_router: int = Field(default=10, ge=UNLIMITED, le=MAX_LIMIT)
    """Routers a project may own; -1 is unlimited (Neutron's ``quota_router``)."""

    topology_quota_floatingip: int = Field(default=50, ge=UNLIMITED, le=MAX_LIMIT)
    """Floating IPs a project may own; -1 is unlimited (Neutron's ``quota_floatingip``)."""

    topology_quota_rbac_policy: int = Field(default=10, ge=UNLIMITED, le=MAX_LIMIT)
    """RBAC entries on networks a project may own; -1 is unlimited (Neutron's ``quota_rbac_policy``;
    entries on address scopes and subnet pools are limited apart, by IPAM)."""

    topology_max_routes: int = Field(default=30, ge=1)
    """Most extra routes one router may have (Neutron's ``max_routes``); more is 400 ``RoutesExhausted``."""

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

    @property
    def event_backoff(self) -> tuple[float, ...]:
        return parse_schedule(self.topology_event_backoff)

    @property
    def max_routes(self) -> int:
        return self.topology_max_routes

    def quota_defaults(self) -> dict[str, int]:
        """The default limit of each topology resource (a project's own limits override them)."""
        return {
            "network": self.topology_quota_network,
            "subnet": self.topology_quota_subnet,
            "port": self.topology_quota_port,
            "router": self.topology_quota_router,
            "floatingip": self.topology_quota_floatingip,
            "rbac_policy": self.topology_quota_rbac_policy,
        }
