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

from scopenet.services.topology.ipam_client import IpamClient
from scopenet.services.topology.settings import TopologySettings

if TYPE_CHECKING:
    from scopenet.services.topology.agents.service import Agents
    from scopenet.services.topology.ports.service import Ports
    from scopenet.services.topology.reconciler.service import Reconciler
    from scopenet.services.topology.routers.service import Routers
    from scopenet.services.topology.scopes.service import Mirror
    from scopenet.services.topology.specs.service import Specs
    from scopenet.services.topology.subnets.service import Subnets


@dataclass
class Deps:
    db: asyncpg.Pool
    ipam: IpamClient
    settings: TopologySettings
    specs: Specs = field(init=False)
    ports: Ports = field(init=False)
    subnets: Subnets = field(init=False)
    agents: Agents = field(init=False)
    routers: Routers = field(init=False)
    reconciler: Reconciler | None = None
    """Set once the service runs its background tasks (absent in handler-only wiring)."""
    mirror: Mirror | None = None
    """The IPAM pools and scopes mirrored from events (set with the background tasks)."""
    inflight: set[uuid.UUID] = field(default_factory=set)
    """Rows whose saga runs in this process right now: the reconciler leaves them alone."""
