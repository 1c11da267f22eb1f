"""The speaker host: ``BgpSpeakerSpec`` stream in, BIRD configuration out.

An ordered consumer on ``scopenet.v1.bgp.speaker.*`` (``SCOPENET_BGP``, last message per subject)
delivers every speaker's current spec and then each new one; a spec older than the one held is
ignored, ``present=false`` drops the speaker. Changes wake one apply task, which renders the whole
configuration and hands it to BIRD (consecutive changes coalesce into one ``birdc configure``).
The stream is the desired state, so a restarted speaker needs nothing else. Topology creates the
stream; until it exists the consumer retries.

Ready (``/readyz`` of the agent, check ``bgp_speaker``) once every spec present at start has been
applied and while BIRD answers with the configuration last written.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from uuid import UUID

from nats.js.api import DeliverPolicy
from pydantic import ValidationError

from scopenet.bgp.bird import render
from scopenet.contracts.bgp import BGP_STREAM, BGP_SUBJECTS, BgpSpeakerSpec
from scopenet.runtime import log
from scopenet.runtime.supervise import retry
from scopenet.services.l3_agent.bgp.bird import Bird, BirdError

_log = log.get("scopenet.bgp_speaker")


def router_id_for(agent_id: str) -> str:
    """A stable BGP router id per host (BIRD cannot pick one in a namespace without IPv4)."""
    value = zlib.crc32(agent_id.encode()) or 1
    return str(IPv4Address(value))


class SpeakerHost:
    def __init__(self, js: Any, bird: Bird, *, router_id: str) -> None:
        self.js = js
        self.bird = bird
        self.router_id = router_id
        self.specs: dict[UUID, BgpSpeakerSpec] = {}
        self.caught_up = asyncio.Event()
        self.synced = asyncio.Event()
        self.bound = asyncio.Event()
        self.applied_at: dict[UUID, float] = {}
        """Monotonic time each speaker's newest spec reached BIRD (tests measure convergence)."""
        self._dirty = asyncio.Event()
        self._sub: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    def config(self) -> str:
        return render(self.specs.values(), router_id=self.router_id)

    async def _on(self, msg: Any) -> None:
        try:
            spec = BgpSpeakerSpec.model_validate_json(msg.data)
        except ValidationError as exc:
            _log.error("bgp_spec_invalid", subject=msg.subject, error=str(exc)[:300])
            return
        held = self.specs.get(spec.speaker_id)
        if held is None or spec.revision >= held.revision:
            if spec.present:
                self.specs[spec.speaker_id] = spec
            else:
                self.specs.pop(spec.speaker_id, None)
            self._dirty.set()
        with contextlib.suppress(Exception):
            if msg.metadata.num_pending == 0:
                self.caught_up.set()

    async def _subscribe(self) -> None:
        async def subscribe() -> Any:
            info = await self.js.stream_info(BGP_STREAM)
            self._sub = await self.js.subscribe(
                BGP_SUBJECTS,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                cb=self._on,
            )
            return info

        # Until the stream exists (topology creates it) and NATS answers. Info, not warning: at a
        # stack's start the agent usually comes up before topology.
        info = await retry(subscribe, log=_log, event="bgp_stream_waiting", delay=0.1, max_delay=2.0, level="info")
        if info.state.messages == 0:
            self.caught_up.set()
        self.bound.set()

    async def _apply_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            wanted = {sid: s.revision for sid, s in self.specs.items()}
            try:
                await self.bird.configure(self.config())
            except BirdError as exc:
                _log.error("bird_configure_failed", error=str(exc))
                await asyncio.sleep(1.0)
                self._dirty.set()
                continue
            now = time.monotonic()
            for sid in wanted:
                self.applied_at[sid] = now
            _log.info("bgp_applied", speakers=len(wanted), revisions={str(k): v for k, v in wanted.items()})
            if self.caught_up.is_set():
                self.synced.set()

    async def _first_sync(self) -> None:
        await self.caught_up.wait()
        self._dirty.set()

    async def start(self) -> None:
        await self.bird.start(self.config())
        await self._subscribe()
        self._tasks = [
            asyncio.create_task(self._apply_loop(), name="bgp-apply"),
            asyncio.create_task(self._first_sync(), name="bgp-first-sync"),
        ]

    async def ready(self) -> bool:
        running = not any(t.done() for t in self._tasks[:1])
        return self.bound.is_set() and self.synced.is_set() and running and await self.bird.ready()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        await self.bird.stop()


@contextlib.asynccontextmanager
async def speaker_host(js: Any, *, workdir: Path, netns: str | None, agent_id: str) -> AsyncIterator[SpeakerHost]:
    """BIRD in ``netns`` (None: this process's namespace) following the BGP speaker specs."""
    host = SpeakerHost(js, Bird(workdir, netns=netns), router_id=router_id_for(agent_id))
    await host.start()
    try:
        yield host
    finally:
        await host.stop()
