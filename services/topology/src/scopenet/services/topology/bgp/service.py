"""BGP speakers and peers (neutron-dynamic-routing's ``bgp`` extension).

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
from scopenet.contracts.errors import NotFound
from scopenet.policy.rules import not_found, owner_for_create
from scopenet.services.topology.bgp import rules, speakerspecs, store
from scopenet.services.topology.context import Deps
from scopenet.services.topology.listing import apply_filters
from scopenet.store.db import db_errors


class BgpSpeakers:
    def __init__(self, deps: Deps) -> None:
        self.db = deps.db

    async def _locked(self, conn: asyncpg.Connection, ctx: CallContext, id_: uuid.UUID) -> asyncpg.Record:
        row = await store.lock_speaker(conn, id_) if ctx.is_admin else None
        if row is None:
            raise rules.speaker_not_found(id_)
        return row

    async def create(self, cmd: c.BgpSpeakerCreate) -> c.BgpSpeakerReply:
        body, ctx = cmd.bgp_speaker, cmd.context
        rules.require_admin(ctx, "create_bgp_speaker")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await store.insert_speaker(conn, body, owner=owner)
            await speakerspecs.republish(conn, [row["id"]], force=True)
            view = await store.speaker_view(conn, row)
        return c.BgpSpeakerReply(bgp_speaker=view)

    async def get(self, cmd: ByIdCommand) -> c.BgpSpeakerReply:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, cmd.context, cmd.id)
            return c.BgpSpeakerReply(bgp_speaker=await store.speaker_view(conn, row))

    async def list(self, cmd: ListCommand) -> c.BgpSpeakerList:
        if not cmd.context.is_admin:
            return c.BgpSpeakerList(bgp_speakers=[])
        async with db_errors(), self.db.acquire() as conn:
            views = [await store.speaker_view(conn, r) for r in await store.speakers(conn)]
        return c.BgpSpeakerList(bgp_speakers=apply_filters(views, cmd.filters, c.BgpSpeaker))

    async def update(self, cmd: c.BgpSpeakerUpdate) -> c.BgpSpeakerReply:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self._locked(conn, cmd.context, cmd.id)
            row = await store.update_speaker(conn, cmd.id, cmd.bgp_speaker)
            await speakerspecs.republish(conn, [cmd.id])
            view = await store.speaker_view(conn, row)
        return c.BgpSpeakerReply(bgp_speaker=view)

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            row = await self._locked(conn, cmd.context, cmd.id)
            await store.delete_speaker(conn, cmd.id)
            await speakerspecs.removal(conn, cmd.id, row["spec_revision"] + 1)
        return Deleted(id=cmd.id)

    # ------------------------------------------------------------ member actions

    async def _touch(self, conn: asyncpg.Connection, id_: uuid.UUID) -> None:
        await store.bump_speaker(conn, id_)
        await speakerspecs.republish(conn, [id_], force=True)

    async def add_bgp_peer(self, cmd: c.BgpSpeakerPeer) -> c.BgpPeerId:
        rules.require_admin(cmd.context, "add_bgp_peer")
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            speaker = await self._locked(conn, cmd.context, cmd.id)
            peer = await store.lock_peer(conn, cmd.bgp_peer_id)
            if peer is None:
                raise rules.peer_not_found(cmd.bgp_peer_id, "bgp_peer_id")
            rules.check_peer_family(
                peer_version=peer["peer_ip"].version,
                speaker_version=speaker["ip_version"],
                peer_id=cmd.bgp_peer_id,
                speaker_id=cmd.id,
            )
            clash = await store.peer_ip_clash(conn, speaker_id=cmd.id, peer_ip=peer["peer_ip"], peer_id=peer["id"])
            rules.check_peer_ip_free(clash, speaker_id=cmd.id, peer_ip=peer["peer_ip"], peer_id=cmd.bgp_peer_id)
            await store.add_speaker_peer(conn, cmd.id, cmd.bgp_peer_id)
            await self._touch(conn, cmd.id)
        return c.BgpPeerId(bgp_peer_id=cmd.bgp_peer_id)

    async def remove_bgp_peer(self, cmd: c.BgpSpeakerPeer) -> c.BgpPeerId:
        rules.require_admin(cmd.context, "remove_bgp_peer")
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self._locked(conn, cmd.context, cmd.id)
            if not await store.remove_speaker_peer(conn, cmd.id, cmd.bgp_peer_id):
                raise NotFound(
                    f"BGP peer {cmd.bgp_peer_id} is not associated with BGP speaker {cmd.id}.",
                    type="BgpSpeakerPeerNotAssociated",
                    field="bgp_peer_id",
                )
            await self._touch(conn, cmd.id)
        return c.BgpPeerId(bgp_peer_id=cmd.bgp_peer_id)

    async def add_gateway_network(self, cmd: c.BgpSpeakerNetwork) -> c.BgpNetworkId:
        rules.require_admin(cmd.context, "add_gateway_network")
        async with (
            db_errors(
                f"Network {cmd.network_id} is already bound to a BGP speaker of this IP version.",
                conflict_type="BgpSpeakerNetworkBindingError",
            ),
            self.db.acquire() as conn,
            conn.transaction(),
        ):
            speaker = await self._locked(conn, cmd.context, cmd.id)
            if not await store.network_exists(conn, cmd.network_id):
                raise not_found("network", cmd.network_id, field="network_id")
            bound = await store.network_speaker(conn, cmd.network_id, speaker["ip_version"])
            rules.check_network_unbound(bound, cmd.network_id)
            await store.add_speaker_network(
                conn, speaker_id=cmd.id, network_id=cmd.network_id, ip_version=speaker["ip_version"]
            )
            await self._touch(conn, cmd.id)
        return c.BgpNetworkId(network_id=cmd.network_id)

    async def remove_gateway_network(self, cmd: c.BgpSpeakerNetwork) -> c.BgpNetworkId:
        rules.require_admin(cmd.context, "remove_gateway_network")
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self._locked(conn, cmd.context, cmd.id)
            if not await store.remove_speaker_network(conn, cmd.id, cmd.network_id):
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
            return c.AdvertisedRoutes(advertised_routes=await speakerspecs.compute(conn, row))

    async def spec(self, cmd: ByIdCommand) -> c.BgpSpeakerSpec:
        """The speaker's current spec, password included: for the BGP daemon (admin)."""
        rules.require_admin(cmd.context, "get_bgp_speaker_spec")
        async with db_errors(), self.db.acquire() as conn:
            spec = await speakerspecs.current(conn, cmd.id)
        if spec is None:
            raise rules.speaker_not_found(cmd.id)
        return spec


class BgpPeers:
    def __init__(self, deps: Deps) -> None:
        self.db = deps.db

    async def _locked(self, conn: asyncpg.Connection, ctx: CallContext, id_: uuid.UUID) -> asyncpg.Record:
        row = await store.lock_peer(conn, id_) if ctx.is_admin else None
        if row is None:
            raise rules.peer_not_found(id_)
        return row

    async def create(self, cmd: c.BgpPeerCreate) -> c.BgpPeerReply:
        body, ctx = cmd.bgp_peer, cmd.context
        rules.require_admin(ctx, "create_bgp_peer")
        owner = owner_for_create(ctx, body.project_id, body.tenant_id)
        async with db_errors(), self.db.acquire() as conn:
            row = await store.insert_peer(conn, body, owner=owner)
        return c.BgpPeerReply(bgp_peer=store.peer_view(row))

    async def get(self, cmd: ByIdCommand) -> c.BgpPeerReply:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            return c.BgpPeerReply(bgp_peer=store.peer_view(await self._locked(conn, cmd.context, cmd.id)))

    async def list(self, cmd: ListCommand) -> c.BgpPeerList:
        if not cmd.context.is_admin:
            return c.BgpPeerList(bgp_peers=[])
        async with db_errors(), self.db.acquire() as conn:
            views = [store.peer_view(r) for r in await store.peers(conn)]
        return c.BgpPeerList(bgp_peers=apply_filters(views, cmd.filters, c.BgpPeer))

    async def update(self, cmd: c.BgpPeerUpdate) -> c.BgpPeerReply:
        body = cmd.bgp_peer
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            before = await self._locked(conn, cmd.context, cmd.id)
            rules.check_password(body.password, before["auth_type"])
            row = await store.update_peer(conn, cmd.id, body)
            if body.password is not None:
                await speakerspecs.republish(conn, await store.peer_speakers(conn, cmd.id), force=True)
        return c.BgpPeerReply(bgp_peer=store.peer_view(row))

    async def delete(self, cmd: DeleteCommand) -> Deleted:
        async with db_errors(), self.db.acquire() as conn, conn.transaction():
            await self._locked(conn, cmd.context, cmd.id)
            speakers = await store.peer_speakers(conn, cmd.id)
            await store.delete_peer(conn, cmd.id)
            await speakerspecs.republish(conn, speakers, force=True)
        return Deleted(id=cmd.id)
