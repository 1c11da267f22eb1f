"""Outages: a port rolled back before it ever existed is told apart, and unpublishable events are parked.

``ports.abandoned``: set when a create is rolled back (``portsaga.abandon``), so dropping the row
later (at once, or by the reconciler after an outage) publishes no ``port.deleted`` for a port
nobody ever saw created. ``outbox_dead``: events JetStream can never take (``bus/outbox.py``).

Revision ID: 0003
Revises: 0002
"""

from scopenet.store.outbox import OUTBOX_DEAD_DDL
from scopenet.store.migrate import execute_script

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    execute_script("ALTER TABLE ports ADD COLUMN abandoned boolean NOT NULL DEFAULT false;")
    execute_script(OUTBOX_DEAD_DDL)
