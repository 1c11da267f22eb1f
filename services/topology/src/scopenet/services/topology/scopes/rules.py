"""Pure decisions of the IPAM mirror: did a pool move to another address scope, and which networks'
derived scopes changed with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t


def _event_moves(pool: im.SubnetPool, previous: im.SubnetPool | None) -> bool:
    return previous is not None and previous.address_scope_id != pool.address_scope_id


def may_move(mirrored_scope: UUID | None, pool: im.SubnetPool, previous: im.SubnetPool | None) -> bool:
    """Whether the event may move the pool (then the networks are read before it is applied)."""
    return mirrored_scope != pool.address_scope_id or _event_moves(pool, previous)


def moved(before: Mapping[str, Any] | None, pool: im.SubnetPool, previous: im.SubnetPool | None) -> bool:
    """Whether applying the event moved the pool to another scope: it was not older than what the
    mirror held (``before``: the replaced row) and the scope differs from the mirror's or the
    event's previous state."""
    if before is not None and before["revision_number"] > pool.revision_number:
        return False
    was = before["address_scope_id"] if before is not None else None
    return was != pool.address_scope_id or _event_moves(pool, previous)


def moved_pools(mirrored: Mapping[UUID, UUID | None], pools: Sequence[im.SubnetPool]) -> list[UUID]:
    """Pools IPAM lists in another scope than the mirror holds (a fill after time away)."""
    return [p.id for p in pools if p.id in mirrored and mirrored[p.id] != p.address_scope_id]


def rescoped(before: Mapping[UUID, t.Network], after: Mapping[UUID, t.Network]) -> list[UUID]:
    """Networks whose derived ``ipv4_address_scope``/``ipv6_address_scope`` changed."""
    return [
        i
        for i, view in after.items()
        if (view.ipv4_address_scope, view.ipv6_address_scope)
        != (before[i].ipv4_address_scope, before[i].ipv6_address_scope)
    ]
