"""Extra routes on routers, and port forwarding on floating IPs.

Extra routes stay in ``routers.routes`` (jsonb, since 0001): a router's routes are read and written
as one set under the router row's lock (``extraroute-atomic`` merges under it), so a table of their
own would add a join to every router read and no guarantee the lock does not give. What the
database adds is a shape check: always a JSON array.

Port forwardings are rows of their own, going with their floating IP or internal port (``ON DELETE
CASCADE``, Neutron's semantics). Two exclusion constraints are the last word on conflicts, however
many requests race: no two forwardings of one floating IP and protocol share an external port, and
no two of one internal port, address and protocol share an internal port (ranges included). GiST
has no ``=`` for uuid without ``btree_gist`` (absent from the embedded Postgres), so each uuid is
compared as its two 64-bit halves, each a one-value ``int8range`` (``&&`` on those is equality),
as the IPAM schema does with its scope keys.

Revision ID: 0006
Revises: 0005
"""

from scopenet.store.migrate import execute_script

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    # extra routes: the jsonb column stays; only its shape is checked, so a bad write fails here
    execute_script(
        """
ALTER TABLE routers ADD CONSTRAINT routers_routes_is_array CHECK (jsonb_typeof(routes) = 'array');
"""
    )

    # port forwarding: exclusion constraints decide racing creates, which no check in the code can
    execute_script(
        """
CREATE FUNCTION uuid_half(id uuid, half int) RETURNS int8range LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT int8range(v, v, '[]') FROM (
        SELECT ('x' || substr(replace(id::text, '-', ''), half * 16 + 1, 16))::bit(64)::bigint AS v) h
$$;
CREATE FUNCTION protocol_key(protocol text) RETURNS int4range LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT int4range(k, k, '[]') FROM (SELECT CASE protocol
        WHEN 'tcp' THEN 6 WHEN 'udp' THEN 17 WHEN 'dccp' THEN 33 WHEN 'sctp' THEN 132 END AS k) p
$$;
CREATE TABLE port_forwardings (
    id uuid PRIMARY KEY,
    project_id text NOT NULL,
    floatingip_id uuid NOT NULL REFERENCES floatingips (id) ON DELETE CASCADE,
    internal_port_id uuid NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    protocol text NOT NULL CHECK (protocol IN ('tcp', 'udp', 'sctp', 'dccp')),
    internal_ip_address inet NOT NULL CHECK (family(internal_ip_address) = 4 AND masklen(internal_ip_address) = 32),
    external_port_start integer NOT NULL,
    external_port_end integer NOT NULL,
    internal_port_start integer NOT NULL,
    internal_port_end integer NOT NULL,
    description text NOT NULL DEFAULT '',
    revision_number integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (1 <= external_port_start AND external_port_start <= external_port_end AND external_port_end <= 65535),
    CHECK (1 <= internal_port_start AND internal_port_start <= internal_port_end AND internal_port_end <= 65535),
    -- N to N, or N to 1
    CHECK (internal_port_start = internal_port_end
           OR internal_port_end - internal_port_start = external_port_end - external_port_start),
    CONSTRAINT port_forwardings_external_overlap EXCLUDE USING gist (
        uuid_half(floatingip_id, 0) WITH &&, uuid_half(floatingip_id, 1) WITH &&,
        protocol_key(protocol) WITH &&,
        int4range(external_port_start, external_port_end, '[]') WITH &&),
    CONSTRAINT port_forwardings_internal_overlap EXCLUDE USING gist (
        uuid_half(internal_port_id, 0) WITH &&, uuid_half(internal_port_id, 1) WITH &&,
        protocol_key(protocol) WITH &&,
        internal_ip_address inet_ops WITH &&,
        int4range(internal_port_start, internal_port_end, '[]') WITH &&)
);
CREATE INDEX port_forwardings_fip ON port_forwardings (floatingip_id);
CREATE INDEX port_forwardings_port ON port_forwardings (internal_port_id);
"""
    )
