"""IPAM schema: scopes, pools, prefixes, subnets, IP allocations, RBAC, outbox.

Overlap is the database's business (docs/architecture.md#postgres). btree_gist is not available in every Postgres we
run on (pgserver ships without contrib), so the "same scope" half of each exclusion constraint
uses a core GiST opclass: the singleton range ``int8range(k, k, '[]')`` overlaps another only when
the keys are equal. The key of a scope is its mark id; an unscoped pool's allocations are keyed by
minus the pool's serial number (overlap allowed across unscoped pools, never inside one).

Revision ID: 0001
Revises:
"""

from scopenet.store.migrate import execute_script

from scopenet.store.outbox import OUTBOX_DDL

revision = "0001"
down_revision = None


def upgrade() -> None:
    execute_script(
        """
CREATE TABLE address_scopes (
    id uuid PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    project_id text NOT NULL,
    ip_version smallint NOT NULL CHECK (ip_version IN (4, 6)),
    mark_id integer NOT NULL UNIQUE CHECK (mark_id BETWEEN 1025 AND 65535),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subnetpools (
    id uuid PRIMARY KEY,
    seq bigserial UNIQUE,
    name text NOT NULL,
    project_id text NOT NULL,
    ip_version smallint NOT NULL CHECK (ip_version IN (4, 6)),
    min_prefixlen smallint NOT NULL,
    max_prefixlen smallint NOT NULL,
    default_prefixlen smallint NOT NULL,
    default_quota integer CHECK (default_quota >= 0),
    -- RESTRICT: a scope with pools cannot vanish under them (whoever owns the pools: docs/neutron.md#in-use-checks-see-every-project)
    address_scope_id uuid REFERENCES address_scopes (id) ON DELETE RESTRICT,
    is_default boolean NOT NULL DEFAULT false,
    description text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    revision_number integer NOT NULL DEFAULT 0,
    -- bumped by every change to the pool's free space: in-memory allocators compare it
    alloc_version bigint NOT NULL DEFAULT 0,
    CHECK (min_prefixlen <= default_prefixlen AND default_prefixlen <= max_prefixlen)
);
CREATE UNIQUE INDEX subnetpools_one_default ON subnetpools (ip_version) WHERE is_default;
CREATE INDEX subnetpools_scope ON subnetpools (address_scope_id);

CREATE TABLE subnetpool_prefixes (
    subnetpool_id uuid NOT NULL REFERENCES subnetpools (id) ON DELETE CASCADE,
    cidr cidr NOT NULL,
    scope_key bigint,  -- the scope's mark id; NULL when the pool is unscoped
    PRIMARY KEY (subnetpool_id, cidr),
    CONSTRAINT pool_prefixes_no_overlap_in_scope
        EXCLUDE USING gist (int8range(scope_key, scope_key, '[]') WITH &&, cidr inet_ops WITH &&)
        WHERE (scope_key IS NOT NULL)
);

CREATE TABLE subnets (
    id uuid PRIMARY KEY,
    network_id uuid NOT NULL,
    project_id text NOT NULL,
    ip_version smallint NOT NULL CHECK (ip_version IN (4, 6)),
    cidr cidr NOT NULL,
    subnetpool_id uuid REFERENCES subnetpools (id) ON DELETE RESTRICT,
    overlap_key bigint,  -- scope mark id, or -pool seq for an unscoped pool, NULL without a pool
    gateway_ip inet,
    allocation_pools jsonb NOT NULL DEFAULT '[]',
    request jsonb NOT NULL,  -- the allocate request, so a retry can be told from a conflict
    alloc_version bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((subnetpool_id IS NULL) = (overlap_key IS NULL)),
    CONSTRAINT subnets_no_overlap_in_scope
        EXCLUDE USING gist (int8range(overlap_key, overlap_key, '[]') WITH &&, cidr inet_ops WITH &&)
        WHERE (overlap_key IS NOT NULL)
);
CREATE INDEX subnets_network ON subnets (network_id);
CREATE INDEX subnets_pool ON subnets (subnetpool_id);

CREATE TABLE ip_allocations (
    subnet_id uuid NOT NULL REFERENCES subnets (id) ON DELETE RESTRICT,
    ip_address inet NOT NULL,
    port_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);

CREATE TABLE rbac_policies (
    id uuid PRIMARY KEY,
    object_type text NOT NULL CHECK (object_type IN ('address_scope', 'subnetpool')),
    object_id uuid NOT NULL,
    project_id text NOT NULL,
    target_project text NOT NULL,
    action text NOT NULL CHECK (action = 'access_as_shared'),
    UNIQUE (object_type, object_id, target_project, action)
);
CREATE INDEX rbac_object ON rbac_policies (object_id);
"""
    )
    execute_script(OUTBOX_DDL)
