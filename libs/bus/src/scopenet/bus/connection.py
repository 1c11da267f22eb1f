"""One NATS connection per process, with the reconnect and liveness settings every service shares."""

from __future__ import annotations

import structlog
from nats.aio.client import Client as NATS

from scopenet.bus.natsauth import inbox_prefix


async def connect_nats(url: str, *, name: str) -> NATS:
    log = structlog.get_logger("runtime").bind(service=name)
    nc = NATS()

    async def disconnected() -> None:
        # A drain on shutdown disconnects too; only an unexpected loss is worth a warning.
        if nc.is_draining or nc.is_closed:
            log.debug("nats_closed")
        else:
            log.warning("nats_disconnected")

    async def reconnected() -> None:
        log.info("nats_reconnected")

    async def error(exc: Exception) -> None:
        log.warning("nats_error", error=str(exc) or type(exc).__name__)

    await nc.connect(
        url,
        name=f"scopenet-{name}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # nats-py sleeps this long; a float works
        # A silent partition (no FIN, no RST) is noticed after two unanswered pings: ~10 s, not the
        # default 4 minutes — agents and topology judge liveness on that time scale.
        ping_interval=5,
        max_outstanding_pings=2,
        inbox_prefix=inbox_prefix(url),  # replies on the user's own inbox (see contracts/permissions.py)
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )
    return nc
