"""``outbox.headers``: the NATS headers each event is published with (its CloudEvents attributes,
later its trace context), stored with the row so a re-publish carries the same ones (``store/outbox.py``).

Revision ID: 0003
Revises: 0002
"""

from scopenet.store.migrate import execute_script
from scopenet.store.outbox import OUTBOX_HEADERS_DDL

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    execute_script(OUTBOX_HEADERS_DDL)
