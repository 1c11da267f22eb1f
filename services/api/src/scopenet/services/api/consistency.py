"""Read-your-writes across services: after IPAM answers a pool update that may move the pool to
another address scope, wait (bounded) until topology's mirror holds the pool's new revision, so
the networks the API shows next carry the new ``ipv4_address_scope``/``ipv6_address_scope``
(docs/consistency.md).

The wait never turns a write into an error: the write has happened when IPAM answered. If
topology has not caught up within ``timeout`` (slow, or absent: NATS answers "no responders" at
once), the API answers anyway, logs ``read_your_writes_unconfirmed`` and counts it; reads of the
network may then lag until topology reads IPAM's event.
"""

from __future__ import annotations

from typing import Any

import structlog
from prometheus_client import Counter

from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import CallContext
from scopenet.contracts.consistency import wait_budget
from scopenet.contracts.errors import DomainError, TransientError
from scopenet.services.api.gateway import Gateway, has_service

log = structlog.get_logger("api.consistency")

UNCONFIRMED = Counter(
    "scopenet_api_read_your_writes_unconfirmed_total",
    "Writes answered before topology confirmed it reflects them (timed out, or topology unreachable)",
    ["reason"],
)


async def pool_seen_by_topology(gw: Gateway, ctx: CallContext, pool: dict[str, Any], *, timeout: float) -> None:
    """Return once topology's mirror holds ``pool`` (IPAM's reply) at its revision, or ``timeout``
    (0: do not wait) has passed."""
    if timeout <= 0 or not has_service("topology"):
        return
    wanted = [{"id": pool["id"], "revision_number": pool["revision_number"]}]
    # The wait is a request: leave it room to be answered before the gateway gives up on it.
    timeout = wait_budget(timeout, gw.timeout)
    try:
        reply = await gw.call(ep.MIRROR_WAIT, ctx, subnetpools=wanted, timeout=timeout)
    except (TransientError, DomainError) as exc:
        UNCONFIRMED.labels("unavailable").inc()
        log.warning("read_your_writes_unconfirmed", subnetpool_id=pool["id"], reason=exc.message)
        return
    if not reply.caught_up:
        UNCONFIRMED.labels("timeout").inc()
        log.warning("read_your_writes_unconfirmed", subnetpool_id=pool["id"], reason="timeout", timeout=timeout)
