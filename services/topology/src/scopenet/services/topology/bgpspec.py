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

import json
from collections.abc import Iterable
from uuid import UUID

import asyncpg
import structlog

from scopenet.bgp.routes import Speaker, advertised_routes
from scopenet.contracts import bgp as c
from scopenet.services.topology import routerspec as b
from scopenet.services.topology.specs import build_specs, load_world

log = structlog.get_logger("topology.bgp")

_GATEWAY_ROUTERS = """
    SELECT r.* FROM routers r JOIN ports p ON p.id = r.gw_port_id
    WHERE p.network_id = ANY($1::uuid[]) AND r.state = 'active' ORDER BY r.id"""


async def compute(conn: asyncpg.Connection, speaker: asyncpg.Record) -> list[c.AdvertisedRoute]:
    """The routes of one speaker as the database stands (SPEC §2.M rule 68)."""
    nets = [
        r["network_id"]
        for r in await conn.fetch("SELECT network_id FROM bgp_speaker_networks WHERE speaker_id = $1", speaker["id"])
    ]
    if not nets:
        return []
    specs = await build_specs(conn, list(await conn.fetch(_GATEWAY_ROUTERS, nets)))
    world = await load_world(conn, nets)
    version = speaker["ip_version"]
    scopes = {n: b.network_scopes(n, world)[version] for n in nets}
    return advertised_routes(
        Speaker(version, speaker["advertise_tenant_networks"], speaker["advertise_floating_ip_host_routes"]),
        specs,
        scopes,
    )


async def _peers(conn: asyncpg.Connection, speaker_id: UUID) -> list[c.PeerSpec]:
    rows = await conn.fetch(
        """SELECT p.id, p.peer_ip, p.remote_as, p.password FROM bgp_speaker_peers sp JOIN bgp_peers p
           ON p.id = sp.peer_id WHERE sp.speaker_id = $1 ORDER BY p.peer_ip, p.id""",
        speaker_id,
    )
    return [
        c.PeerSpec(id=r["id"], peer_ip=str(r["peer_ip"]), remote_as=r["remote_as"], password=r["password"])
        for r in rows
    ]


async def _emit(conn: asyncpg.Connection, spec: c.BgpSpeakerSpec) -> None:
    await conn.execute(
        "INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3::text::jsonb) ON CONFLICT DO NOTHING",
        f"bgp-{spec.speaker_id}-{spec.revision}",
        c.speaker_subject(spec.speaker_id),
        spec.model_dump_json(),
    )


async def republish(conn: asyncpg.Connection, speaker_ids: Iterable[UUID], *, force: bool = False) -> None:
    """Recompute the speakers; queue a spec for each whose routes changed (or every one, ``force``)."""
    ids = sorted(set(speaker_ids))
    if not ids:
        return
    rows = await conn.fetch("SELECT * FROM bgp_speakers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", ids)
    for row in rows:
        routes = await compute(conn, row)
        dumped = [r.model_dump() for r in routes]
        if not force and dumped == row["routes"]:
            continue
        revision = await conn.fetchval(
            "UPDATE bgp_speakers SET spec_revision = spec_revision + 1, routes = $2::text::jsonb WHERE id = $1"
            " RETURNING spec_revision",
            row["id"],
            json.dumps(dumped),
        )
        await _emit(
            conn,
            c.BgpSpeakerSpec(
                speaker_id=row["id"],
                revision=revision,
                local_as=row["local_as"],
                ip_version=row["ip_version"],
                peers=await _peers(conn, row["id"]),
                routes=routes,
            ),
        )
        log.info("bgp_speaker_spec_queued", speaker_id=str(row["id"]), revision=revision, routes=len(routes))


async def republish_all(conn: asyncpg.Connection, _router_ids: Iterable[UUID] = ()) -> None:
    """A RouterSpec changed: any speaker with a gateway network may announce something else now."""
    ids = [r["speaker_id"] for r in await conn.fetch("SELECT DISTINCT speaker_id FROM bgp_speaker_networks")]
    await republish(conn, ids)


async def removal(conn: asyncpg.Connection, speaker_id: UUID, revision: int) -> None:
    await _emit(conn, c.BgpSpeakerSpec(speaker_id=speaker_id, revision=revision, present=False))


async def current(conn: asyncpg.Connection, speaker_id: UUID) -> c.BgpSpeakerSpec | None:
    """What the daemon should run for this speaker right now (tests and the daemon's first read)."""
    row = await conn.fetchrow("SELECT * FROM bgp_speakers WHERE id = $1", speaker_id)
    if row is None:
        return None
    return c.BgpSpeakerSpec(
        speaker_id=row["id"],
        revision=row["spec_revision"],
        local_as=row["local_as"],
        ip_version=row["ip_version"],
        peers=await _peers(conn, row["id"]),
        routes=await compute(conn, row),
    )
