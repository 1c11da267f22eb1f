"""SQL of BGP speakers and peers, and of what a speaker's spec is computed from."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from scopenet.contracts import bgp as c
from scopenet.contracts import cloudevents
from scopenet.services.topology.specs import rules as specrules
from scopenet.services.topology.specs.store import router_row
from scopenet.store.outbox import headers_json

# ---------------------------------------------------------------- views


async def speaker_view(conn: asyncpg.Connection, row: asyncpg.Record) -> c.BgpSpeaker:
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


def peer_view(row: asyncpg.Record) -> c.BgpPeer:
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


# ---------------------------------------------------------------- speakers


async def lock_speaker(conn: asyncpg.Connection, id_: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM bgp_speakers WHERE id = $1 FOR UPDATE", id_)


async def speakers(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM bgp_speakers ORDER BY id"))


async def insert_speaker(conn: asyncpg.Connection, body: c.BgpSpeakerCreateBody, *, owner: str) -> asyncpg.Record:
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
    assert row is not None
    return row


async def update_speaker(conn: asyncpg.Connection, id_: uuid.UUID, body: c.BgpSpeakerUpdateBody) -> asyncpg.Record:
    row = await conn.fetchrow(
        """UPDATE bgp_speakers SET name = coalesce($2, name),
           advertise_floating_ip_host_routes = coalesce($3, advertise_floating_ip_host_routes),
           advertise_tenant_networks = coalesce($4, advertise_tenant_networks),
           revision_number = revision_number + 1, updated_at = now() WHERE id = $1 RETURNING *""",
        id_,
        body.name,
        body.advertise_floating_ip_host_routes,
        body.advertise_tenant_networks,
    )
    assert row is not None
    return row


async def delete_speaker(conn: asyncpg.Connection, id_: uuid.UUID) -> None:
    await conn.execute("DELETE FROM bgp_speakers WHERE id = $1", id_)


async def bump_speaker(conn: asyncpg.Connection, id_: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE bgp_speakers SET revision_number = revision_number + 1, updated_at = now() WHERE id = $1", id_
    )


async def peer_ip_clash(
    conn: asyncpg.Connection, *, speaker_id: uuid.UUID, peer_ip: Any, peer_id: uuid.UUID
) -> uuid.UUID | None:
    """Another peer of the speaker at the same address, if any."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """SELECT p.id FROM bgp_speaker_peers sp JOIN bgp_peers p ON p.id = sp.peer_id
           WHERE sp.speaker_id = $1 AND p.peer_ip = $2 AND p.id <> $3""",
        speaker_id,
        peer_ip,
        peer_id,
    )


async def add_speaker_peer(conn: asyncpg.Connection, speaker_id: uuid.UUID, peer_id: uuid.UUID) -> None:
    await conn.execute(
        "INSERT INTO bgp_speaker_peers (speaker_id, peer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        speaker_id,
        peer_id,
    )


async def remove_speaker_peer(conn: asyncpg.Connection, speaker_id: uuid.UUID, peer_id: uuid.UUID) -> bool:
    gone = await conn.fetchval(
        "DELETE FROM bgp_speaker_peers WHERE speaker_id = $1 AND peer_id = $2 RETURNING peer_id", speaker_id, peer_id
    )
    return gone is not None


async def network_exists(conn: asyncpg.Connection, network_id: uuid.UUID) -> bool:
    return await conn.fetchval("SELECT 1 FROM networks WHERE id = $1", network_id) is not None


async def network_speaker(conn: asyncpg.Connection, network_id: uuid.UUID, ip_version: int) -> uuid.UUID | None:
    """The speaker of this IP version the network is bound to, if any."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT speaker_id FROM bgp_speaker_networks WHERE network_id = $1 AND ip_version = $2",
        network_id,
        ip_version,
    )


async def add_speaker_network(
    conn: asyncpg.Connection, *, speaker_id: uuid.UUID, network_id: uuid.UUID, ip_version: int
) -> None:
    await conn.execute(
        "INSERT INTO bgp_speaker_networks (speaker_id, network_id, ip_version) VALUES ($1, $2, $3)",
        speaker_id,
        network_id,
        ip_version,
    )


async def remove_speaker_network(conn: asyncpg.Connection, speaker_id: uuid.UUID, network_id: uuid.UUID) -> bool:
    gone = await conn.fetchval(
        "DELETE FROM bgp_speaker_networks WHERE speaker_id = $1 AND network_id = $2 RETURNING network_id",
        speaker_id,
        network_id,
    )
    return gone is not None


# ---------------------------------------------------------------- peers


async def lock_peer(conn: asyncpg.Connection, id_: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM bgp_peers WHERE id = $1 FOR UPDATE", id_)


async def peers(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM bgp_peers ORDER BY id"))


async def peer_speakers(conn: asyncpg.Connection, peer_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch("SELECT speaker_id FROM bgp_speaker_peers WHERE peer_id = $1", peer_id)
    return [r["speaker_id"] for r in rows]


async def insert_peer(conn: asyncpg.Connection, body: c.BgpPeerCreateBody, *, owner: str) -> asyncpg.Record:
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
    assert row is not None
    return row


async def update_peer(conn: asyncpg.Connection, id_: uuid.UUID, body: c.BgpPeerUpdateBody) -> asyncpg.Record:
    row = await conn.fetchrow(
        """UPDATE bgp_peers SET name = coalesce($2, name), password = coalesce($3, password),
           revision_number = revision_number + 1, updated_at = now() WHERE id = $1 RETURNING *""",
        id_,
        body.name,
        body.password,
    )
    assert row is not None
    return row


async def delete_peer(conn: asyncpg.Connection, id_: uuid.UUID) -> None:
    await conn.execute("DELETE FROM bgp_peers WHERE id = $1", id_)


# ---------------------------------------------------------------- speaker specs


async def speaker_networks(conn: asyncpg.Connection, speaker_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch("SELECT network_id FROM bgp_speaker_networks WHERE speaker_id = $1", speaker_id)
    return [r["network_id"] for r in rows]


async def bound_speakers(conn: asyncpg.Connection) -> list[uuid.UUID]:
    """Every speaker with a gateway network."""
    return [r["speaker_id"] for r in await conn.fetch("SELECT DISTINCT speaker_id FROM bgp_speaker_networks")]


async def gateway_routers(conn: asyncpg.Connection, network_ids: list[uuid.UUID]) -> list[specrules.RouterRow]:
    """Active routers with their gateway on these networks."""
    rows = await conn.fetch(
        """SELECT r.* FROM routers r JOIN ports p ON p.id = r.gw_port_id
           WHERE p.network_id = ANY($1::uuid[]) AND r.state = 'active' ORDER BY r.id""",
        network_ids,
    )
    return [router_row(r) for r in rows]


async def peer_specs(conn: asyncpg.Connection, speaker_id: uuid.UUID) -> list[c.PeerSpec]:
    rows = await conn.fetch(
        """SELECT p.id, p.peer_ip, p.remote_as, p.password FROM bgp_speaker_peers sp JOIN bgp_peers p
           ON p.id = sp.peer_id WHERE sp.speaker_id = $1 ORDER BY p.peer_ip, p.id""",
        speaker_id,
    )
    return [
        c.PeerSpec(id=r["id"], peer_ip=str(r["peer_ip"]), remote_as=r["remote_as"], password=r["password"])
        for r in rows
    ]


async def lock_speakers(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """Speaker rows locked in id order (two publishers cannot deadlock)."""
    return list(await conn.fetch("SELECT * FROM bgp_speakers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", ids))


async def speaker(conn: asyncpg.Connection, speaker_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM bgp_speakers WHERE id = $1", speaker_id)


async def next_spec_revision(conn: asyncpg.Connection, speaker_id: uuid.UUID, routes: list[dict[str, Any]]) -> int:
    """Record the routes now announced and take the next spec revision."""
    revision = await conn.fetchval(
        "UPDATE bgp_speakers SET spec_revision = spec_revision + 1, routes = $2::text::jsonb WHERE id = $1"
        " RETURNING spec_revision",
        speaker_id,
        json.dumps(routes),
    )
    assert revision is not None
    return int(revision)


async def queue_spec(conn: asyncpg.Connection, spec: c.BgpSpeakerSpec) -> None:
    msg_id = f"bgp-{spec.speaker_id}-{spec.revision}"
    await conn.execute(
        "INSERT INTO outbox (event_id, subject, payload, headers) VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb)"
        " ON CONFLICT DO NOTHING",
        msg_id,
        c.speaker_subject(spec.speaker_id),
        spec.model_dump_json(),
        headers_json(cloudevents.bgp_spec_headers(spec, id=msg_id)),
    )
