"""Group commit for the steps of topology's create sagas (IPAM's ``Batcher``, one step at a time).

Concurrency model: each saga step (insert rows ``allocating``, call IPAM, activate the rows) has
``workers`` workers (one for a database step, so its batches never wait on each other's row locks);
requests queue behind them and a free worker takes everything queued (up to ``max_batch``) as one
batch: one transaction, one IPAM message, one commit for all of them. While one batch is at IPAM
the next one is being inserted, so the steps pipeline; with one client a batch is one request. The
IPAM step has two workers: while one batch's reply travels back, IPAM already decides the next.
Every request still gets its own saga: its own row, its own compensation, its own reply.

A step whose batch fails as a whole (a constraint one row trips, a deadlock) with ``isolate`` set
runs each request of it alone, so one bad request fails only itself; this is safe because a batch
commits nothing unless it succeeds. A step whose failure is not about one request (IPAM did not
answer) has ``isolate`` off: the whole batch fails together, without retrying each request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from scopenet.contracts.errors import TransientError

Req = TypeVar("Req")


@dataclass
class Item(Generic[Req]):
    request: Req
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

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


class Step:
    """One saga step, group-committed. ``run(items)`` answers every item (``resolve``/``fail``)."""

    def __init__(
        self, run: RunBatch, *, name: str, max_batch: int = 64, isolate: bool = True, workers: int = 1
    ) -> None:
        self._run = run
        self.name = name
        self._max = max_batch
        self._isolate = isolate
        self._queue: list[Item[Any]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self._most = workers

    async def submit(self, request: Any) -> Any:
        item: Item[Any] = Item(request)
        self._queue.append(item)
        self._staff()
        return await item.future

    def _staff(self) -> None:
        if self._queue and len(self._workers) < self._most:
            task = asyncio.create_task(self._work(), name=f"topology-step-{self.name}")
            self._workers.add(task)
            task.add_done_callback(self._left)

    def _left(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        self._staff()  # requests that arrived while it was leaving

    async def _work(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
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
