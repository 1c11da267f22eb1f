"""The table of runnable services: which exist, where each one's app lives, what each needs.

The ``scopenet`` command (``cli``) and the stack it runs (``stack``) both read it; it imports no
service, so neither has to import the other for it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scopenet.runtime.settings import Settings

#: Every runnable service: name -> "module:factory" of an async context manager
#: ``factory(settings, *, database_url, nats_url)`` that runs it until the block exits.
SERVICE_APPS: dict[str, str] = {
    "ipam": "scopenet.services.ipam.app:ipam_service",
    "topology": "scopenet.services.topology.app:topology_service",
    "api": "scopenet.services.api.app:api_service",
    "l3-agent": "scopenet.services.l3_agent.app:l3_agent_service",
}
SERVICES = tuple(SERVICE_APPS)
#: Services that never use a database: ``scopenet service`` gives them NATS only (no embedded Postgres).
STATELESS = frozenset({"api", "l3-agent"})
#: Services that program the kernel (root, nftables): started only where the datapath can run.
DATAPATH = frozenset({"l3-agent"})
#: Each service's settings class, "module:class": what ``scopenet service NAME`` reads from the
#: environment (a service reads its own knobs and the shared ones, never another service's).
SERVICE_SETTINGS: dict[str, str] = {
    "ipam": "scopenet.services.ipam.settings:IpamSettings",
    "topology": "scopenet.services.topology.settings:TopologySettings",
    "api": "scopenet.services.api.settings:ApiSettings",
    "l3-agent": "scopenet.services.l3_agent.settings:AgentSettings",
}


def app_module(name: str) -> ModuleType:
    """The service's ``app`` module (imported on first use: only the service that runs is loaded)."""
    return importlib.import_module(SERVICE_APPS[name].split(":")[0])


def factory(name: str) -> Any:
    """The service's factory (``SERVICE_APPS``)."""
    return getattr(app_module(name), SERVICE_APPS[name].split(":")[1])


def migrated_schema(name: str) -> str | None:
    """The schema a service migrates (its app module's ``SCHEMA``), None for a stateless one."""
    app = app_module(name)
    return str(app.SCHEMA) if hasattr(app, "MIGRATIONS") else None


def settings_class(name: str) -> type[Settings]:
    """The service's settings class (``SERVICE_SETTINGS``)."""
    module, attr = SERVICE_SETTINGS[name].split(":")
    cls: type[Settings] = getattr(importlib.import_module(module), attr)
    return cls
