"""Running one service as a process: settings, logging, the service's context, the stop signal.

Every way of starting a service goes through :func:`run_service`: ``python -m
scopenet.services.<name>`` (and the ``scopenet-<name>`` scripts) with URLs from the environment,
and ``scopenet service <name>``, which first finds or starts the infrastructure. Both install
tracing as the ``OTEL_*`` variables ask (``scopenet.runtime.tracing``: nothing unless asked) and
flush the spans still queued when the service stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from scopenet.runtime import log, tracing
from scopenet.runtime.settings import Settings
from scopenet.runtime.signals import until_signalled

#: ``factory(settings, *, database_url, nats_url)``: an async context manager that runs a service
#: until its block exits (each service's ``app.py`` has one).
ServiceFactory = Callable[..., AbstractAsyncContextManager[Any]]


async def serve_until_signalled(
    factory: ServiceFactory, settings: Settings, *, database_url: str, nats_url: str
) -> None:
    try:
        tracing.configure(service=service_name(factory))
    except tracing.TracingConfigError as exc:
        raise SystemExit(f"scopenet: {exc}") from None
    try:
        async with factory(settings, database_url=database_url, nats_url=nats_url):
            await until_signalled()
    finally:
        tracing.shutdown()


def service_name(factory: ServiceFactory) -> str:
    """``ipam`` for ``scopenet.services.ipam.app.ipam_service`` (the resource name of its spans)."""
    parts = factory.__module__.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["scopenet", "services"] else parts[-1]


def run_service(factory: ServiceFactory, settings: Settings, *, needs_database: bool) -> None:
    """Run a service in the foreground on the URLs its settings name (no embedded servers here)."""
    log.configure(level=settings.log_level, fmt=settings.log_format)
    missing = [
        var
        for var, value in (
            ("SCOPENET_NATS_URL", settings.nats_url),
            ("SCOPENET_DATABASE_URL", settings.database_url if needs_database else "-"),
        )
        if not value
    ]
    if missing:
        # `scopenet service <name>` (the umbrella command) can start embedded servers instead.
        raise SystemExit(f"set {' and '.join(missing)} (or run `scopenet service`, which can start them)")
    asyncio.run(
        serve_until_signalled(
            factory, settings, database_url=settings.database_url or "", nats_url=settings.nats_url or ""
        )
    )
