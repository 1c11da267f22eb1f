"""Per-project quotas (``scopenet.store.quotas``): the limits of subnet pools, address scopes and
RBAC entries, and indexes that keep counting a project's rows cheap.

Revision ID: 0004
Revises: 0003
"""

from scopenet.store.migrate import execute_script
from scopenet.store.quotas import DDL

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    execute_script(
        DDL
        + """
CREATE INDEX subnetpools_project ON subnetpools (project_id);
CREATE INDEX address_scopes_project ON address_scopes (project_id);
CREATE INDEX rbac_policies_project ON rbac_policies (project_id);
"""
    )
