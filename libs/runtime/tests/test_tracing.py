"""Tracing is off unless the ``OTEL_*`` variables ask, and then exports what they choose.

Each case runs in a fresh interpreter: a process installs its tracer provider once, and the
environment is read at start, as a service does.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_with_no_otel_variables_nothing_is_exported_and_the_sdk_is_not_loaded() -> None:
    done = run(
        """
        import sys
        from scopenet.runtime import tracing
        assert tracing.configure(service="test") is False
        with tracing.span("work") as span:
            assert not span.is_recording()
            assert tracing.inject() == {}  # no trace context to send on
            assert tracing.current_ids() is None
        tracing.shutdown()
        assert "opentelemetry.sdk" not in sys.modules, "the SDK was loaded though nothing is exported"
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_none_and_sdk_disabled_export_nothing() -> None:
    for env in ({"OTEL_TRACES_EXPORTER": "none"}, {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}):
        done = run(
            """
            from scopenet.runtime import tracing
            assert tracing.configure(service="test") is False
            with tracing.span("work"):
                pass
            tracing.shutdown()
            """,
            **env,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "", env


def test_an_upstream_trace_passes_through_a_process_that_exports_nothing() -> None:
    done = run(
        f"""
        from scopenet.runtime import tracing
        tracing.configure(service="test")
        ctx = tracing.parent_or_root({{"traceparent": "{PARENT}"}})
        with tracing.span("work", context=ctx):
            print(tracing.inject()["traceparent"])
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == PARENT


def test_the_console_exporter_prints_spans_named_after_the_service() -> None:
    done = run(
        f"""
        from scopenet.runtime import tracing
        assert tracing.configure(service="ipam") is True
        ctx = tracing.parent_or_root({{"traceparent": "{PARENT}"}})
        with tracing.span("scopenet.v1.ipam.subnet.allocate", context=ctx):
            pass
        tracing.shutdown()
        """,
        OTEL_TRACES_EXPORTER="console",
    )
    assert done.returncode == 0, done.stderr
    span = json.loads(done.stdout)
    assert span["name"] == "scopenet.v1.ipam.subnet.allocate"
    assert span["context"]["trace_id"] == "0x" + PARENT.split("-")[1]
    assert span["parent_id"] == "0x" + PARENT.split("-")[2]
    assert span["resource"]["attributes"]["service.name"] == "scopenet-ipam"


def test_otel_service_name_wins_over_the_default() -> None:
    done = run(
        """
        from scopenet.runtime import tracing
        tracing.configure(service="ipam")
        with tracing.span("x"):
            pass
        tracing.shutdown()
        """,
        OTEL_TRACES_EXPORTER="console",
        OTEL_SERVICE_NAME="ipam-eu-1",
    )
    assert json.loads(done.stdout)["resource"]["attributes"]["service.name"] == "ipam-eu-1"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "no exporter 'zipkin' is installed"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "use http/protobuf"),
    ],
)
def test_an_exporter_that_is_not_installed_fails_at_start(env: dict[str, str], says: str) -> None:
    done = run(
        """
        from scopenet.runtime import tracing
        try:
            tracing.configure(service="test")
        except tracing.TracingConfigError as exc:
            print(exc)
        """,
        **env,
    )
    assert says in done.stdout, done.stdout + done.stderr


def test_a_log_line_inside_a_span_carries_its_trace_and_span_ids() -> None:
    done = run(
        f"""
        from scopenet.runtime import log, tracing
        log.configure(fmt="json")
        tracing.configure(service="test")
        out = log.get("t")
        out.info("before")
        ctx = tracing.parent_or_root({{"traceparent": "{PARENT}"}})
        with tracing.span("work", context=ctx):
            out.info("inside")
        """
    )
    assert done.returncode == 0, done.stderr
    before, inside = (json.loads(line) for line in done.stderr.splitlines())
    assert "trace_id" not in before
    assert inside["trace_id"] == PARENT.split("-")[1]
    assert inside["span_id"] == PARENT.split("-")[2]  # off: the no-op span is the caller's


def test_otlp_sends_the_spans_to_the_collector_the_variables_name() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = run(
            """
            from scopenet.runtime import tracing
            assert tracing.configure(service="topology") is True
            with tracing.span("scopenet.v1.topology.subnet.create"):
                pass
            tracing.shutdown()
            """,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.server_port}",
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    [(path, body)] = received
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    assert service == "scopenet-topology"
    assert [s.name for ss in resource_spans.scope_spans for s in ss.spans] == ["scopenet.v1.topology.subnet.create"]
