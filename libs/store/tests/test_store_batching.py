"""Group commit without a database: batches form while a worker is busy, and a bad request fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from scopenet.store.batching import Batcher, Item, Step


async def test_requests_waiting_behind_a_batch_form_the_next_batch() -> None:
    batches: list[list[int]] = []

    async def run(items: list[Item[int]]) -> None:
        batches.append([it.request for it in items])
        await asyncio.sleep(0.01)
        for it in items:
            it.resolve(it.request * 10)

    step = Step(run, name="t")
    got = await asyncio.gather(*(step.submit(i) for i in range(5)))
    assert got == [0, 10, 20, 30, 40]
    assert batches == [[0, 1, 2, 3, 4]]
    assert step.idle


async def test_a_failed_batch_is_retried_request_by_request_when_isolated() -> None:
    async def run(items: list[Item[int]]) -> None:
        if any(it.request == 2 for it in items):
            raise ValueError("bad request 2")
        for it in items:
            it.resolve(it.request)

    step = Step(run, name="t")
    got = await asyncio.gather(*(step.submit(i) for i in range(4)), return_exceptions=True)
    assert got[:2] == [0, 1] and got[3] == 3
    assert isinstance(got[2], ValueError)


async def test_without_isolation_the_whole_batch_fails_together() -> None:
    calls = 0

    async def run(items: list[Item[int]]) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("away")

    step = Step(run, name="t", isolate=False)
    got = await asyncio.gather(*(step.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(g, ConnectionError) for g in got) and calls == 1


async def test_an_unanswered_request_fails_instead_of_waiting_forever() -> None:
    async def run(items: list[Item[int]]) -> None:
        pass

    with pytest.raises(RuntimeError, match="not decided"):
        await Step(run, name="t").submit(1)


async def test_keys_are_batched_apart_and_forgotten_when_idle() -> None:
    seen: list[tuple[Hashable, list[str]]] = []

    async def run(key: Hashable, items: list[Item[str]]) -> None:
        seen.append((key, [it.request for it in items]))
        await asyncio.sleep(0.01)
        for it in items:
            it.resolve(f"{key}:{it.request}")

    batcher = Batcher(run, name="t")
    got = await asyncio.gather(batcher.submit("a", "x"), batcher.submit("b", "y"), batcher.submit("a", "z"))
    assert got == ["a:x", "b:y", "a:z"]
    assert sorted(seen) == [("a", ["x", "z"]), ("b", ["y"])]
    await asyncio.sleep(0)
    assert batcher._steps == {}
