"""The index of subjects: every command with its request and reply model, every event.

Services register their endpoints from this table and ``proto/`` is generated from it, so a
subject cannot exist on the wire without a schema. The commands are declared, one typed constant
each, in ``ipam_endpoints`` and ``topology_endpoints`` (what an ``Endpoint`` is: ``endpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from scopenet.contracts import agent_endpoints, ipam_endpoints, topology_endpoints
from scopenet.contracts import ipam as m
from scopenet.contracts import portforwarding as pf
from scopenet.contracts import topology as t
from scopenet.contracts.base import ErrorReply
from scopenet.contracts.endpoint import PREFIX, Crud, Endpoint
from scopenet.contracts.quotas import QuotaEvent

__all__ = [
    "AGENT_ENDPOINTS",
    "ALL_ENDPOINTS",
    "ALL_EVENTS",
    "ERROR_REPLY",
    "EVENTS_STREAM",
    "EVENTS_SUBJECTS",
    "IPAM_ENDPOINTS",
    "IPAM_EVENTS",
    "PREFIX",
    "TOPOLOGY_ENDPOINTS",
    "TOPOLOGY_EVENTS",
    "Crud",
    "Endpoint",
    "EventSpec",
    "event",
]

EVENTS_STREAM = "SCOPENET_EVENTS"
EVENTS_SUBJECTS = f"{PREFIX}.evt.>"


@dataclass(frozen=True)
class EventSpec:
    resource: str
    action: str
    model: type[BaseModel]
    service: str
    """The service that emits it (``ce-source``, ``ce-type``: see ``cloudevents``)."""

    @property
    def subject(self) -> str:
        return f"{PREFIX}.evt.{self.resource}.{self.action}"

    @property
    def type(self) -> str:
        return f"scopenet.v1.{self.resource}.{self.action}"

    @property
    def schema(self) -> str:
        """Its JSON Schema's path under ``proto/``."""
        return f"schemas/events/{self.resource}.{self.action}.json"


IPAM_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = ipam_endpoints.ENDPOINTS

IPAM_EVENTS: tuple[EventSpec, ...] = tuple(
    EventSpec(resource, action, model, "ipam")
    for resource, model in (
        ("address_scope", m.AddressScopeEvent),
        ("subnetpool", m.SubnetPoolEvent),
        ("subnet", m.SubnetEvent),
        ("ip_allocation", m.IpAllocationEvent),
        ("rbac_policy", m.RbacEvent),
    )
    for action in ("created", "updated", "deleted")
    if not (resource == "ip_allocation" and action == "updated")
) + tuple(EventSpec("quota", action, QuotaEvent, "ipam") for action in ("updated", "deleted"))

TOPOLOGY_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = topology_endpoints.ENDPOINTS

TOPOLOGY_EVENTS: tuple[EventSpec, ...] = tuple(
    EventSpec(resource, action, model, "topology")
    for resource, model in (
        ("network", t.NetworkEvent),
        ("topology_subnet", t.TopologySubnetEvent),
        ("port", t.PortEvent),
        ("router", t.RouterEvent),
        ("floatingip", t.FloatingIpEvent),
        ("port_forwarding", pf.PortForwardingEvent),
        ("network_rbac", t.NetworkRbacEvent),
    )
    for action in ("created", "updated", "deleted")
) + tuple(EventSpec("topology_quota", action, QuotaEvent, "topology") for action in ("updated", "deleted"))

AGENT_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = agent_endpoints.ENDPOINTS
"""Served by each L3 agent on its own subject (``<subject>.<agent_id>``); topology calls them."""

ALL_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = IPAM_ENDPOINTS + TOPOLOGY_ENDPOINTS + AGENT_ENDPOINTS
ALL_EVENTS: tuple[EventSpec, ...] = IPAM_EVENTS + TOPOLOGY_EVENTS
ERROR_REPLY = ErrorReply


def event(resource: str, action: str) -> EventSpec:
    for spec in ALL_EVENTS:
        if spec.resource == resource and spec.action == action:
            return spec
    raise KeyError(f"no event {resource}.{action}")
