"""``next_batch``: a message published while a consumer waits is handed over at once, bursts come in
batches.

Why it exists (``scopenet.bus.pull``): with nats-py's ``fetch(batch, timeout)`` a message could be
handed over only when the server ended an earlier pull request, up to five seconds later; a pool's
re-scope then took 1.4-4 s to reach the kernel. That stall needs the agent's exact rhythm of
requests to show, so the whole-stack test (``tests/netns/test_stack_seed.py``, flip within a second)
is its regression test; these tests hold ``next_batch`` to its own promise.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from scopenet.bus.pull import next_batch

#: Far below the five seconds a stalled pull took, far above what a loaded machine adds.
PROMPT = 1.5


async def test_an_idle_consumer_gets_each_message_at_once(nats_client: Any) -> None:
    js = nats_client.jetstream()
    name = f"PULL_{uuid.uuid4().hex[:8]}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    try:
        sub = await js.pull_subscribe(
            f"{name}.>", durable="d", stream=name, config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
        )
        # An idle consumer's pulls time out now and then, and the server may still hold such a pull
        # (it ends at its own expiry): that is when the stall showed.
        for _ in range(2):
            try:
                await next_batch(sub, 256, timeout=0.5)
            except TimeoutError:
                pass
        # Each message is published while the consumer waits (idle for 0.3 s up to 2 s first).
        for idle in (0.3, 1.0, 2.0, 0.3, 0.6):
            pulled = asyncio.create_task(next_batch(sub, 256, timeout=2.5))
            await asyncio.sleep(idle)
            sent = time.monotonic()
            await js.publish(f"{name}.x", b"x")
            msgs = await pulled
            late = time.monotonic() - sent
            assert [m.data for m in msgs] == [b"x"]
            assert late < PROMPT, f"published after {idle} s idle, handed over {late:.2f} s later"
            await msgs[0].ack()
    finally:
        await js.delete_stream(name)


async def test_a_burst_comes_in_batches_in_order(nats_client: Any) -> None:
    js = nats_client.jetstream()
    name = f"PULL_{uuid.uuid4().hex[:8]}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    try:
        sub = await js.pull_subscribe(
            f"{name}.>", durable="d", stream=name, config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
        )
        for i in range(600):
            await js.publish(f"{name}.x", str(i).encode())
        got: list[int] = []
        calls = 0
        while len(got) < 600:
            msgs = await next_batch(sub, 256, timeout=5)
            calls += 1
            assert len(msgs) <= 256
            for m in msgs:
                got.append(int(m.data))
                await m.ack()
        assert got == list(range(600))
        assert calls <= 4, f"{calls} pulls for 600 waiting messages in batches of 256"
        # Nothing left: the next call waits, and says so when its time is up.
        started = time.monotonic()
        try:
            extra = await next_batch(sub, 256, timeout=0.5)
        except TimeoutError:
            extra = []
        assert extra == [] and time.monotonic() - started < 0.5 + PROMPT
    finally:
        await js.delete_stream(name)
