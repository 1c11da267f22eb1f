"""JetStream streams and publishing (always with ``Nats-Msg-Id``, so re-publishes dedupe)."""

from __future__ import annotations

import contextlib

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from scopenet.contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS

DUPLICATE_WINDOW = 120.0  # seconds; JetStream's default, stated so it is visible


def events_stream_config() -> StreamConfig:
    return StreamConfig(
        name=EVENTS_STREAM,
        subjects=[EVENTS_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=7 * 24 * 3600,
        duplicate_window=DUPLICATE_WINDOW,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig, *, replicas: int) -> None:
    """Create the stream, or bring an existing one to ``config`` (idempotent, replica-safe).

    ``replicas`` is required (the service's ``SCOPENET_STREAM_REPLICAS``), so every service that
    ensures a stream states it and none sets a replicated stream back to one copy by omission.
    """
    config.num_replicas = replicas
    try:
        await js.add_stream(config)
    except BadRequestError:
        with contextlib.suppress(BadRequestError):
            await js.update_stream(config)


async def publish(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    *,
    msg_id: str,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> bool:
    """Publish and wait for the stream's ack. Returns False when JetStream saw ``msg_id`` before.
    ``headers`` go out as they are (CloudEvents attributes, trace context), beside ``Nats-Msg-Id``."""
    ack = await js.publish(subject, payload, timeout=timeout, headers={**(headers or {}), "Nats-Msg-Id": msg_id})
    return not ack.duplicate
