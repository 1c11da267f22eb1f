"""The reachability explainer's wire: "why can (or can't) A reach B", and the kernel's evidence.

``scopenet.v1.topology.reachability.explain`` answers from the model (the RouterSpecs the agents
render), then asks the agent hosting the router for the nftables rule that decides and its packet
counter (``scopenet.v1.l3_agent.kernel.rule.<agent_id>``, served by that agent only). The verdict
codes are stable; docs/reachability.md lists them.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from scopenet.contracts.base import Command, Contract

Verdict = Literal["routed", "snat", "dnat", "dropped", "no_route"]


class ReachabilityExplain(Command):
    """``source`` and ``destination``: a port id or an IP address (an address in no subnet is the
    world beyond the external networks). A port the caller cannot see is 404, as if unknown."""

    type: Literal["scopenet.topology.v1.reachability.explain"] = "scopenet.topology.v1.reachability.explain"
    source: str = Field(min_length=1, max_length=64)
    destination: str = Field(min_length=1, max_length=64)
    protocol: Literal["tcp", "udp", "icmp"] = "udp"
    destination_port: int | None = Field(default=None, ge=1, le=65535)
    ip_version: Literal[4, 6] | None = None
    """Which family when both ends are ports with both (IPv4 by default)."""
    kernel: bool = True
    """Ask the agent for the deciding rule and its counter (false: the model's answer only)."""


class ReachabilityHop(Contract):
    kind: Literal["port", "network", "router", "external_network", "external"]
    id: UUID | None
    name: str


class ReachabilityReason(Contract):
    code: str
    """Stable: SCOPE_MISMATCH, UNSCOPED_NO_NAT66, SNAT_DISABLED, NO_ROUTER_INTERFACE, ..."""
    message: str
    blocking: bool = True
    """False: worth knowing, but the packet passes (SAME_NETWORK, NOT_ANNOUNCED)."""


class KernelEvidence(Contract):
    """The nftables rule that decides, as the agent hosting the router reads it from the kernel."""

    agent_id: str
    namespace: str
    table: str
    chain: str
    rule: str | None
    """The rule's text as ``nft`` lists it (null: not found in the kernel — the table lags the spec)."""
    handle: int | None = None
    counter: str | None = None
    """The named counter the rule counts into (``drop_<ifname>``), if any."""
    packets: int | None = None
    """Packets counted so far by that counter (or the rule's own ``counter``); null: it counts none."""
    outcome: Literal["drop", "accept", "snat", "dnat", "pass"]
    """``pass``: the rule that would have dropped the packet does not match it."""


class Reachability(Contract):
    verdict: Verdict
    ip_version: int
    source_ip: str
    destination_ip: str
    translated_source: str | None = None
    translated_destination: str | None = None
    hops: list[ReachabilityHop] = Field(default_factory=list)
    reasons: list[ReachabilityReason] = Field(default_factory=list)
    kernel: KernelEvidence | None = None
    kernel_reason: str | None = None
    """Why ``kernel`` is null: no router on the path, no agent hosts it, or the agent did not answer."""
    fix: list[str] = Field(default_factory=list)


class KernelRuleQuery(Command):
    """Topology → the agent hosting ``router_id``: find the rule of ``chain`` whose text holds every
    ``contains`` and no ``excludes``, and read its counter."""

    type: Literal["scopenet.l3_agent.v1.kernel.rule"] = "scopenet.l3_agent.v1.kernel.rule"
    agent_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    router_id: UUID
    chain: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    contains: list[str] = Field(max_length=8)
    excludes: list[str] = Field(default_factory=list, max_length=8)
    counter: str | None = Field(default=None, max_length=64)


class KernelRule(Contract):
    namespace: str
    table: str
    present: bool
    """False: the agent has no table for this router (not applied yet, or down)."""
    rule: str | None = None
    handle: int | None = None
    packets: int | None = None
