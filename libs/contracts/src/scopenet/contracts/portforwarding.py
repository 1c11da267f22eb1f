"""Port forwarding contracts: Neutron's ``port_forwarding`` sub-resource of a floating IP
(docs/neutron.md#port-forwarding), its commands and its event.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from scopenet.contracts.base import (
    ByIdCommand,
    Command,
    Contract,
    DeleteCommand,
    Description,
    Event,
    ListCommand,
    ProjectId,
)

PortForwardingProtocol = Literal["tcp", "udp", "sctp", "dccp"]
PortRange = Annotated[str, StringConstraints(max_length=16, pattern=r"^[0-9]{1,5}(:[0-9]{1,5})?$")]
"""``"80"`` or ``"8000:8010"`` (Neutron's ``type:port_range``), or an int given as a string."""


class PortForwarding(Contract):
    """Neutron's ``port_forwarding`` of a floating IP (``floating-ip-port-forwarding`` with the
    ``-port-ranges`` and ``-description`` extensions). A single port shows as ``external_port`` and as
    the range ``"N:N"``; a range has ``external_port`` null (the same for the internal side)."""

    id: UUID
    floatingip_id: UUID
    project_id: str
    protocol: PortForwardingProtocol
    external_port: int | None
    internal_port: int | None
    external_port_range: str
    internal_port_range: str
    internal_ip_address: str
    internal_port_id: UUID
    description: str


class PortForwardingCreateBody(Contract):
    protocol: str = Field(max_length=40)
    """tcp, udp, sctp or dccp (any case); icmp has no ports and is refused."""
    internal_port_id: UUID
    internal_ip_address: str = Field(max_length=64)
    """An IPv4 fixed address of ``internal_port_id``."""
    external_port: int | None = None
    internal_port: int | None = None
    external_port_range: PortRange | None = None
    internal_port_range: PortRange | None = None
    """Exactly one of ``external_port``/``external_port_range``, and of ``internal_port``/
    ``internal_port_range``; an internal range is as long as the external one (N to N), or a single
    internal port serves the whole external range (N to 1)."""
    description: Description = ""
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class PortForwardingUpdateBody(Contract):
    """Absent keys keep their value; giving a port replaces the range on that side, and vice versa."""

    protocol: str | None = Field(default=None, max_length=40)
    internal_port_id: UUID | None = None
    internal_ip_address: str | None = Field(default=None, max_length=64)
    external_port: int | None = None
    internal_port: int | None = None
    external_port_range: PortRange | None = None
    internal_port_range: PortRange | None = None
    description: Description | None = None


class PortForwardingCreate(Command):
    type: Literal["scopenet.topology.v1.port_forwarding.create"] = "scopenet.topology.v1.port_forwarding.create"
    floatingip_id: UUID
    port_forwarding: PortForwardingCreateBody


class PortForwardingGet(ByIdCommand):
    """One port forwarding of the floating IP ``floatingip_id`` (a sub-resource: both ids name it)."""

    floatingip_id: UUID


class PortForwardingListCommand(ListCommand):
    floatingip_id: UUID


class PortForwardingUpdate(PortForwardingGet):
    type: Literal["scopenet.topology.v1.port_forwarding.update"] = "scopenet.topology.v1.port_forwarding.update"
    port_forwarding: PortForwardingUpdateBody


class PortForwardingDelete(DeleteCommand):
    floatingip_id: UUID


class PortForwardingReply(Contract):
    port_forwarding: PortForwarding


class PortForwardingList(Contract):
    port_forwardings: list[PortForwarding]


class PortForwardingEvent(Event):
    resource: PortForwarding
    previous: PortForwarding | None = None
