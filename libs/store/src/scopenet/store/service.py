"""Lifecycle of a command service backed by Postgres: connect, migrate, serve, relay, probe, stop.

Everything is entered into one ``AsyncExitStack`` (nats micro's example shape), so a failure at
any step unwinds what was started, and SIGTERM/SIGINT stop the service in reverse order: stop
taking requests, finish the ones in flight, stop the relay, close NATS and Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from scopenet.bus.connection import connect_nats
from scopenet.bus.jetstream import ensure_stream, events_stream_config
from scopenet.bus.micro import CommandServer, Route, serve
from scopenet.contracts.errors import TransientError
from scopenet.runtime.health import HealthServer
from scopenet.store import migrate
from scopenet.store.db import create_pool
from scopenet.store.outbox import OutboxRelay
from scopenet.store.settings import StoreSettings


@dataclass
class Running:
    nc: NATS
    js: JetStreamContext
    db: asyncpg.Pool
    server: CommandServer | None
    relay: OutboxRelay
    health: HealthServer


@contextlib.asynccontextmanager
async def running(
    settings: StoreSettings,
    *,
    name: str,
    version: str,
    description: str,
    schema: str,
    migrations: Path,
    make_routes: Callable[[asyncpg.Pool], Sequence[Route]],
    database_url: str,
    nats_url: str,
) -> AsyncIterator[Running]:
    log = structlog.get_logger("runtime").bind(service=name)
    async with contextlib.AsyncExitStack() as stack:
        # Infrastructure may still be starting (compose, Kubernetes): wait, within reason.
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((TransientError, OSError)),
            wait=wait_exponential(max=2),
            stop=stop_after_delay(60),
            reraise=True,
        ):
            with attempt:
                role = await migrate.upgrade(url=database_url, schema=schema, script_location=migrations)
                db = await create_pool(database_url, schema=schema, size=settings.db_pool_size, role=role)
        stack.push_async_callback(db.close)
        nc = await connect_nats(nats_url, name=name)
        stack.push_async_callback(nc.drain)
        js = nc.jetstream()
        await ensure_stream(js, events_stream_config(), replicas=settings.stream_replicas)

        relay = OutboxRelay(db, js, schema=schema, batch=settings.outbox_batch, poll=settings.outbox_poll)
        relay_task = asyncio.create_task(relay.run(), name=f"{name}-outbox")

        async def stop_relay() -> None:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task

        stack.push_async_callback(stop_relay)

        routes = make_routes(db)
        server = await serve(
            nc, name=name, version=version, description=description, routes=routes, limit=settings.max_concurrency
        )
        stack.push_async_callback(server.stop)

        async def nats_ok() -> bool:
            return bool(nc.is_connected)

        async def db_ok() -> bool:
            return bool(await db.fetchval("SELECT 1") == 1)

        async def relay_ok() -> bool:
            return not relay_task.done()

        health = HealthServer({"nats": nats_ok, "database": db_ok, "outbox_relay": relay_ok})
        port = await health.start(settings.health_host, settings.health_port)
        stack.push_async_callback(health.stop)
        # Everything allocated so far lives as long as the process: keep the collector off it, and
        # collect the young generation less often (a full pass over a busy heap stalls every request).
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        log.info("service_ready", health_port=port, endpoints=len(routes))
        yield Running(nc=nc, js=js, db=db, server=server, relay=relay, health=health)
        log.info("service_stopping")
