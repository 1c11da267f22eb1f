"""Group commit: many waiting requests decided in one transaction, each still answered on its own.

Concurrency model: a ``Step`` has a queue and up to ``workers`` worker tasks. A request queues up
and waits for its answer; a free worker takes everything queued (up to ``max_batch``) as one batch
and runs it (one transaction, one message to another service, one commit for all of them). Under
load, 32 waiting requests cost one lock, one commit and a few round trips instead of 32 of each;
with one client a batch is one request. Workers exist only while there is work.

A ``Batcher`` keeps one one-worker ``Step`` per key (an allocation domain: a pool, a subnet), so the
batches of one key are decided one after another (a best fit depends on every earlier allocation)
while different keys proceed side by side.

A batch that fails as a whole (a lost connection, a constraint one request trips, a deadlock) runs
each of its unanswered requests alone when ``isolate`` is set, so one bad request fails only
itself; this is safe because a batch commits nothing unless it succeeds. A step whose failure is
not about one request (another service did not answer) has ``isolate`` off: the whole batch fails
together. A request the batch function left unanswered fails rather than waits forever; when the
service stops, every waiting request of a running batch fails with a ``TransientError``.

Traces: each batch runs in a span (``batch <step>``) in the trace of its first request, linked to
every other request it decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from scopenet.contracts.errors import TransientError
from scopenet.runtime import tracing

Req = TypeVar("Req")


@dataclass
class Item(Generic[Req]):
    """One queued request and the future its caller waits on."""

    request: Req
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    trace: tracing.Context = field(default_factory=tracing.capture)
    """The submitter's context: its batch's span joins (or links to) the submitter's trace."""

    @property
    def done(self) -> bool:
        return self.future.done()

    def resolve(self, value: Any) -> None:
        if not self.future.done():
            self.future.set_result(value)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


RunBatch = Callable[[list[Item[Any]]], Awaitable[None]]
"""Decides a batch: answers every item (``resolve``/``fail``), or raises for the whole batch."""

RunKeyedBatch = Callable[[Hashable, list[Item[Any]]], Awaitable[None]]


class Step:
    """One group-committed step (see the module docstring)."""

    def __init__(
        self,
        run: RunBatch,
        *,
        name: str,
        max_batch: int = 64,
        isolate: bool = True,
        workers: int = 1,
        on_idle: Callable[[], None] | None = None,
        kind: str | None = None,
    ) -> None:
        """``kind``: the span name's part when ``name`` holds a key (one pool's step), so that spans
        group by step, not by pool."""
        self._run = run
        self.name = name
        self._kind = kind or name
        self._max = max_batch
        self._isolate = isolate
        self._queue: list[Item[Any]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self._most = workers
        self._on_idle = on_idle

    @property
    def idle(self) -> bool:
        return not self._queue and not self._workers

    async def submit(self, request: Any) -> Any:
        item: Item[Any] = Item(request)
        self._queue.append(item)
        self._staff()
        return await item.future

    def _staff(self) -> None:
        if self._queue and len(self._workers) < self._most:
            task = asyncio.create_task(self._work(), name=f"step-{self.name}")
            self._workers.add(task)
            task.add_done_callback(self._left)

    def _left(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        self._staff()  # requests that arrived while it was leaving
        if self.idle and self._on_idle is not None:
            self._on_idle()

    async def _work(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            recording = tracing.recording()
            with tracing.span(
                f"batch {self._kind}",
                context=batch[0].trace,
                links=[link for it in batch[1:] if (link := tracing.link_to(it.trace))] if recording else (),
                attributes={"scopenet.batch.size": len(batch)} if recording else None,
            ):
                await self._decide(batch)

    async def _decide(self, batch: list[Item[Any]]) -> None:
        try:
            await self._run(batch)
        except Exception as exc:
            open_ = [it for it in batch if not it.done]
            if not self._isolate or len(open_) <= 1:
                for item in open_:
                    item.fail(exc)
            else:
                for item in open_:  # isolate the culprit
                    try:
                        await self._run([item])
                    except Exception as one:
                        item.fail(one)
        except BaseException:
            for item in batch:
                item.fail(TransientError("service is shutting down"))
            raise
        finally:
            for item in batch:  # a no-op for every item that was answered
                item.fail(RuntimeError(f"{self.name}: request was not decided"))


class Batcher:
    """One ``Step`` per key, with one worker each: the batches of a key are decided in turn."""

    def __init__(self, run_batch: RunKeyedBatch, *, name: str = "batch", max_batch: int = 64) -> None:
        self._run = run_batch
        self._name = name
        self._max = max_batch
        self._steps: dict[Hashable, Step] = {}

    async def submit(self, key: Hashable, request: Any) -> Any:
        step = self._steps.get(key)
        if step is None:
            step = self._steps[key] = Step(
                lambda items: self._run(key, items),
                name=f"{self._name}-{key}",
                max_batch=self._max,
                on_idle=lambda: self._forget(key),
                kind=self._name,
            )
        return await step.submit(request)

    def _forget(self, key: Hashable) -> None:
        step = self._steps.get(key)
        if step is not None and step.idle:
            del self._steps[key]
