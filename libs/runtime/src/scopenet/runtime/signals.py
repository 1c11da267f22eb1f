"""Waiting for the operator's stop (SIGINT/SIGTERM) without installing a handler per service."""

from __future__ import annotations

import asyncio
import signal


async def until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
