"""Read-your-writes across services: the command that waits for topology to have seen IPAM's write.

Topology shows things it derives from IPAM's pools (a network's ``ipv4_address_scope`` and
``ipv6_address_scope``, the scopes in RouterSpecs) from a mirror that IPAM's events feed, so for a
few milliseconds after IPAM answers a pool update topology still shows the pool's old scope.
A writer that wants its next read to reflect its write sends ``topology.mirror.wait`` with the
revision IPAM's reply carries; topology answers as soon as its mirror holds that revision or a
newer one, or when ``timeout`` runs out (``caught_up=false``: the write stands, reads may lag).
The HTTP API does it for every pool update that names ``address_scope_id`` (docs/consistency.md).
"""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from pydantic import Field

from scopenet.contracts.base import Command, Contract

MAX_WAIT = 10.0
"""The longest a wait may be asked to last (seconds): below every caller's request timeout."""

WAIT_SHARE = 0.8
"""The share of a caller's request timeout a wait may use: the wait is itself a request, and its
answer needs room to arrive before the caller gives up on it."""


def moves_scope(pool_fields: Collection[str]) -> bool:
    """Whether a subnet pool update with these fields needs the wait: one naming
    ``address_scope_id`` changes the scope of the networks topology derives from the pool."""
    return "address_scope_id" in pool_fields


def wait_budget(wanted: float, request_timeout: float) -> float:
    """Seconds a writer waits for topology at most: ``wanted``, bounded by its request timeout."""
    return min(wanted, request_timeout * WAIT_SHARE)


class PoolRevision(Contract):
    """A subnet pool as IPAM's reply to a write described it."""

    id: UUID
    revision_number: int = Field(ge=0)


class MirrorWait(Command):
    """Answer once topology's mirror holds each pool at this revision or a newer one."""

    subnetpools: list[PoolRevision] = Field(min_length=1, max_length=100)
    timeout: float = Field(default=2.0, gt=0, le=MAX_WAIT)
    """Seconds to wait at most; then the answer is ``caught_up=false``."""


class MirrorWaitReply(Contract):
    caught_up: bool
    """True: every read topology serves from now on reflects those pool revisions."""
    waited: float = Field(ge=0)
    """Seconds topology waited for its mirror."""
