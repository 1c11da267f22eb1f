"""What the topology resource classes share: the pool, the IPAM client, and each other.

Built once per process by ``handlers.build``; the resource classes reach one another through it
(a network delete runs the subnet and port deletions, a router runs the port saga) without
import cycles.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from scopenet.bus.client import BusClient
from scopenet.services.topology.ipam_client import IpamClient
from scopenet.services.topology.settings import TopologySettings
from scopenet.store.quotas import QuotaBook

if TYPE_CHECKING:
    from scopenet.services.topology.agents.service import Agents
    from scopenet.services.topology.ports.service import Ports
    from scopenet.services.topology.reconciler.service import Reconciler
    from scopenet.services.topology.routers.service import Routers
    from scopenet.services.topology.scopes.service import Mirror
    from scopenet.services.topology.scopes.waits import MirrorWaits
    from scopenet.services.topology.specs.service import Specs
    from scopenet.services.topology.subnets.service import Subnets


@dataclass
class Deps:
    db: asyncpg.Pool
    ipam: IpamClient
    settings: TopologySettings
    quotas: QuotaBook = field(init=False)
    """The project limits creates are checked against (docs/neutron.md#quotas)."""
    specs: Specs = field(init=False)
    ports: Ports = field(init=False)
    subnets: Subnets = field(init=False)
    agents: Agents = field(init=False)
    routers: Routers = field(init=False)
    mirror_waits: MirrorWaits = field(init=False)
    """Read-your-writes waits on the mirror; the mirror wakes them when it applies an event."""
    reconciler: Reconciler | None = None
    """Set once the service runs its background tasks (absent in handler-only wiring)."""
    mirror: Mirror | None = None
    """The IPAM pools and scopes mirrored from events (set with the background tasks)."""
    agent_bus: BusClient | None = None
    """Topology's own NATS client for questions to the L3 agents (reachability's kernel evidence),
    with their short timeout; None in handler-only wiring (no agent is asked)."""
    inflight: set[uuid.UUID] = field(default_factory=set)
    """Rows whose saga runs in this process right now: the reconciler leaves them alone."""
