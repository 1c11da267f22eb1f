"""Pulling from a JetStream consumer without stalls: what is there now, else wait for the next one.

nats-py's ``PullSubscription.fetch(batch, timeout)`` asks the server with ``no_wait`` *and*
``expires``. A server of 2.10 or newer treats that request as a lingering pull when nothing is
waiting; when a message then arrives, the server delivers it but ends the request only at
``expires``, and ``fetch`` waits for that end (for the rest of its batch). A spec published one
second into an idle five-second fetch reached its agent four seconds late (seen on nats-server
2.15 with nats-py 2.16: a pool's re-scope took 1.4-4 s to reach the kernel instead of 50 ms).

``next_batch`` never combines the two: it first asks for what is waiting with ``no_wait`` and no
``expires`` (the server answers at once, with the messages and a 404 after them), and only when
nothing was there waits with a batch of one, which ends as soon as one message arrives. Bursts
still come in batches (the next call drains what queued behind the first message).
"""

from __future__ import annotations

import json
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import APIError

#: Statuses that end a pull request: 404 nothing waiting, 408 the request expired. Either may also
#: be left over from an earlier request; stopping early on one only means the next call asks again.
_END = {"404", "408"}


async def next_batch(sub: JetStreamContext.PullSubscription, batch: int, *, timeout: float) -> list[Msg]:
    """Up to ``batch`` messages: those waiting now, else the next one within ``timeout`` seconds
    (raises ``nats.errors.TimeoutError`` when none came)."""
    waiting = await _waiting(sub, batch, timeout=timeout)
    if waiting:
        return waiting
    return await sub.fetch(1, timeout=timeout)


async def _waiting(sub: JetStreamContext.PullSubscription, batch: int, *, timeout: float) -> list[Msg]:
    """The messages waiting now, up to ``batch``: one ``no_wait`` request without ``expires``.

    nats-py has no public call for this, so the request goes to the subscription's own pull subject
    and inbox (``_nms``, ``_deliver``; nats-py is pinned in constraints.txt).
    """
    inner: Any = sub._sub
    await sub._nc.publish(sub._nms, json.dumps({"batch": batch, "no_wait": True}).encode(), sub._deliver)
    msgs: list[Msg] = []
    while len(msgs) < batch:
        msg = await inner.next_msg(timeout=timeout)
        status = JetStreamContext.is_status_msg(msg)
        if not status:
            msgs.append(msg)
        elif status in _END:
            break
        elif status != "100":  # 100: an idle heartbeat, nothing to do
            raise APIError.from_msg(msg)
    return msgs
