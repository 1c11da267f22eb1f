"""Wiring of the L3 agent: NATS in, kernel out.

What runs, in one ``AsyncExitStack`` (unwound in reverse on SIGTERM or a failed start):

- the datapath check (root, nftables) — one line and exit when the machine cannot run it;
- ``Namespaces`` (the thread that enters namespaces) and ``Kernel(host=agent_host_netns)``;
- the ``Reconciler`` (per-router queues, periodic resync), whose ``on_status`` only hands the
  outcome to the ``StatusReporter`` (topology's ``router_status.report``, retried on 503);
- the ``SpecConsumer`` (durable pull consumer on this agent's RouterSpec subjects);
- the ``Heartbeat`` into the ``scopenet_agents`` KV bucket;
- the ``FenceKeeper``, renewing the kernel lease that keeps this host's routers forwarding (unless
  ``agent_fence = "off"``): a dead, hung or (by default) unheard agent's routers go quiet before
  topology brings up their new copies elsewhere;
- the sync task: once the consumer has read every router's current spec it calls
  ``mark_caught_up()``, sweeps orphans and waits until the reconciler is idle — from then on the
  agent is ready (``/readyz``); probes and metrics on their own port.

The agent holds nothing durable and never uses a database (``database_url`` is accepted for the
common service signature and ignored). Stopping it leaves the kernel as it is: routers keep
forwarding while the agent restarts (for as long as its lease lasts), and the next one adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NATS
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from scopenet.bus.client import BusClient
from scopenet.bus.connection import connect_nats
from scopenet.netlink import Kernel, KernelError, Namespaces, vxlan
from scopenet.netlink import fence as fence_io
from scopenet.runtime import log
from scopenet.runtime.health import HealthServer
from scopenet.services.l3_agent import require_datapath
from scopenet.services.l3_agent.evidence import KernelEvidence
from scopenet.services.l3_agent.fence import FenceKeeper
from scopenet.services.l3_agent.heartbeat import Heartbeat
from scopenet.services.l3_agent.reconciler import Reconciler
from scopenet.services.l3_agent.settings import AgentSettings
from scopenet.services.l3_agent.specs import SpecConsumer
from scopenet.services.l3_agent.status import StatusReporter

NAME = "l3-agent"
VERSION = "0.1.0"

_log = log.get("scopenet.l3_agent")


@dataclass
class Agent:
    """A running agent (what ``l3_agent_service`` yields)."""

    agent_id: str
    nc: NATS
    kernel: Kernel
    reconciler: Reconciler
    consumer: SpecConsumer
    reporter: StatusReporter
    heartbeat: Heartbeat
    health: HealthServer
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the first full pass is done: every router's current spec read and applied."""
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    """``status`` (reports), ``specs`` (consumer), ``heartbeat``: run as long as the agent; ``sync``: once."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Optional parts: ``bgp_speaker`` (a ``SpeakerHost``) when ``agent_bgp`` is on."""


async def _connect(nats_url: str, agent_id: str) -> NATS:
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(Exception),
        wait=wait_exponential(max=2),
        stop=stop_after_delay(60),
        reraise=True,
    ):
        with attempt:
            return await connect_nats(nats_url, name=f"{NAME}-{agent_id}")
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def l3_agent_service(settings: AgentSettings, *, database_url: str = "", nats_url: str) -> AsyncIterator[Agent]:
    """Run the agent until the block exits (the common service signature; no database is used)."""
    del database_url  # the agent keeps no state of its own
    backend = require_datapath()
    agent_id = settings.agent_id
    bound = _log.bind(agent_id=agent_id)
    async with contextlib.AsyncExitStack() as stack:
        namespaces = Namespaces()  # the machine's /run/netns (a test or bench enters a private one first)
        await namespaces.start()
        stack.push_async_callback(namespaces.close)
        kernel = Kernel(namespaces, host=settings.agent_host_netns)
        await kernel.start()
        stack.push_async_callback(kernel.close)
        underlay = vxlan.underlay(settings.vxlan_local_ip, group=settings.vxlan_group, port=settings.vxlan_port)
        if underlay is not None:  # fail fast, as Neutron's linuxbridge agent with a local_ip on no link
            try:
                await vxlan.underlay_link(kernel.host_route(), underlay.local_ip)
            except KernelError as exc:
                raise SystemExit(f"scopenet: {exc}") from None

        nc = await _connect(nats_url, agent_id)
        stack.push_async_callback(_close_nats, nc)
        js = nc.jetstream()

        reporter = StatusReporter(BusClient(nc, timeout=settings.request_timeout), agent_id=agent_id)
        reconciler = Reconciler(
            kernel,
            owner=agent_id,
            resync_interval=settings.agent_resync_interval,
            concurrency=settings.agent_concurrency,
            on_status=reporter,
            underlay=underlay,
        )
        consumer = SpecConsumer(js, reconciler, agent_id=agent_id, connected=lambda: nc.is_connected)
        heartbeat = Heartbeat(
            js,
            agent_id=agent_id,
            host=socket.gethostname(),
            routers=lambda: len(reconciler.routers),
            interval=settings.agent_heartbeat_interval,
        )
        health = HealthServer({})
        agent = Agent(agent_id, nc, kernel, reconciler, consumer, reporter, heartbeat, health)
        fence = None
        if settings.agent_fence != "off":
            fence = FenceKeeper(
                kernel,
                reconciler,
                consumer,
                heartbeat,
                agent.synced,
                interval=settings.agent_heartbeat_interval,
                mode=settings.agent_fence,
            )
            agent.extra["fence"] = fence
        else:
            await fence_io.remove(kernel)  # a table left with the fence on would cut routers off for good

        await reconciler.start()
        stack.push_async_callback(reconciler.stop)
        kernel_evidence = KernelEvidence(nc, kernel, reconciler, agent_id=agent_id)  # the explainer's rule lookups
        await kernel_evidence.start()
        stack.push_async_callback(kernel_evidence.stop)
        stack.push_async_callback(_stop_reporter, reporter, agent)
        for name, work in (
            ("status", reporter.run()),
            ("specs", consumer.run()),
            ("heartbeat", heartbeat.run()),
            ("sync", _first_sync(agent)),
            *((("fence", fence.run()),) if fence is not None else ()),
        ):
            agent.tasks[name] = asyncio.create_task(work, name=f"l3-agent-{name}")
        stack.push_async_callback(_cancel, [t for n, t in agent.tasks.items() if n != "status"])

        async def nats_ok() -> bool:
            return bool(nc.is_connected)

        async def consumer_ok() -> bool:
            running = not any(t.done() for n, t in agent.tasks.items() if n != "sync")
            return consumer.bound.is_set() and running

        async def synced() -> bool:
            return agent.synced.is_set()

        health.checks.update({"nats": nats_ok, "spec_consumer": consumer_ok, "first_sync": synced})
        if settings.agent_bgp:
            from scopenet.services.l3_agent.bgp.speaker import speaker_host

            speaker = await stack.enter_async_context(
                speaker_host(
                    js,
                    workdir=settings.state_dir / "bgp-speaker" / agent_id,
                    netns=settings.agent_host_netns,
                    agent_id=agent_id,
                )
            )
            agent.extra["bgp_speaker"] = speaker
            health.checks["bgp_speaker"] = speaker.ready
        port = await health.start(settings.health_host, settings.health_port)
        stack.push_async_callback(health.stop)
        bound.info(
            "service_ready",
            health_port=port,
            nft_backend=backend,
            host_netns=settings.agent_host_netns or "(own)",
            vxlan_local_ip=underlay.local_ip if underlay else None,
            resync_interval=settings.agent_resync_interval,
        )
        yield agent
        bound.info("service_stopping", routers=len(reconciler.routers))


async def _first_sync(agent: Agent) -> None:
    """Caught up with the stream → sweep orphans → reconciler idle: the agent is ready."""
    t0 = time.monotonic()
    await agent.consumer.caught_up.wait()
    agent.reconciler.mark_caught_up()
    await agent.reconciler.sweep()
    await agent.reconciler.wait_idle()
    # What the first pass built (every router's handles and state) lives as long as the process:
    # keep the collector off it, and collect the young generation less often (as the command
    # services do) — a full collection over it would stall the loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    agent.synced.set()
    _log.info(
        "first_sync_done",
        agent_id=agent.agent_id,
        routers=len(agent.reconciler.routers),
        seconds=round(time.monotonic() - t0, 3),
    )


async def _stop_reporter(reporter: StatusReporter, agent: Agent) -> None:
    """Give the last statuses a moment to reach topology, then stop sending."""
    await reporter.drained(1.0)
    await _cancel([agent.tasks["status"]])


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _close_nats(nc: NATS) -> None:
    # Not drain(): a cancelled fetch may hold messages nobody will take. Flush acks, then close.
    with contextlib.suppress(Exception):
        await nc.flush(timeout=1)
    await nc.close()
