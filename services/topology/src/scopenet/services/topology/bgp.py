"""BGP speakers and peers (neutron-dynamic-routing's ``bgp`` extension, SPEC §2.M rule 68).

Admin-only, as its default policy: a non-admin is refused creation (403), sees an empty list and
no speaker or peer (404), and may not run the member actions (403). A peer's password is stored
for the daemon and never returned. Every change that alters what a speaker runs (its peers, its
gateway networks, its flags) queues a new ``BgpSpeakerSpec`` in the same transaction.
"""

from __future__ import annotations

import uuid

import asyncpg

from scopenet.contracts import bgp as c
from scopenet.contracts.base import ByIdCommand, CallContext, DeleteCommand, Deleted, ListCommand
from scopenet.contracts.errors import BadRequest, Conflict, NotAuthorized, NotFound
from scopenet.policy.rules import not_found, owner_for_create
from scopenet.services.topology import bgpspec
from scopenet.services.topology.context import Deps
from scopenet.services.topology.listing import apply_filters
from scopenet.store.db import db_errors


def _speaker_not_found(id_: object) -> NotFound:
    return NotFound(f"BGP speaker {id_} could not be found.", type="BgpSpeakerNotFound")


def _peer_not_found(id_: object, field: str | None = None) -> NotFound:
    return NotFound(f"BGP peer {id_} could not be found.", type="BgpPeerNotFound", field=field)


def _admin(ctx: CallContext, action: str) -> None:
    if not ctx.is_admin:
        raise NotAuthorized(f"rule:{action} is disallowed by policy")


async def _speaker_view(conn: asyncpg.Connection, row: asyncpg.Record) -> c.BgpSpeaker:
    peers = await conn.fetch("SELECT peer_id FROM bgp_speaker_peers WHERE speaker_id = $1 ORDER BY peer_id", row["id"])
    nets = await conn.fetch(
        "SELECT network_id FROM bgp_speaker_networks WHERE speaker_id = $1 ORDER BY network_id", row["id"]
    )
    return c.BgpSpeaker(
        id=row["id"],
        name=row["name"],
        local_as=row["local_as"],
        ip_version=row["ip_version"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        peers=[p["peer_id"] for p in peers],
        networks=[n["network_id"] for n in nets],
        advertise_floating_ip_host_routes=row["advertise_floating_ip_host_routes"],
        advertise_tenant_networks=row["advertise_tenant_networks"],
        revision_number=row["revision_number"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _peer_speakers(conn: asyncpg.Connection, peer_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch("SELECT speaker_id FROM bgp_speaker_peers WHERE peer_id = $1", peer_id)
    return [r["speaker_id"] for r in rows]


def _peer_view(row: asyncpg.Record) -> c.BgpPeer:
    return c.BgpPeer(
        id=row["id"],
        name=row["name"],
        peer_ip=str(row["peer_ip"]),
        remote_as=row["remote_as"],
        auth_type=row["auth_type"],
        project_id=row["project_id"],
        tenant_id=row["project_id"],
        revision_number=row["revision_number"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class BgpSpeakers:
    def __init__(self, deps: Deps) -> None:
        self.db = deps.db

    async def _locked(self, conn: asyncpg.Connection, ctx: CallContext, id_: uuid.UUID) -> asyncpg.Record:
        row = await conn.fetchrow("SELECT * FROM bgp_speakers WHERE id = $1 FOR UPDATE", id_) if ctx.is_admin else None
        if row is None:
            raise _speaker_not_found(id_)
        return row

    async def create(self, cmd: c.BgpSpeakerCreate) -> c.BgpSpeakerReply:
        body, ctx = cmd.bgp_speaker, cmd.context
        _admin(ctx, "create_bgp_speaker")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """INSERT INTO bgp_speakers (id, name, project_id, local_as, ip_version,
                   advertise_floating_ip_host_routes, advertise_tenant_networks)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
                uuid.uuid4(),
                body.name,
                owner,
                body.local_as,
                body.ip_version,
                body.advertise_floating_ip_host_routes,
                body.advertise_tenant_networks,
            )
            await bgpspec.republish(conn, [row["id"]], force=True)
            view = await _speaker_view(conn, row)
        return c.BgpSpeakerReply(bgp_speaker=view)

    async def get(self, cmd: ByIdCommand) -> c.BgpSpeakerReply:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, cmd.context, cmd.id)
            return c.BgpSpeakerReply(bgp_speaker=await _speaker_view(conn, row))

    async def list(self, cmd: ListCommand) -> c.BgpSpeakerList:
        if not cmd.context.is_admin:
            return c.BgpSpeakerList(bgp_speakers=[])
        async with db_errors(), self.db.acquire() as conn:
            views = [await _speaker_view(conn, r) for r in await conn.fetch("SELECT * FROM bgp_speakers ORDER BY id")]
        return c.BgpSpeakerList(bgp_speakers=apply_filters(views, cmd.filters, c.BgpSpeaker))

    async def update(self, cmd: c.BgpSpeakerUpdate) -> c.BgpSpeakerReply:
        body = cmd.bgp_speaker
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self._locked(conn, cmd.context, cmd.id)
            row = await conn.fetchrow(
                """UPDATE bgp_speakers SET name = coalesce($2, name),
                   advertise_floating_ip_host_routes = coalesce($3, advertise_floating_ip_host_routes),
                   advertise_tenant_networks = coalesce($4, advertise_tenant_networks),
                   revision_number = revision_number + 1, updated_at = now() WHERE id = $1 RETURNING *""",
                cmd.id,
                body.name,
                body.advertise_floating_ip_host_routes,
                body.advertise_tenant_networks,
            )
            await bgpspec.republish(conn, [cmd.id])
            view = await _speaker_view(conn, row)
        return c.BgpSpeakerReply(bgp_speaker=view)

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, cmd.context, cmd.id)
            await conn.execute("DELETE FROM bgp_speakers WHERE id = $1", cmd.id)
            await bgpspec.removal(conn, cmd.id, row["spec_revision"] + 1)
        return Deleted(id=cmd.id)

    # ------------------------------------------------------------ member actions

    async def _touch(self, conn: asyncpg.Connection, id_: uuid.UUID) -> None:
        await conn.execute(
            "UPDATE bgp_speakers SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1", id_
        )
        await bgpspec.republish(conn, [id_], force=True)

    async def add_bgp_peer(self, cmd: c.BgpSpeakerPeer) -> c.BgpPeerId:
        _admin(cmd.context, "add_bgp_peer")
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            speaker = await self._locked(conn, cmd.context, cmd.id)
            peer = await conn.fetchrow("SELECT * FROM bgp_peers WHERE id = $1 FOR UPDATE", cmd.bgp_peer_id)
            if peer is None:
                raise _peer_not_found(cmd.bgp_peer_id, "bgp_peer_id")
            if peer["peer_ip"].version != speaker["ip_version"]:
                raise BadRequest(
                    f"BGP peer {cmd.bgp_peer_id} is an IPv{peer['peer_ip'].version} peer; "
                    f"BGP speaker {cmd.id} speaks IPv{speaker['ip_version']}",
                    field="bgp_peer_id",
                )
            clash = await conn.fetchval(
                """SELECT p.id FROM bgp_speaker_peers sp JOIN bgp_peers p ON p.id = sp.peer_id
                   WHERE sp.speaker_id = $1 AND p.peer_ip = $2 AND p.id <> $3""",
                cmd.id,
                peer["peer_ip"],
                peer["id"],
            )
            if clash is not None:
                raise Conflict(
                    f"BGP Speaker {cmd.id} is already configured to peer with a BGP Peer at {peer['peer_ip']}, "
                    f"it cannot peer with BGP Peer {cmd.bgp_peer_id}.",
                    type="DuplicateBgpPeerIpException",
                )
            await conn.execute(
                "INSERT INTO bgp_speaker_peers (speaker_id, peer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                cmd.id,
                cmd.bgp_peer_id,
            )
            await self._touch(conn, cmd.id)
        return c.BgpPeerId(bgp_peer_id=cmd.bgp_peer_id)

    async def remove_bgp_peer(self, cmd: c.BgpSpeakerPeer) -> c.BgpPeerId:
        _admin(cmd.context, "remove_bgp_peer")
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self._locked(conn, cmd.context, cmd.id)
            gone = await conn.fetchval(
                "DELETE FROM bgp_speaker_peers WHERE speaker_id = $1 AND peer_id = $2 RETURNING peer_id",
                cmd.id,
                cmd.bgp_peer_id,
            )
            if gone is None:
                raise NotFound(
                    f"BGP peer {cmd.bgp_peer_id} is not associated with BGP speaker {cmd.id}.",
                    type="BgpSpeakerPeerNotAssociated",
                    field="bgp_peer_id",
                )
            await self._touch(conn, cmd.id)
        return c.BgpPeerId(bgp_peer_id=cmd.bgp_peer_id)

    async def add_gateway_network(self, cmd: c.BgpSpeakerNetwork) -> c.BgpNetworkId:
        _admin(cmd.context, "add_gateway_network")
        async with (
            db_errors(
                f"Network {cmd.network_id} is already bound to a BGP speaker of this IP version.",
                conflict_type="BgpSpeakerNetworkBindingError",
            ),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            speaker = await self._locked(conn, cmd.context, cmd.id)
            if await conn.fetchval("SELECT 1 FROM networks WHERE id = $1", cmd.network_id) is None:
                raise not_found("network", cmd.network_id, field="network_id")
            bound = await conn.fetchval(
                "SELECT speaker_id FROM bgp_speaker_networks WHERE network_id = $1 AND ip_version = $2",
                cmd.network_id,
                speaker["ip_version"],
            )
            if bound is not None:
                raise Conflict(
                    f"Network {cmd.network_id} is already bound to BgpSpeaker {bound}.",
                    type="BgpSpeakerNetworkBindingError",
                    field="network_id",
                )
            await conn.execute(
                "INSERT INTO bgp_speaker_networks (speaker_id, network_id, ip_version) VALUES ($1, $2, $3)",
                cmd.id,
                cmd.network_id,
                speaker["ip_version"],
            )
            await self._touch(conn, cmd.id)
        return c.BgpNetworkId(network_id=cmd.network_id)

    async def remove_gateway_network(self, cmd: c.BgpSpeakerNetwork) -> c.BgpNetworkId:
        _admin(cmd.context, "remove_gateway_network")
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self._locked(conn, cmd.context, cmd.id)
            gone = await conn.fetchval(
                "DELETE FROM bgp_speaker_networks WHERE speaker_id = $1 AND network_id = $2 RETURNING network_id",
                cmd.id,
                cmd.network_id,
            )
            if gone is None:
                raise NotFound(
                    f"Network {cmd.network_id} is not associated with BGP speaker {cmd.id}.",
                    type="BgpSpeakerNetworkNotAssociated",
                    field="network_id",
                )
            await self._touch(conn, cmd.id)
        return c.BgpNetworkId(network_id=cmd.network_id)

    async def get_advertised_routes(self, cmd: ByIdCommand) -> c.AdvertisedRoutes:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, cmd.context, cmd.id)
            return c.AdvertisedRoutes(advertised_routes=await bgpspec.compute(conn, row))

    async def spec(self, cmd: ByIdCommand) -> c.BgpSpeakerSpec:
        """The speaker's current spec, password included: for the BGP daemon (admin)."""
        _admin(cmd.context, "get_bgp_speaker_spec")
        async with db_errors(), self.db.acquire() as conn:
            spec = await bgpspec.current(conn, cmd.id)
        if spec is None:
            raise _speaker_not_found(cmd.id)
        return spec


class BgpPeers:
    def __init__(self, deps: Deps) -> None:
        self.db = deps.db

    async def _locked(self, conn: asyncpg.Connection, ctx: CallContext, id_: uuid.UUID) -> asyncpg.Record:
        row = await conn.fetchrow("SELECT * FROM bgp_peers WHERE id = $1 FOR UPDATE", id_) if ctx.is_admin else None
        if row is None:
            raise _peer_not_found(id_)
        return row

    async def create(self, cmd: c.BgpPeerCreate) -> c.BgpPeerReply:
        body, ctx = cmd.bgp_peer, cmd.context
        _admin(ctx, "create_bgp_peer")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        async with db_errors(), self.db.acquire() as conn:
            row = await conn.fetchrow(
                """INSERT INTO bgp_peers (id, name, project_id, peer_ip, remote_as, auth_type, password)
                   VALUES ($1, $2, $3, $4::inet, $5, $6, $7) RETURNING *""",
                uuid.uuid4(),
                body.name,
                owner,
                body.peer_ip,
                body.remote_as,
                body.auth_type,
                body.password,
            )
        return c.BgpPeerReply(bgp_peer=_peer_view(row))

    async def get(self, cmd: ByIdCommand) -> c.BgpPeerReply:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            return c.BgpPeerReply(bgp_peer=_peer_view(await self._locked(conn, cmd.context, cmd.id)))

    async def list(self, cmd: ListCommand) -> c.BgpPeerList:
        if not cmd.context.is_admin:
            return c.BgpPeerList(bgp_peers=[])
        async with db_errors(), self.db.acquire() as conn:
            views = [_peer_view(r) for r in await conn.fetch("SELECT * FROM bgp_peers ORDER BY id")]
        return c.BgpPeerList(bgp_peers=apply_filters(views, cmd.filters, c.BgpPeer))

    async def update(self, cmd: c.BgpPeerUpdate) -> c.BgpPeerReply:
        body = cmd.bgp_peer
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            before = await self._locked(conn, cmd.context, cmd.id)
            if body.password is not None and before["auth_type"] != "md5":
                raise BadRequest("A password may only be set on a peer with auth_type md5.", field="password")
            row = await conn.fetchrow(
                """UPDATE bgp_peers SET name = coalesce($2, name), password = coalesce($3, password),
                   revision_number = revision_number + 1, updated_at = now() WHERE id = $1 RETURNING *""",
                cmd.id,
                body.name,
                body.password,
            )
            if body.password is not None:
                await bgpspec.republish(conn, await _peer_speakers(conn, cmd.id), force=True)
        return c.BgpPeerReply(bgp_peer=_peer_view(row))

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self._locked(conn, cmd.context, cmd.id)
            speakers = await _peer_speakers(conn, cmd.id)
            await conn.execute("DELETE FROM bgp_peers WHERE id = $1", cmd.id)
            await bgpspec.republish(conn, speakers, force=True)
        return Deleted(id=cmd.id)
