"""Group commit per allocation domain (a pool for prefixes, a subnet for addresses).

Concurrency model: allocations from one pool must be decided one after another (best fit depends
on every earlier allocation), so per key there is at most one worker. Requests queue up behind
it; the worker takes everything queued (up to ``max_batch``) and decides the whole batch inside
one transaction that holds the pool's row lock, then commits once. Under load, 32 waiting
requests cost one lock, one commit and a few round trips instead of 32 of each; with one request
it is an ordinary transaction. Other replicas are serialised by the row lock.

If a batch's transaction fails as a whole (a lost connection, a constraint the in-memory view did
not foresee), every request of it is retried alone, so one bad request never fails its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from scopenet.contracts.errors import TransientError

Req = TypeVar("Req")


@dataclass
class Item(Generic[Req]):
    request: Req
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def resolve(self, value: Any) -> None:
        if not self.future.done():
            self.future.set_result(value)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


RunBatch = Callable[[Hashable, list[Item[Any]]], Awaitable[None]]


class Batcher:
    def __init__(self, run_batch: RunBatch, *, max_batch: int = 64) -> None:
        self._run = run_batch
        self._max = max_batch
        self._queues: dict[Hashable, list[Item[Any]]] = {}
        self._workers: dict[Hashable, asyncio.Task[None]] = {}

    async def submit(self, key: Hashable, request: Any) -> Any:
        item: Item[Any] = Item(request)
        self._queues.setdefault(key, []).append(item)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key))
        return await item.future

    async def _work(self, key: Hashable) -> None:
        try:
            while queue := self._queues.get(key):
                batch, self._queues[key] = queue[: self._max], queue[self._max :]
                await self._decide(key, batch)
        finally:
            self._workers.pop(key, None)
            if self._queues.get(key):  # requests arrived while we were leaving
                self._workers[key] = asyncio.create_task(self._work(key))
            else:
                self._queues.pop(key, None)

    async def _decide(self, key: Hashable, batch: list[Item[Any]]) -> None:
        try:
            await self._run(key, batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].fail(exc)
            else:
                for item in batch:  # isolate the culprit
                    try:
                        await self._run(key, [item])
                    except Exception as one:
                        item.fail(one)
        except BaseException:
            for item in batch:
                item.fail(TransientError("service is shutting down"))
            raise
        finally:
            for item in batch:  # a no-op for every item that was answered
                item.fail(RuntimeError("allocation was not decided"))
