"""BGP dynamic routing: speakers, peers, their associations, and each speaker's published routes.

``routes``/``spec_revision`` remember the last ``BgpSpeakerSpec`` queued for a speaker, so a change
that does not alter what it announces queues nothing. A peer's ``password`` is stored for the BGP
daemon (MD5 key) and never shown by the API. A network is bound to at most one speaker per IP
family (neutron-dynamic-routing's ``BgpSpeakerNetworkBindingError``).

Revision ID: 0002
Revises: 0001
"""

from scopenet.store.migrate import execute_script

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    execute_script(
        """
CREATE TABLE bgp_speakers (
    id uuid PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    project_id text NOT NULL,
    local_as bigint NOT NULL CHECK (local_as BETWEEN 1 AND 4294967295),
    ip_version smallint NOT NULL CHECK (ip_version IN (4, 6)),
    advertise_floating_ip_host_routes boolean NOT NULL DEFAULT true,
    advertise_tenant_networks boolean NOT NULL DEFAULT true,
    revision_number integer NOT NULL DEFAULT 0,
    spec_revision bigint NOT NULL DEFAULT 0,
    routes jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bgp_peers (
    id uuid PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    project_id text NOT NULL,
    peer_ip inet NOT NULL,
    remote_as bigint NOT NULL CHECK (remote_as BETWEEN 1 AND 4294967295),
    auth_type text NOT NULL DEFAULT 'none' CHECK (auth_type IN ('none', 'md5')),
    password text,
    revision_number integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bgp_speaker_peers (
    speaker_id uuid NOT NULL REFERENCES bgp_speakers (id) ON DELETE CASCADE,
    peer_id uuid NOT NULL REFERENCES bgp_peers (id) ON DELETE CASCADE,
    PRIMARY KEY (speaker_id, peer_id)
);
CREATE INDEX bgp_speaker_peers_peer ON bgp_speaker_peers (peer_id);

CREATE TABLE bgp_speaker_networks (
    speaker_id uuid NOT NULL REFERENCES bgp_speakers (id) ON DELETE CASCADE,
    network_id uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    ip_version smallint NOT NULL,
    PRIMARY KEY (speaker_id, network_id),
    UNIQUE (network_id, ip_version)
);
"""
    )
