"""Settings from ``SCOPENET_*`` environment variables, validated when built (fail fast).

One ``Settings`` class serves every service so that the configuration table in the README is the
whole truth; each service reads the fields it needs.
"""

from __future__ import annotations

import os
import re
import socket
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def agent_id_from(name: str) -> str:
    """``name`` as an agent id: ``[A-Za-z0-9_-]{1,64}`` (other characters become ``-``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", name.strip())[:64]
    if not cleaned:
        raise ValueError("agent_id is empty")
    return cleaned


def default_state_dir() -> Path:
    """Per-user state: root keeps it under /var/lib, everyone else under ~/.local/state."""
    if os.geteuid() == 0:
        return Path("/var/lib/scopenet")
    return Path.home() / ".local" / "state" / "scopenet"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCOPENET_", extra="ignore", frozen=True)

    database_url: str | None = None
    """Postgres URL. Unset: an embedded Postgres (pgserver) is started in ``state_dir``."""

    nats_url: str | None = None
    """NATS URL (JetStream required). Unset: an embedded nats-server is started in ``state_dir``."""

    state_dir: Path = Field(default_factory=default_state_dir)
    """Where embedded Postgres/NATS keep their data, and where ``scopenet up`` records the stack."""

    request_timeout: float = Field(default=5.0, gt=0)
    """Seconds a NATS command may take before the caller gives up (and answers 503)."""

    max_concurrency: int = Field(default=64, ge=1, le=10_000)
    """Requests a service handles at once; further ones wait in NATS (back-pressure)."""

    db_pool_size: int = Field(default=10, ge=1, le=500)
    """Postgres connections per service process."""

    health_port: int = Field(default=0, ge=0, le=65535)
    """Port of /livez, /readyz and /metrics. 0 picks a free port (printed at start)."""

    health_host: str = "127.0.0.1"

    log_level: str = "info"
    log_format: str = Field(default="json", pattern="^(json|console)$")

    stream_replicas: int = Field(default=1, ge=1, le=5)
    """Replicas of the JetStream streams and buckets scopenet creates (3 on a 3-node NATS cluster)."""

    outbox_batch: int = Field(default=256, ge=1, le=10_000)
    """Events the outbox relay publishes per transaction."""

    outbox_poll: float = Field(default=1.0, gt=0)
    """Seconds between outbox polls when no NOTIFY arrives (a safety net, not the main path)."""

    api_host: str = "127.0.0.1"
    """Address the Neutron-compatible HTTP API listens on."""

    api_port: int = Field(default=9696, ge=0, le=65535)
    """Port of the HTTP API (Neutron's 9696). 0 picks a free port (printed at start)."""

    auth: str = Field(default="tokens", pattern="^(tokens|noauth)$")
    """HTTP API authentication: ``tokens`` (X-Auth-Token looked up in ``tokens_file``) or
    ``noauth`` (everyone is admin unless X-Project-Id / X-Roles say otherwise; never the default)."""

    tokens_file: Path | None = None
    """YAML (or JSON) ``{tokens: {<token>: {project_id, roles}}}``. Unset: ``<state_dir>/tokens.yaml``."""

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

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be one of debug, info, warning, error")
        return v


def load() -> Settings:
    return Settings()
