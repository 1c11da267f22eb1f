"""``outbox_dead``: events JetStream can never take, parked instead of blocking the relay (``bus/outbox.py``).

Revision ID: 0002
Revises: 0001
"""

from scopenet.store.outbox import OUTBOX_DEAD_DDL
from scopenet.store.migrate import execute_script

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    execute_script(OUTBOX_DEAD_DDL)
