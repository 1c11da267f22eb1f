"""Supervision: background work that outlives its failures, written once.

A service's background work fails for reasons that pass (NATS restarting, Postgres away, a stream
that its owner has not created yet). None of it may stop for good on such a failure, nor take the
service down: it logs, waits and goes on. Three shapes cover every loop in scopenet:

- :func:`retry` calls an operation until it succeeds (with a fixed or doubling delay) and returns
  its result: connect, bind a consumer, fill a mirror, publish a batch;
- :func:`supervise` runs a long-lived coroutine and starts it again whenever it fails, for as long
  as the service lives (``retry`` of the whole task);
- :func:`every` runs one step each interval; a failed step is logged and the next one runs on time.

The retrying is tenacity's (``AsyncRetrying``): cancellation (``asyncio.CancelledError``, a
``BaseException``) is never retried, so stopping a service stops its loops at once. Each caller
keeps its own structlog event name and context, so logs and alerts read as before.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential, wait_fixed

T = TypeVar("T")

Log = Any
"""A structlog (bound) logger: anything with ``warning``/``info``/``debug``/``exception`` methods."""


def describe(exc: BaseException | None) -> str:
    """An exception in one short string for a log line (its message, else its type)."""
    if exc is None:
        return ""
    return str(exc) or type(exc).__name__


async def retry(
    op: Callable[[], Awaitable[T]],
    *,
    log: Log,
    event: str,
    delay: float = 1.0,
    max_delay: float | None = None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    level: str = "warning",
    repeat_level: str | None = None,
    recovered: str | None = None,
    **context: Any,
) -> T:
    """Await ``op()`` until it returns, and return what it returned.

    After a failure (an exception of ``retry_on``; anything else propagates) ``event`` is logged at
    ``level`` with ``error`` and ``context``, then the next attempt waits ``delay`` seconds — or,
    with ``max_delay``, ``delay`` doubled after each failure up to ``max_delay``. ``repeat_level``
    logs the second and later failures of one outage at another level (say an outage once, not
    every attempt). ``recovered``, when given, is logged (info, with ``failed_attempts``) when an
    attempt succeeds after failures.
    """
    wait = wait_fixed(delay) if max_delay is None else wait_exponential(multiplier=delay, max=max_delay)

    def failed(state: RetryCallState) -> None:
        first = state.attempt_number == 1
        name = level if first or repeat_level is None else repeat_level
        exc = state.outcome.exception() if state.outcome is not None else None
        getattr(log, name)(event, error=describe(exc), **context)

    attempts = 0
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(retry_on), wait=wait, before_sleep=failed, reraise=True
    ):
        attempts = attempt.retry_state.attempt_number
        with attempt:
            result = await op()
    if recovered is not None and attempts > 1:
        log.info(recovered, failed_attempts=attempts - 1, **context)
    return result


async def supervise(
    run: Callable[[], Awaitable[Any]], *, name: str, log: Log, delay: float = 1.0, event: str = "background_task_failed"
) -> None:
    """Run ``run()`` for as long as the service lives: when it fails (a JetStream call made while
    NATS was away, say), log ``event`` and start it again after ``delay`` seconds, rather than leave
    the service running without it. Returns when ``run()`` returns."""
    await retry(run, log=log, event=event, delay=delay, task=name, restart_in=delay)


async def every(
    interval: float | Callable[[], Awaitable[Any]],
    step: Callable[[], Awaitable[Any]],
    *,
    log: Log,
    event: str,
    first: bool = False,
    traceback: bool = False,
) -> None:
    """Run ``step()`` every ``interval`` seconds, forever (cancel the task to stop it).

    The first step runs after one interval, or at once with ``first``. A failed step is logged as
    ``event`` (with its traceback when ``traceback``, else its message as ``error``) and the next
    runs on time. ``interval`` may instead be a coroutine function that does the pausing (one that
    ends early when there is a reason to step sooner).
    """
    pause = interval if callable(interval) else functools.partial(asyncio.sleep, interval)
    if first:
        await _step(step, log=log, event=event, traceback=traceback)
    while True:
        await pause()
        await _step(step, log=log, event=event, traceback=traceback)


async def _step(step: Callable[[], Awaitable[Any]], *, log: Log, event: str, traceback: bool) -> None:
    try:
        await step()
    except Exception as exc:
        if traceback:
            log.exception(event)
        else:
            log.warning(event, error=describe(exc))
