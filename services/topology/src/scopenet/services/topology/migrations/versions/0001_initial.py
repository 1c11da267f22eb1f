"""Topology schema: networks, subnets, ports, routers, floating IPs, network RBAC, IPAM mirror, outbox.

Rows that need an IPAM allocation carry a saga ``state`` (``allocating`` → ``active`` →
``deleting``) and ``state_at``; only ``active`` rows are visible to readers, and the reconciler
finishes or rolls back rows that stay in another state for too long. ``subnetpools`` and
``address_scopes`` mirror IPAM (fed by its events), so reads and RouterSpecs never call IPAM.

The outbox's ``event_id`` is text here (not uuid): RouterSpecs are published with
``Nats-Msg-Id = <router_id>-<revision>``, events with their uuid.

Revision ID: 0001
Revises:
"""

from scopenet.store.migrate import execute_script

revision = "0001"
down_revision = None


def upgrade() -> None:
    execute_script(
        """
CREATE TABLE address_scopes (
    id uuid PRIMARY KEY,
    ip_version smallint NOT NULL,
    mark_id integer NOT NULL
);

CREATE TABLE subnetpools (
    id uuid PRIMARY KEY,
    ip_version smallint NOT NULL,
    address_scope_id uuid,
    revision_number integer NOT NULL DEFAULT -1  -- -1: learnt from a subnet reply, any event wins
);
CREATE INDEX subnetpools_scope ON subnetpools (address_scope_id);

CREATE TABLE consumed_events (
    event_id uuid PRIMARY KEY,
    consumed_at timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE segmentation_ids MINVALUE 1 MAXVALUE 16777215 CYCLE;

CREATE TABLE networks (
    id uuid PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    project_id text NOT NULL,
    admin_state_up boolean NOT NULL DEFAULT true,
    router_external boolean NOT NULL DEFAULT false,
    mtu integer NOT NULL,
    segmentation_id integer NOT NULL UNIQUE CHECK (segmentation_id BETWEEN 1 AND 16777215),
    port_security_enabled boolean NOT NULL DEFAULT true,
    status text NOT NULL DEFAULT 'ACTIVE',
    description text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    revision_number integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE network_rbac (
    id uuid PRIMARY KEY,
    network_id uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    project_id text NOT NULL,
    target_project text NOT NULL,
    action text NOT NULL CHECK (action IN ('access_as_shared', 'access_as_external')),
    UNIQUE (network_id, target_project, action)
);

CREATE TABLE subnets (
    id uuid PRIMARY KEY,
    network_id uuid NOT NULL REFERENCES networks (id) ON DELETE RESTRICT,
    project_id text NOT NULL,
    name text NOT NULL DEFAULT '',
    ip_version smallint NOT NULL CHECK (ip_version IN (4, 6)),
    cidr cidr,  -- NULL while allocating
    subnetpool_id uuid,
    gateway_ip inet,
    allocation_pools jsonb NOT NULL DEFAULT '[]',
    enable_dhcp boolean NOT NULL DEFAULT true,
    ipv6_ra_mode text,
    ipv6_address_mode text,
    dns_nameservers text[] NOT NULL DEFAULT '{}',
    host_routes jsonb NOT NULL DEFAULT '[]',
    service_types text[] NOT NULL DEFAULT '{}',
    description text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    revision_number integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    state text NOT NULL CHECK (state IN ('allocating', 'active', 'deleting')),
    state_at timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'active' OR cidr IS NOT NULL)
);
CREATE INDEX subnets_network ON subnets (network_id);
CREATE INDEX subnets_pool ON subnets (subnetpool_id);
CREATE INDEX subnets_unsettled ON subnets (state_at) WHERE state <> 'active';

CREATE TABLE ports (
    id uuid PRIMARY KEY,
    network_id uuid NOT NULL REFERENCES networks (id) ON DELETE RESTRICT,
    project_id text NOT NULL,
    name text NOT NULL DEFAULT '',
    mac_address macaddr NOT NULL UNIQUE,
    admin_state_up boolean NOT NULL DEFAULT true,
    status text NOT NULL DEFAULT 'DOWN',
    device_owner text NOT NULL DEFAULT '',
    device_id text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    revision_number integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    request jsonb,  -- the fixed IPs asked for, while allocating
    state text NOT NULL CHECK (state IN ('allocating', 'active', 'deleting')),
    state_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ports_network ON ports (network_id);
CREATE INDEX ports_device ON ports (device_id);
CREATE INDEX ports_unsettled ON ports (state_at) WHERE state <> 'active';

-- ipam_held = false: the address is the subnet's gateway, which IPAM reserves for the subnet
-- itself (a router interface added by subnet takes it without an IPAM allocation).
CREATE TABLE port_ips (
    port_id uuid NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    subnet_id uuid NOT NULL REFERENCES subnets (id) ON DELETE RESTRICT,
    ip_address inet NOT NULL,
    ipam_held boolean NOT NULL DEFAULT true,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX port_ips_port ON port_ips (port_id);

CREATE TABLE routers (
    id uuid PRIMARY KEY,
    project_id text NOT NULL,
    name text NOT NULL DEFAULT '',
    admin_state_up boolean NOT NULL DEFAULT true,
    status text NOT NULL DEFAULT 'PENDING',
    status_reason text,
    status_revision bigint NOT NULL DEFAULT -1,
    gw_port_id uuid UNIQUE REFERENCES ports (id) ON DELETE SET NULL,
    enable_snat boolean NOT NULL DEFAULT true,
    routes jsonb NOT NULL DEFAULT '[]',
    description text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    revision_number integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    agent_id text,
    spec_revision bigint NOT NULL DEFAULT 0,
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('allocating', 'active', 'deleting')),
    state_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX routers_agent ON routers (agent_id);

CREATE TABLE router_ports (
    port_id uuid PRIMARY KEY REFERENCES ports (id) ON DELETE CASCADE,
    router_id uuid NOT NULL REFERENCES routers (id) ON DELETE CASCADE
);
CREATE INDEX router_ports_router ON router_ports (router_id);

CREATE TABLE floatingips (
    id uuid PRIMARY KEY,
    project_id text NOT NULL,
    floating_network_id uuid NOT NULL REFERENCES networks (id) ON DELETE RESTRICT,
    floating_port_id uuid NOT NULL UNIQUE REFERENCES ports (id) ON DELETE CASCADE,
    floating_ip_address inet,  -- NULL while allocating
    port_id uuid REFERENCES ports (id) ON DELETE SET NULL,
    fixed_ip_address inet,
    router_id uuid REFERENCES routers (id) ON DELETE SET NULL,
    description text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    revision_number integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (floating_network_id, port_id, fixed_ip_address)
);
CREATE INDEX floatingips_port ON floatingips (port_id);
CREATE INDEX floatingips_router ON floatingips (router_id);

CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    subject text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
"""
    )
