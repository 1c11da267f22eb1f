"""BGP dynamic routing contracts: speakers, peers, the routes a speaker announces (docs/neutron.md#bgp-dynamic-routing).

Field names, defaults and errors are neutron-dynamic-routing's (API extension ``bgp``, with the
4-byte AS numbers of ``bgp_4byte_asn``). Admin-only, as its default policy. A peer's ``password``
is write-only: no reply, event or spec ever carries it except the speaker spec the BGP daemon
needs (a peer's MD5 key), which only agents read.

``BgpSpeakerSpec`` is to the BGP daemon what ``RouterSpec`` is to the L3 agent: topology publishes
it on ``scopenet.v1.bgp.speaker.<id>`` in the ``SCOPENET_BGP`` stream (last message per subject),
so the stream is the desired state of every speaker.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_address
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, field_validator, model_validator

from scopenet.contracts.base import ByIdCommand, Command, Contract, Name, ProjectId

MIN_ASNUM = 1
MAX_ASNUM = 4_294_967_295
AsNumber = Annotated[int, Field(ge=MIN_ASNUM, le=MAX_ASNUM)]
AuthType = Literal["none", "md5"]

BGP_STREAM = "SCOPENET_BGP"
BGP_SUBJECTS = "scopenet.v1.bgp.speaker.*"


def speaker_subject(speaker_id: UUID | str) -> str:
    return f"scopenet.v1.bgp.speaker.{speaker_id}"


# ---------------------------------------------------------------- routes


class AdvertisedRoute(Contract):
    """One announcement: a prefix and the next hop the peer should send its traffic to."""

    destination: str
    next_hop: str


# ---------------------------------------------------------------- speakers


class BgpSpeaker(Contract):
    id: UUID
    name: str
    local_as: int
    ip_version: Literal[4, 6]
    project_id: str
    tenant_id: str
    peers: list[UUID]
    networks: list[UUID]
    advertise_floating_ip_host_routes: bool
    advertise_tenant_networks: bool
    revision_number: int
    created_at: datetime
    updated_at: datetime


class BgpSpeakerCreateBody(Contract):
    name: Name = ""
    local_as: AsNumber
    ip_version: Literal[4, 6]
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    advertise_floating_ip_host_routes: bool = True
    advertise_tenant_networks: bool = True


class BgpSpeakerUpdateBody(Contract):
    name: Name | None = None
    advertise_floating_ip_host_routes: bool | None = None
    advertise_tenant_networks: bool | None = None


class BgpSpeakerCreate(Command):
    type: Literal["scopenet.topology.v1.bgp_speaker.create"] = "scopenet.topology.v1.bgp_speaker.create"
    bgp_speaker: BgpSpeakerCreateBody


class BgpSpeakerUpdate(ByIdCommand):
    type: Literal["scopenet.topology.v1.bgp_speaker.update"] = "scopenet.topology.v1.bgp_speaker.update"
    bgp_speaker: BgpSpeakerUpdateBody


class BgpSpeakerReply(Contract):
    bgp_speaker: BgpSpeaker


class BgpSpeakerList(Contract):
    bgp_speakers: list[BgpSpeaker]


class BgpSpeakerPeer(ByIdCommand):
    """``add_bgp_peer`` / ``remove_bgp_peer``; the reply echoes ``bgp_peer_id``."""

    bgp_peer_id: UUID


class BgpPeerId(Contract):
    bgp_peer_id: UUID


class BgpSpeakerNetwork(ByIdCommand):
    """``add_gateway_network`` / ``remove_gateway_network``; the reply echoes ``network_id``."""

    network_id: UUID


class BgpNetworkId(Contract):
    network_id: UUID


class AdvertisedRoutes(Contract):
    advertised_routes: list[AdvertisedRoute]


# ---------------------------------------------------------------- peers


def _ip(value: str) -> str:
    try:
        return str(ip_address(value))
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a valid IP address") from exc


class BgpPeer(Contract):
    """A peer as the API shows it: never its password."""

    id: UUID
    name: str
    peer_ip: str
    remote_as: int
    auth_type: AuthType
    project_id: str
    tenant_id: str
    revision_number: int
    created_at: datetime
    updated_at: datetime


class BgpPeerCreateBody(Contract):
    name: Name = ""
    peer_ip: str
    remote_as: AsNumber
    auth_type: AuthType = "none"
    password: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[\x21-\x7e]+$")] | None = None
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None

    _peer_ip = field_validator("peer_ip")(_ip)

    @model_validator(mode="after")
    def _md5_needs_password(self) -> BgpPeerCreateBody:
        if self.auth_type == "md5" and not self.password:
            raise ValueError("A password must be supplied when using auth_type md5.")
        if self.auth_type == "none" and self.password:
            raise ValueError("A password may only be supplied with auth_type md5.")
        return self


class BgpPeerUpdateBody(Contract):
    name: Name | None = None
    password: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[\x21-\x7e]+$")] | None = None


class BgpPeerCreate(Command):
    type: Literal["scopenet.topology.v1.bgp_peer.create"] = "scopenet.topology.v1.bgp_peer.create"
    bgp_peer: BgpPeerCreateBody


class BgpPeerUpdate(ByIdCommand):
    type: Literal["scopenet.topology.v1.bgp_peer.update"] = "scopenet.topology.v1.bgp_peer.update"
    bgp_peer: BgpPeerUpdateBody


class BgpPeerReply(Contract):
    bgp_peer: BgpPeer


class BgpPeerList(Contract):
    bgp_peers: list[BgpPeer]


# ---------------------------------------------------------------- the daemon's desired state


class PeerSpec(Contract):
    id: UUID
    peer_ip: str
    remote_as: int
    password: str | None = None
    """The MD5 key (only in the spec, which only the BGP daemon reads)."""


class BgpSpeakerSpec(Contract):
    type: Literal["scopenet.v1.bgp_speaker_spec"] = "scopenet.v1.bgp_speaker_spec"
    speaker_id: UUID
    revision: int = Field(ge=0)
    """Grows with every change; the daemon ignores a spec older than the one it applied."""
    present: bool = True
    """False: the speaker was deleted: close its sessions."""
    local_as: int = Field(default=MIN_ASNUM, ge=MIN_ASNUM, le=MAX_ASNUM)
    ip_version: Literal[4, 6] = 4
    peers: list[PeerSpec] = Field(default_factory=list)
    routes: list[AdvertisedRoute] = Field(default_factory=list)
