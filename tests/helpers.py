"""Helpers every kind of test shares (integration, netns, faults): waiting for a condition."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = 30.0,
    every: float = 0.1,
    what: str = "condition",
    passes: Callable[[Any], bool] = bool,
    tolerate: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll ``check()`` (sync or async) every ``every`` seconds until its value ``passes`` (is
    truthy, by default); that value. An exception of ``tolerate`` counts as not yet; any other
    fails the test at once. Fails with ``what`` when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
        except tolerate:
            pass
        else:
            if passes(value):
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(every)


async def seconds_until(
    check: Callable[[], Any], *, timeout: float = 10.0, every: float = 0.02, what: str = "condition"
) -> float:
    """``eventually``, for a test that measures: the seconds it took (polled finely)."""
    t0 = time.monotonic()
    await eventually(check, timeout=timeout, every=every, what=what)
    return time.monotonic() - t0
