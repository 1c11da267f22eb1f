"""Wiring of the topology service.

Besides the command service the runtime provides (migrations, pool, outbox relay, nats.micro,
probes), topology runs: the IPAM mirror (fill, then two event consumers), a consumer of IPAM's
subnet updates (the repair path of onboarding), the max-deliveries watcher (messages nobody
acknowledged → dead letters), the agent heartbeat watcher and the scheduler, and the reconciler.
It talks to IPAM, JetStream consumers and the KV bucket over a NATS connection of its own, opened
(with the streams it needs) before the command endpoints start, so no command can run before its
dependencies exist.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from scopenet.bus import advisories
from scopenet.bus.client import BusClient
from scopenet.bus.connection import connect_nats
from scopenet.bus.deadletter import ensure_dlq
from scopenet.bus.jetstream import DUPLICATE_WINDOW, ensure_stream, events_stream_config
from scopenet.bus.micro import Route
from scopenet.contracts import bgp as bgp_contracts
from scopenet.contracts import routerspec as rs
from scopenet.contracts.subjects import EVENTS_STREAM
from scopenet.runtime.supervise import supervise
from scopenet.services.topology.consumers import event_consumer
from scopenet.services.topology.context import Deps
from scopenet.services.topology.handlers import build, routes
from scopenet.services.topology.ipam_client import IpamClient
from scopenet.services.topology.reachability.service import KERNEL_TIMEOUT
from scopenet.services.topology.reconciler.service import Reconciler
from scopenet.services.topology.scopes.service import Mirror
from scopenet.services.topology.settings import TopologySettings
from scopenet.services.topology.subnets.onboard import Onboarding
from scopenet.store.service import Running, running

NAME = "topology"
VERSION = "0.1.0"
SCHEMA = "topology"
MIGRATIONS = Path(__file__).parent / "migrations"

log = structlog.get_logger("topology")


def routers_stream_config() -> StreamConfig:
    """The desired state of every router: the last spec per router subject, nothing older."""
    return StreamConfig(
        name=rs.ROUTERS_STREAM,
        subjects=["scopenet.v1.agent.*.router.*"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_msgs_per_subject=1,
        duplicate_window=DUPLICATE_WINDOW,
    )


def bgp_stream_config() -> StreamConfig:
    """The desired state of every BGP speaker: the last BgpSpeakerSpec per speaker subject."""
    return StreamConfig(
        name=bgp_contracts.BGP_STREAM,
        subjects=[bgp_contracts.BGP_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_msgs_per_subject=1,
        duplicate_window=DUPLICATE_WINDOW,
    )


@dataclass
class TopologyRunning(Running):
    """A running topology service, with its wiring (tests and tools reach the resource services)."""

    deps: Deps


@asynccontextmanager
async def topology_service(
    settings: TopologySettings, *, database_url: str, nats_url: str
) -> AsyncIterator[TopologyRunning]:
    nc = await connect_nats(nats_url, name=f"{NAME}-client")
    tasks: list[asyncio.Task[Any]] = []
    try:
        js = nc.jetstream()
        for config in (events_stream_config(), routers_stream_config(), bgp_stream_config()):
            await ensure_stream(js, config, replicas=settings.stream_replicas)
        await ensure_dlq(js, replicas=settings.stream_replicas)
        await ensure_stream(js, advisories.advisories_stream_config([EVENTS_STREAM]), replicas=settings.stream_replicas)
        holder: dict[str, Deps] = {}

        def make_routes(db: asyncpg.Pool) -> list[Route]:
            ipam = IpamClient(BusClient(nc, timeout=settings.ipam_timeout))
            holder["deps"] = build(db, ipam, settings, agent_bus=BusClient(nc, timeout=KERNEL_TIMEOUT))
            return routes(holder["deps"])

        async with running(
            settings,
            name=NAME,
            version=VERSION,
            schema=SCHEMA,
            migrations=MIGRATIONS,
            description="scopenet topology: networks, subnets, ports, routers, floating IPs, RouterSpecs",
            make_routes=make_routes,
            database_url=database_url,
            nats_url=nats_url,
        ) as svc:
            deps = holder["deps"]
            mirror = Mirror(deps)
            backoff = settings.event_backoff
            consumers = [
                event_consumer(
                    js,
                    durable="topology-subnetpools",
                    subject="scopenet.v1.evt.subnetpool.*",
                    handler=mirror.on_pool,
                    backoff=backoff,
                ),
                event_consumer(
                    js,
                    durable="topology-address-scopes",
                    subject="scopenet.v1.evt.address_scope.*",
                    handler=mirror.on_scope,
                    backoff=backoff,
                ),
                # The repair path of subnet onboarding (subnets/onboard.py): IPAM's subnet updates.
                event_consumer(
                    js,
                    durable="topology-subnets",
                    subject="scopenet.v1.evt.subnet.updated",
                    handler=Onboarding(deps).on_subnet_event,
                    backoff=backoff,
                ),
            ]
            # Messages of SCOPENET_EVENTS no delivery acknowledged (hung, crashed): to the dead letters.
            exhausted = advisories.watcher(
                js,
                durable="topology-max-deliveries",
                backoff=backoff,
                log=log.bind(consumer="topology-max-deliveries"),
                service=NAME,
            )
            agents = deps.agents
            reconciler = Reconciler(deps)
            deps.reconciler = reconciler
            deps.mirror = mirror

            async def start_consumers() -> None:
                for c in consumers:  # bound before the fill: no event after it goes unread
                    await c.bind()
                await mirror.fill()
                async with asyncio.TaskGroup() as group:  # one fails: both stop, and both start again
                    for c in consumers:
                        group.create_task(c.run())

            tasks += [
                asyncio.create_task(supervise(start_consumers, name="consumers", log=log), name="topology-consumers"),
                asyncio.create_task(
                    supervise(exhausted.run, name="max-deliveries", log=log), name="topology-max-deliveries"
                ),
                asyncio.create_task(
                    supervise(lambda: agents.watch(js), name="agents-watch", log=log), name="topology-agents-watch"
                ),
                asyncio.create_task(
                    supervise(lambda: agents.run_scheduler(lambda: nc.is_connected), name="scheduler", log=log),
                    name="topology-scheduler",
                ),
                asyncio.create_task(supervise(reconciler.run, name="reconciler", log=log), name="topology-reconciler"),
            ]

            async def consumers_ok() -> bool:
                bound = all(c.bound.is_set() for c in [*consumers, exhausted])
                return bound and not any(t.done() for t in tasks)

            svc.health.checks["consumers"] = consumers_ok
            try:
                yield TopologyRunning(**vars(svc), deps=deps)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
    finally:
        # Not drain(): a cancelled watcher's or consumer's subscription may hold messages nobody will
        # take, and drain would wait its full timeout for them. Flush what we sent (acks), then close.
        with contextlib.suppress(Exception):
            await nc.flush(timeout=1)
        await nc.close()
