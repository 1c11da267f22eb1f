"""The L3 agent's settings: the shared ones, its identity and host, and the VXLAN underlay.

``scopenet up`` and ``scopenet instance`` read this class too: they act on the agent's host (its
namespace, its bridges) and must agree with the agent on its id and underlay.
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address
from typing import Literal

from pydantic import Field, field_validator

from scopenet.runtime.settings import Settings


def agent_id_from(name: str) -> str:
    """``name`` as an agent id: ``[A-Za-z0-9_-]{1,64}`` (other characters become ``-``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", name.strip())[:64]
    if not cleaned:
        raise ValueError("agent_id is empty")
    return cleaned


class AgentSettings(Settings):
    """Everything the ``l3-agent`` service reads (``SCOPENET_*``)."""

    agent_id: str = Field(default_factory=lambda: agent_id_from(socket.gethostname()))
    """The L3 agent's identity: its RouterSpec subjects, its heartbeat key, the owner label of its
    nftables tables. Default: the hostname. Characters outside ``[A-Za-z0-9_-]`` become ``-`` (it is a
    NATS subject token, and Kubernetes node names have dots)."""

    agent_host_netns: str | None = None
    """The network namespace the L3 agent treats as "the host" (the bridges and the host ends of the
    routers' veths live there); created if missing. Unset: the agent's own namespace (production).
    ``scopenet up`` and the tests set it, so they never touch the machine's own interfaces."""

    agent_bgp: bool = False
    """Run the BGP speaker (BIRD 2, Debian ``bird2``) beside the L3 agent, in its host namespace: it
    announces what topology's BGP speakers advertise (``SCOPENET_AGENT_BGP=1``)."""

    agent_resync_interval: float = Field(default=30.0, gt=0)
    """Seconds between the L3 agent's full resyncs (repairs hand-made changes, sweeps orphans)."""

    agent_concurrency: int = Field(default=8, ge=1, le=256)
    """Routers the L3 agent reconciles at once."""

    agent_heartbeat_interval: float = Field(default=2.0, gt=0)
    """Seconds between the L3 agent's heartbeats (keep well below topology's ``agent_ttl``, 10 s)."""

    agent_fence: Literal["process", "nats", "off"] = "nats"
    """When the L3 agent's routers stop forwarding on their own (the kernel lease in the host's
    ``scopenet_fence`` table runs out ``ttl - heartbeat interval`` seconds after the last renewal):
    ``nats`` (default) — the agent died, hung, *or* has been cut off from NATS that long, i.e. when
    topology is about to move its routers elsewhere; ``process`` — only when the agent died or hung
    (a NATS outage never stops forwarding, at the price of two live copies of a moved router while a
    host is partitioned from NATS but not from its networks); ``off`` — never (Neutron's behaviour)."""

    vxlan_local_ip: IPv4Address | None = None
    """This host's VXLAN tunnel endpoint (Neutron linuxbridge's ``[vxlan] local_ip``): an address on
    the underlay link, in the L3 agent's host namespace. Set: every network bridge the agent (or
    ``scopenet instance create``) makes also gets ``vxlan-<vni>``, VNI = the network's segmentation
    id, so networks span hosts; the underlay must carry the networks' MTU + 50 bytes. Unset: one host."""

    vxlan_group: IPv4Address = IPv4Address("239.1.1.1")
    """Multicast group the VXLAN devices flood unknown and broadcast frames to (Neutron's
    ``vxlan_group``); used only with ``vxlan_local_ip``."""

    vxlan_port: int = Field(default=4789, ge=1, le=65535)
    """UDP port of the VXLAN devices (IANA's 4789)."""

    @field_validator("vxlan_group")
    @classmethod
    def _group(cls, v: IPv4Address) -> IPv4Address:
        if not v.is_multicast:
            raise ValueError("vxlan_group must be an IPv4 multicast address (224.0.0.0/4)")
        return v

    @field_validator("agent_id")
    @classmethod
    def _agent_id(cls, v: str) -> str:
        return agent_id_from(v)

    @field_validator("agent_host_netns")
    @classmethod
    def _netns(cls, v: str | None) -> str | None:
        if not v:
            return None
        if "/" in v or v in {".", ".."} or len(v) > 200:
            raise ValueError("agent_host_netns must be a namespace name (as in `ip netns`), not a path")
        return v
