"""The supervision helpers: retried until done, restarted on failure, stepped on time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scopenet.runtime.supervise import every, retry, supervise


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.lines.append((level, event, kw))


async def test_retry_returns_the_first_success_and_says_each_failure_then_the_recovery() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ConnectionError("away")
        return "done"

    log = Recorder()
    got = await retry(
        flaky, log=log, event="x_failed", delay=0.001, repeat_level="debug", recovered="x_recovered", who="me"
    )
    assert got == "done" and calls == 4
    assert [(lvl, ev) for lvl, ev, _ in log.lines] == [
        ("warning", "x_failed"),
        ("debug", "x_failed"),
        ("debug", "x_failed"),
        ("info", "x_recovered"),
    ]
    assert log.lines[0][2] == {"error": "away", "who": "me"}
    assert log.lines[-1][2] == {"failed_attempts": 3, "who": "me"}


async def test_retry_lets_other_errors_through() -> None:
    async def broken() -> None:
        raise KeyError("no")

    with pytest.raises(KeyError):
        await retry(broken, log=Recorder(), event="x", delay=0.001, retry_on=ConnectionError)


async def test_retry_backs_off_doubling_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls < 7:
            raise OSError

    await retry(flaky, log=Recorder(), event="x", delay=0.1, max_delay=2.0)
    assert slept == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0])


async def test_supervise_restarts_a_failed_task_until_it_returns() -> None:
    runs = 0

    async def task() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("boom")

    log = Recorder()
    await supervise(task, name="t", log=log, delay=0.001)
    assert runs == 3
    assert log.lines[0] == ("warning", "background_task_failed", {"error": "boom", "task": "t", "restart_in": 0.001})


async def test_every_logs_a_failed_step_and_keeps_stepping() -> None:
    steps = 0
    done = asyncio.Event()

    async def step() -> None:
        nonlocal steps
        steps += 1
        if steps == 3:
            done.set()
        if steps == 1:
            raise RuntimeError("once")

    log = Recorder()
    task = asyncio.create_task(every(0.001, step, log=log, event="step_failed", first=True))
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log.lines == [("warning", "step_failed", {"error": "once"})]


async def test_cancellation_is_never_retried() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(supervise(forever, name="t", log=Recorder(), delay=0.001))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
