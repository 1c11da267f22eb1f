"""structlog configuration: JSON lines with bound context, snake_case event names.

A line written inside a span carries ``trace_id`` and ``span_id`` (W3C hex), so the logs of one
request can be found across every service from a trace, and a trace from a log line.
"""

from __future__ import annotations

import logging
import sys

import structlog

from scopenet.runtime.tracing import current_ids


def configure(*, level: str = "info", fmt: str = "json") -> None:
    lvl = getattr(logging, level.upper())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr)


def add_trace_ids(_: object, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    """structlog processor: the current span's ``trace_id``/``span_id``, when there is a span."""
    ids = current_ids()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event


def get(name: str, **ctx: object) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name).bind(**ctx)  # type: ignore[no-any-return]
