"""OpenTelemetry traces across every hop: W3C ``traceparent`` in, spans, ``traceparent`` out.

Off unless asked. With no ``OTEL_TRACES_EXPORTER`` (or ``none``) ``configure`` installs nothing and
the SDK is not even imported. ``span(...)`` then starts no span at all — less than a microsecond,
where the API's no-op tracer costs over ten (three nested generator context managers) and a request
opens several — but still hands an incoming ``traceparent`` on: it makes the caller's span context
current, as the no-op tracer would, so a trace started upstream keeps its id through a scopenet
that exports nothing, and the logs carry that id.

Asked, the SDK reads the standard variables itself: ``OTEL_TRACES_EXPORTER`` (``otlp`` — OTLP over
HTTP/protobuf, the exporter installed with scopenet — or ``console``, comma-separated for both),
``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, timeout), ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_BSP_*`` (the batch span
processor), ``OTEL_PROPAGATORS``; ``OTEL_SDK_DISABLED=true`` turns it all off again. Spans go
through a batch processor: exporting never blocks a request.

Carriers are plain ``dict[str, str]`` header maps: NATS request headers, JetStream message headers
and an outbox row's ``headers`` column all use the same ``inject``/``extract``. A program that set
its own SDK ``TracerProvider`` before (a test with an in-memory exporter) keeps it: ``configure``
then changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from opentelemetry import context as _context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

__all__ = [
    "TRACER",
    "Context",
    "Link",
    "Span",
    "SpanKind",
    "Status",
    "StatusCode",
    "TracingConfigError",
    "capture",
    "configure",
    "current_ids",
    "current_span",
    "extract",
    "inject",
    "link_to",
    "parent_or_root",
    "shutdown",
    "span",
    "trace_id_of",
]

TRACER = trace.get_tracer("scopenet")
"""The one tracer of scopenet (a proxy until ``configure`` installs a provider, then the real one)."""

#: ``OTEL_TRACES_EXPORTER`` names this module maps to an installed exporter's entry point.
_ALIASES = {"otlp": "otlp_proto_http"}
_HEADERS = ("traceparent", "tracestate")

_provider: Any = None


class TracingConfigError(ValueError):
    """An ``OTEL_*`` variable asks for something this installation cannot do (raised at start)."""


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` asks for (entry-point names); [] when none is."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if "none" in names:
        return []
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip()
    if "otlp" in names and protocol not in ("", "http/protobuf"):
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: scopenet ships the OTLP exporter over HTTP; use http/protobuf"
        )
    return [_ALIASES.get(n, n) for n in names]


def configure(*, service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Install the SDK with the exporters the ``OTEL_*`` variables ask for (see the module
    docstring); ``service`` names the resource unless ``OTEL_SERVICE_NAME`` does. Returns whether
    spans are exported now. Fails fast (``TracingConfigError``) on an exporter that is not installed."""
    global _provider
    names = exporter_names(environ)
    if not names or _provider is not None or _has_sdk_provider():
        return _provider is not None
    # Imported here: a process that exports nothing never loads the SDK.
    from importlib.metadata import entry_points

    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporters = []
    for name in names:
        found = list(entry_points(group="opentelemetry_traces_exporter", name=name))
        if not found:
            installed = sorted({"otlp", *(e.name for e in entry_points(group="opentelemetry_traces_exporter"))})
            raise TracingConfigError(
                f"OTEL_TRACES_EXPORTER: no exporter {name!r} is installed (choose from none, {', '.join(installed)})"
            )
        exporters.append(found[0].load()())
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: f"scopenet-{service}"}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def shutdown() -> None:
    """Flush and stop what ``configure`` installed (spans still queued are exported first)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def _has_sdk_provider() -> bool:
    """Has someone installed a real provider already (anything but the API's proxy or no-op)?"""
    current = trace.get_tracer_provider()
    return not isinstance(current, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


_recording = False
"""A real provider is installed (it cannot be uninstalled: once true, true for good)."""


def recording() -> bool:
    """Are spans made at all in this process (a provider was installed, by ``configure`` or else)?"""
    global _recording
    if not _recording:
        _recording = _has_sdk_provider()
    return _recording


def span(
    name: str,
    *,
    context: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    links: Sequence[Link] = (),
) -> AbstractContextManager[Span]:
    """A context manager: the span ``name`` made current (a child of ``context`` when given, else of
    the current span) — or, with tracing off, no span, only ``context`` made current. Exceptions do
    not mark it an error: the code that knows the outcome does (a 4xx is not a fault)."""
    if recording():
        return TRACER.start_as_current_span(
            name,
            context=context,
            kind=kind,
            attributes=attributes,
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        )
    return _Passthrough(context)


class _Passthrough:
    """Tracing off: make the caller's context current (or leave everything as it is)."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: Context | None) -> None:
        self._context = context
        self._token: object = None

    def __enter__(self) -> Span:
        if self._context is not None:
            self._token = _context.attach(self._context)
        return trace.get_current_span()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._token is not None:
            _context.detach(self._token)  # type: ignore[arg-type]


# -- carriers ------------------------------------------------------------------------------------


def inject(headers: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """``headers`` (a new map when None) with the current span's ``traceparent`` (and
    ``tracestate``) added; unchanged when there is no span context, the common case with tracing
    off and no upstream trace."""
    out = dict(headers) if headers is not None else {}
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(out)
    return out


def extract(headers: Mapping[str, str] | None) -> Context | None:
    """The remote span context ``headers`` carry, or None when they carry no ``traceparent``."""
    if not headers or "traceparent" not in headers:
        return None
    return propagate.extract({k: v for k, v in headers.items() if k in _HEADERS})


def parent_or_root(headers: Mapping[str, str] | None) -> Context:
    """The context a server or consumer span starts in: the caller's trace when the message
    carries one, else a new trace (never whatever context the receiving task happened to have)."""
    return extract(headers) or Context()


def capture() -> Context:
    """The current context, to start work handed to another task (a batch, a reconcile queue) in
    the trace of whoever handed it over."""
    return _context.get_current()


def link_to(ctx: Context) -> Link | None:
    """A link to the span of ``ctx`` (from ``capture``); None when it has no span context."""
    span_ctx = trace.get_current_span(ctx).get_span_context()
    return Link(span_ctx) if span_ctx.is_valid else None


def current_span() -> Span:
    """The span of the current context (a non-recording one when there is none)."""
    return trace.get_current_span()


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in W3C hex, or None (for the logs)."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def trace_id_of(ctx: Context | None = None) -> str | None:
    """The W3C trace id (hex) of ``ctx`` (from ``capture``; the current context by default), or None:
    what an audit record keeps to find the request's trace later."""
    span_ctx = trace.get_current_span(ctx).get_span_context()
    return format(span_ctx.trace_id, "032x") if span_ctx.is_valid else None
