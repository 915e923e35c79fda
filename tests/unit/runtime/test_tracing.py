"""runtime/tracing.py: W3C trace context in and out, the bounded export queue and its drop
count, finished children, and that a gateway without `[otel]` loads nothing of OpenTelemetry."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from harness import make_config

from gateway_trio.config import ConfigError

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, get_current_span

from gateway_trio.runtime.tracing import Tracing, parent_context, traces_url

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def memory_tracing(**options) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Tracing("http://127.0.0.1:1", exporter=exporter, **options), exporter


def test_a_valid_traceparent_is_the_remote_parent():
    context = get_current_span(parent_context(f"00-{TRACE}-{PARENT}-01")).get_span_context()
    assert (f"{context.trace_id:032x}", f"{context.span_id:016x}") == (TRACE, PARENT)
    assert context.is_remote and context.trace_flags.sampled


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE}-{PARENT}",  # no flags
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"ff-{TRACE}-{PARENT}-01",  # the forbidden version
        f"00-{TRACE.upper()}-{PARENT}-01",  # upper-case hex
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE[:-1]}x-{PARENT}-01",
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace(value):
    assert parent_context(value) is None


def test_traces_url_appends_the_otlp_path_once():
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://x.example/otlp/v1/traces") == "https://x.example/otlp/v1/traces"


def test_a_call_trace_nests_attempts_and_children_under_the_call():
    tracing, exporter = memory_tracing()
    start = time.time_ns()
    trace = tracing.start("gateway call", f"00-{TRACE}-{PARENT}-01", start, {"gateway.call_id": "c1"})
    sent = trace.start_attempt("attempt", {"gateway.attempt.retry": 0})
    trace.child("guardrail g", start + 10, start + 20, {"gateway.guardrail.status": "blocked"}, "blocked")
    trace.end({"gateway.status": "failure"}, "GuardrailBlocked")  # the attempt still open: cut off too
    tracing.processor.force_flush()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    call, attempt, guardrail = spans["gateway call"], spans["attempt"], spans["guardrail g"]
    assert sent == f"00-{TRACE}-{attempt.context.span_id:016x}-01"
    assert attempt.parent.span_id == guardrail.parent.span_id == call.context.span_id
    assert attempt.attributes["gateway.attempt.outcome"] == "cancelled"
    assert (guardrail.start_time, guardrail.end_time) == (start + 10, start + 20)
    assert guardrail.status.status_code is StatusCode.ERROR and call.status.status_code is StatusCode.ERROR
    assert call.start_time == start and call.attributes["gateway.status"] == "failure"


def test_a_client_that_does_not_sample_gets_no_spans_recorded():
    tracing, exporter = memory_tracing()
    trace = tracing.start("gateway call", f"00-{TRACE}-{PARENT}-00", time.time_ns(), {})
    assert not trace.recording
    trace.start_attempt("attempt", {})
    trace.end({}, None)
    tracing.processor.force_flush()
    assert exporter.get_finished_spans() == ()


class Stuck(SpanExporter):
    """A collector that never answers: every export waits until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans):
        self.release.wait(10)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_a_full_queue_drops_spans_and_counts_them_without_waiting():
    stuck = Stuck()
    tracing = Tracing("http://127.0.0.1:1", exporter=stuck, max_queue=4)
    began = time.monotonic()
    for index in range(50):
        tracing.start("gateway call", None, time.time_ns(), {"i": index}).end({}, None)
    assert time.monotonic() - began < 1.0  # never waits on the exporter
    processor = tracing.processor
    # At most one batch (<= max_queue) is with the stuck exporter and max_queue wait: the rest dropped.
    assert 50 - 2 * 4 <= tracing.dropped <= 50 - 4
    assert processor.pending <= 4
    stuck.release.set()
    tracing.provider.shutdown()
    assert stuck.exported + tracing.dropped == 50  # every span is exported or counted, none lost silently


async def test_aclose_exports_what_is_queued():
    tracing, exporter = memory_tracing()
    tracing.start("gateway call", None, time.time_ns(), {}).end({}, None)
    await tracing.aclose()
    assert [span.name for span in exporter.get_finished_spans()] == ["gateway call"]


def test_otel_endpoint_must_be_an_http_url():
    with pytest.raises(ConfigError, match="otel.endpoint"):
        make_config(otel={"endpoint": "collector:4318"})
    with pytest.raises(ConfigError, match="without credentials") as refused:
        make_config(otel={"endpoint": "http://user:hunter2-password@collector:4318"})
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ConfigError, match="unknown key 'otel.endpont'"):
        make_config(otel={"endpont": "http://collector:4318"})
    config = make_config(otel={"endpoint": "http://collector:4318", "headers": {"x-key": "a-secret-value"}})
    assert "a-secret-value" not in repr(config.otel)


def test_an_endpoint_without_opentelemetry_installed_is_a_load_error(monkeypatch):
    from gateway_trio.gateway import Gateway
    from gateway_trio.pipeline import tracing

    monkeypatch.setattr(tracing.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"otel.endpoint: .*gateway-trio\[otel\]"):
        Gateway(make_config(otel={"endpoint": "http://127.0.0.1:4318"}))


def test_off_by_default_nothing_of_opentelemetry_is_imported():
    code = (
        "import sys\n"
        "from gateway_trio.config import parse_config\n"
        "from gateway_trio.frontend.app import create_app\n"
        "app = create_app(parse_config({'database': {'url': 'sqlite:///:memory:'}}))\n"
        "assert app.gateway.tracing is None and app.gateway.pipeline.tracing is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60, cwd=root, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
