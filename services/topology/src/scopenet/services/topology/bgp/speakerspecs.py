"""Compute and queue each BGP speaker's ``BgpSpeakerSpec``, inside the caller's transaction.

Every change that alters a RouterSpec passes through ``Specs.publish_for_routers`` (interfaces,
gateways, floating IPs, subnets, a pool changing scope), which calls ``republish_all`` here; the
BGP resources call ``republish`` for the speakers they touch. Speaker rows are locked in id order
and everything is read after the lock, so the last transaction to queue a spec saw every change
committed before it (as with RouterSpecs). A spec is queued only when what the daemon must do
changes (routes, peers, AS): the previous routes are kept in the row. Speakers are few (one per
external network and family), so recomputing all of them on a router change stays cheap; with no
speaker at all it costs one query.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import asyncpg
import structlog

from scopenet.contracts import bgp as c
from scopenet.services.topology.bgp import rules, store
from scopenet.services.topology.specs import store as specstore
from scopenet.services.topology.specs.service import build_specs

log = structlog.get_logger("topology.bgp")


async def compute(conn: asyncpg.Connection, speaker: asyncpg.Record) -> list[c.AdvertisedRoute]:
    """The routes of one speaker as the database stands (neutron-dynamic-routing's advertised routes)."""
    nets = await store.speaker_networks(conn, speaker["id"])
    if not nets:
        return []
    specs = await build_specs(conn, await store.gateway_routers(conn, nets))
    world = await specstore.load_world(conn, nets)
    return rules.speaker_routes(speaker, networks=nets, specs=specs, world=world)


async def republish(conn: asyncpg.Connection, speaker_ids: Iterable[UUID], *, force: bool = False) -> None:
    """Recompute the speakers; queue a spec for each whose routes changed (or every one, ``force``)."""
    ids = sorted(set(speaker_ids))
    if not ids:
        return
    for row in await store.lock_speakers(conn, ids):
        routes = await compute(conn, row)
        dumped = [r.model_dump() for r in routes]
        if not rules.spec_due(dumped, row["routes"], force=force):
            continue
        revision = await store.next_spec_revision(conn, row["id"], dumped)
        await store.queue_spec(
            conn,
            c.BgpSpeakerSpec(
                speaker_id=row["id"],
                revision=revision,
                local_as=row["local_as"],
                ip_version=row["ip_version"],
                peers=await store.peer_specs(conn, row["id"]),
                routes=routes,
            ),
        )
        log.info("bgp_speaker_spec_queued", speaker_id=str(row["id"]), revision=revision, routes=len(routes))


async def republish_all(conn: asyncpg.Connection, _router_ids: Iterable[UUID] = ()) -> None:
    """A RouterSpec changed: any speaker with a gateway network may announce something else now."""
    await republish(conn, await store.bound_speakers(conn))


async def removal(conn: asyncpg.Connection, speaker_id: UUID, revision: int) -> None:
    await store.queue_spec(conn, c.BgpSpeakerSpec(speaker_id=speaker_id, revision=revision, present=False))


async def current(conn: asyncpg.Connection, speaker_id: UUID) -> c.BgpSpeakerSpec | None:
    """What the daemon should run for this speaker right now (tests and the daemon's first read)."""
    row = await store.speaker(conn, speaker_id)
    if row is None:
        return None
    return c.BgpSpeakerSpec(
        speaker_id=row["id"],
        revision=row["spec_revision"],
        local_as=row["local_as"],
        ip_version=row["ip_version"],
        peers=await store.peer_specs(conn, row["id"]),
        routes=await compute(conn, row),
    )
