"""``subnetpool_history``: every prefix a pool handed out or took back, written by the transaction
that did it (``scopenet.services.ipam.history``), so the history is complete by construction.

Append-only: a trigger refuses UPDATE and DELETE (TRUNCATE too), so no code path can rewrite what
happened. No foreign key to ``subnetpools``: a deleted pool's history stays readable in the database.

Revision ID: 0005
Revises: 0004
"""

from scopenet.store.migrate import execute_script

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    execute_script(
        """
CREATE TABLE subnetpool_history (
    id bigserial PRIMARY KEY,
    subnetpool_id uuid NOT NULL,
    action text NOT NULL
        CHECK (action IN ('allocated', 'released', 'onboarded', 'prefixes_added', 'prefixes_removed')),
    cidr cidr NOT NULL,
    subnet_id uuid,
    network_id uuid,
    project_id text,
    caller_project_id text,
    caller_user_id text,
    request_id text,
    trace_id text,
    event_id uuid,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX subnetpool_history_pool ON subnetpool_history (subnetpool_id, id);

CREATE FUNCTION subnetpool_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'subnetpool_history is append-only';
END $$;
CREATE TRIGGER subnetpool_history_append_only BEFORE UPDATE OR DELETE ON subnetpool_history
    FOR EACH ROW EXECUTE FUNCTION subnetpool_history_append_only();
CREATE TRIGGER subnetpool_history_no_truncate BEFORE TRUNCATE ON subnetpool_history
    FOR EACH STATEMENT EXECUTE FUNCTION subnetpool_history_append_only();
"""
    )
