"""The RouterSpec: everything an L3 agent needs to program one router, and nothing else.

Topology publishes it to the ``SCOPENET_ROUTERS`` stream, which keeps only the last message per
subject, so the stream itself is the desired state: an agent that (re)starts reads the current
spec of each router on its subjects and needs no other source. Subject per router and agent:
``scopenet.v1.agent.<agent_id>.router.<router_id>``. When a router leaves an agent (deleted, or
moved to another agent) a spec with ``present=false`` is published on the old subject, so the
agent removes it.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from scopenet.contracts.base import Command, Contract

ROUTERS_STREAM = "SCOPENET_ROUTERS"
NOSCOPE_MARK_ID = 1024
AGENTS_BUCKET = "scopenet_agents"


def router_subject(agent_id: str, router_id: UUID | str) -> str:
    return f"scopenet.v1.agent.{agent_id}.router.{router_id}"


def agent_filter(agent_id: str) -> str:
    return f"scopenet.v1.agent.{agent_id}.router.*"


def agent_durable(agent_id: str) -> str:
    """The agent's durable consumer on ``SCOPENET_ROUTERS`` (its NATS permissions name it)."""
    return f"l3-agent-{agent_id}"


class Scope(Contract):
    """An interface's address scope for one IP family; ``id=None`` is "no scope" (mark id 1024)."""

    id: UUID | None = None
    mark_id: int = Field(default=NOSCOPE_MARK_ID, ge=1024, le=65535)


class PortAddress(Contract):
    ip_address: str
    prefixlen: int = Field(ge=0, le=128)
    subnet_id: UUID
    cidr: str
    gateway_ip: str | None = None


class RouterPort(Contract):
    """A ``qr-`` interface (or, in ``Gateway``, the ``qg-`` one)."""

    port_id: UUID
    mac_address: str
    network_id: UUID
    segmentation_id: int = Field(ge=1, le=16_777_215)
    """VNI / bridge identity of the network."""
    mtu: int = Field(default=1500, ge=68, le=65535)
    addresses: list[PortAddress]
    scope_v4: Scope = Scope()
    scope_v6: Scope = Scope()


class Gateway(RouterPort):
    enable_snat: bool = True


class FloatingIp(Contract):
    id: UUID
    floating_ip_address: str
    fixed_ip_address: str
    port_id: UUID
    fixed_scope: Scope = Scope()
    """Scope of the fixed address's network (IPv4), as Neutron's ``fixed_ip_address_scope``."""


class PortForwarding(Contract):
    """A port forwarding of a floating IP (Neutron's ``floating-ip-port-forwarding``): ``protocol``
    traffic to ``floating_ip_address`` on the external ports is DNATed to ``internal_ip_address``.
    The internal ports are the external ones shifted (N to N) or all one port (N to 1)."""

    id: UUID
    floating_ip_address: str
    protocol: Literal["tcp", "udp", "sctp", "dccp"]
    external_port_start: int = Field(ge=1, le=65535)
    external_port_end: int = Field(ge=1, le=65535)
    internal_ip_address: str
    internal_port_start: int = Field(ge=1, le=65535)
    internal_port_end: int = Field(ge=1, le=65535)
    internal_scope: Scope = Scope()
    """Scope of the internal address's network (IPv4): the forwarded packets are re-marked into it,
    as a whole floating IP's are into its ``fixed_scope``."""


class StaticRoute(Contract):
    """An extra route of the router (Neutron's ``routes``): programmed in the router's namespace, so
    traffic taking it leaves by the interface its nexthop is on and meets that interface's scope check."""

    destination: str
    nexthop: str


class RouterSpec(Contract):
    type: Literal["scopenet.v1.router_spec"] = "scopenet.v1.router_spec"
    router_id: UUID
    revision: int = Field(ge=0)
    """Grows with every change; an agent ignores a spec older than the one it applied."""
    agent_id: str
    present: bool = True
    """False: the router is no longer this agent's (deleted or moved): remove everything."""
    admin_state_up: bool = True
    gateway: Gateway | None = None
    interfaces: list[RouterPort] = Field(default_factory=list)
    floating_ips: list[FloatingIp] = Field(default_factory=list)
    routes: list[StaticRoute] = Field(default_factory=list)
    port_forwardings: list[PortForwarding] = Field(default_factory=list)


class AgentHeartbeat(Contract):
    """Value of ``<agent_id>`` in the ``scopenet_agents`` KV bucket (entries expire after a TTL)."""

    type: Literal["scopenet.v1.agent_heartbeat"] = "scopenet.v1.agent_heartbeat"
    agent_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    host: str
    routers: int = Field(ge=0)
    started_at: str


class RouterStatusReport(Command):
    """Agent → topology: the outcome of applying a spec, sent on the agent's own subject
    (``scopenet.v1.topology.router_status.report.<agent_id>``, see ``Endpoint.sender``)."""

    type: Literal["scopenet.v1.router_status.report"] = "scopenet.v1.router_status.report"
    router_id: UUID
    agent_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    revision: int
    status: Literal["ACTIVE", "ERROR", "DOWN"]
    reason: str | None = Field(default=None, max_length=1024)
