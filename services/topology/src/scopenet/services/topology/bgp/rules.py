"""Pure decisions about BGP speakers and peers: who may act, which bindings are refused, and the
glue between RouterSpecs and the routes a speaker announces (``scopenet.bgp.routes``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from scopenet.bgp.routes import Speaker, advertised_routes
from scopenet.contracts import bgp as c
from scopenet.contracts import routerspec as rs
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, NotAuthorized, NotFound
from scopenet.services.topology.specs import rules as specrules


def speaker_not_found(id_: object) -> NotFound:
    return NotFound(f"BGP speaker {id_} could not be found.", type="BgpSpeakerNotFound")


def peer_not_found(id_: object, field: str | None = None) -> NotFound:
    return NotFound(f"BGP peer {id_} could not be found.", type="BgpPeerNotFound", field=field)


def require_admin(ctx: CallContext, action: str) -> None:
    """neutron-dynamic-routing's default policy: every BGP action is the admin's."""
    if not ctx.is_admin:
        raise NotAuthorized(f"rule:{action} is disallowed by policy")


def check_peer_family(*, peer_version: int, speaker_version: int, peer_id: UUID, speaker_id: UUID) -> None:
    if peer_version != speaker_version:
        raise BadRequest(
            f"BGP peer {peer_id} is an IPv{peer_version} peer; BGP speaker {speaker_id} speaks IPv{speaker_version}",
            field="bgp_peer_id",
        )


def check_peer_ip_free(clash: UUID | None, *, speaker_id: UUID, peer_ip: object, peer_id: UUID) -> None:
    """One peer per address on a speaker."""
    if clash is not None:
        raise Conflict(
            f"BGP Speaker {speaker_id} is already configured to peer with a BGP Peer at {peer_ip}, "
            f"it cannot peer with BGP Peer {peer_id}.",
            type="DuplicateBgpPeerIpException",
        )


def check_network_unbound(bound: UUID | None, network_id: UUID) -> None:
    """A network is announced by at most one speaker per IP version."""
    if bound is not None:
        raise Conflict(
            f"Network {network_id} is already bound to BgpSpeaker {bound}.",
            type="BgpSpeakerNetworkBindingError",
            field="network_id",
        )


def check_password(password: str | None, auth_type: str) -> None:
    if password is not None and auth_type != "md5":
        raise BadRequest("A password may only be set on a peer with auth_type md5.", field="password")


def speaker_routes(
    speaker: Mapping[str, Any],
    *,
    networks: Sequence[UUID],
    specs: Sequence[rs.RouterSpec],
    world: specrules.World,
) -> list[c.AdvertisedRoute]:
    """What ``speaker`` (a ``bgp_speakers`` row) announces: from the specs of the routers with a
    gateway on its ``networks``, each network with its address scope for the speaker's family."""
    version = speaker["ip_version"]
    scopes = {n: specrules.network_scopes(n, world)[version] for n in networks}
    return advertised_routes(
        Speaker(version, speaker["advertise_tenant_networks"], speaker["advertise_floating_ip_host_routes"]),
        specs,
        scopes,
    )


def spec_due(routes: list[dict[str, Any]], previous: object, *, force: bool) -> bool:
    """A new spec only when what the daemon must do changed (or when asked to, ``force``)."""
    return force or routes != previous
