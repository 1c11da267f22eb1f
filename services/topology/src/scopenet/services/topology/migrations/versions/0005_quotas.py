"""Per-project quotas (``scopenet.store.quotas``): the limits of networks, subnets, ports, routers,
floating IPs and network RBAC entries, and indexes that keep counting a project's rows cheap.

Revision ID: 0005
Revises: 0004
"""

from scopenet.store.migrate import execute_script
from scopenet.store.quotas import DDL

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    execute_script(
        DDL
        + """
CREATE INDEX networks_project ON networks (project_id);
CREATE INDEX subnets_project ON subnets (project_id);
CREATE INDEX ports_project ON ports (project_id);
CREATE INDEX routers_project ON routers (project_id);
CREATE INDEX floatingips_project ON floatingips (project_id);
CREATE INDEX network_rbac_project ON network_rbac (project_id);
"""
    )
