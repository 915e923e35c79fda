"""OpenTelemetry spans, exported off the event loop through a bounded queue (SPEC §11).

Imported only when `[otel] endpoint` is set, so a gateway without traces loads nothing of
OpenTelemetry.  Nothing here knows what a call is: `CallTrace` holds one root span and at most
one open child (an attempt), and records other children after the fact from their start and
end times, so the code that times a hook or a guardrail needs no context manager around it
and pays nothing when tracing is off.  Spans are handed from task to task explicitly (the
call carries its `CallTrace`), never through OpenTelemetry's implicit current context.

The SDK's batch processor exports from its own thread.  Its queue is bounded by `max_queue`;
a span that finds it full is dropped here and counted (the SDK would drop the oldest instead
and log a warning per span, a flood of log lines exactly when the collector is slow).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import trio
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

Attributes = Mapping[str, Any]
EXPORT_BATCH = 512
EXPORT_DELAY_MS = 1000
SHUTDOWN_TIMEOUT_S = 5.0


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector's base URL (as OTEL_EXPORTER_OTLP_ENDPOINT is
    read), or the URL itself when it names the traces path already."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def parent_context(traceparent: str | None) -> Context | None:
    """The remote parent a W3C `traceparent` names, or None for one that is absent or invalid
    (a new trace starts: a malformed header is never an error for the call)."""
    if not traceparent:
        return None
    parts = traceparent.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or (parts[0] == "00" and len(parts) != 4):
        return None
    version, trace_hex, span_hex, flags_hex = parts[:4]
    if len(trace_hex) != 32 or len(span_hex) != 16 or len(flags_hex) != 2:
        return None
    try:
        int(version, 16)
        trace_id, span_id, flags = int(trace_hex, 16), int(span_hex, 16), int(flags_hex, 16)
    except ValueError:
        return None
    if not trace_id or not span_id or trace_hex != trace_hex.lower() or span_hex != span_hex.lower():
        return None
    remote = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))
    return set_span_in_context(NonRecordingSpan(remote))


def traceparent_of(span: Span) -> str:
    """The W3C `traceparent` that makes `span` the parent of what the receiver does."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags) & 1:02x}"


def _error_status(error: str | None) -> Status:
    return Status(StatusCode.ERROR, error) if error else Status(StatusCode.OK)


class CallTrace:
    """One call's span, its open attempt, and the finished children recorded under it."""

    __slots__ = ("attempt", "capture_content", "context", "recording", "span", "tracer")

    def __init__(self, tracer: Any, span: Span, capture_content: bool) -> None:
        self.tracer = tracer
        self.span = span
        self.context = set_span_in_context(span)
        self.attempt: Span | None = None
        self.capture_content = capture_content
        self.recording = span.is_recording()  # not sampled: callers skip building attributes

    def child(self, name: str, start_ns: int, end_ns: int, attributes: Attributes, error: str | None = None) -> None:
        """A child span already over (a guardrail run, a hook call), from its own times."""
        if not self.recording:
            return
        span = self.tracer.start_span(name, self.context, SpanKind.INTERNAL, attributes, start_time=start_ns)
        if error:
            span.set_status(_error_status(error))
        span.end(end_time=max(end_ns, start_ns))

    def start_attempt(self, name: str, attributes: Attributes) -> str:
        """Open the call's attempt span (ending one left open); its `traceparent` for the upstream."""
        self.end_attempt({}, "superseded")
        self.attempt = self.tracer.start_span(name, self.context, SpanKind.CLIENT, attributes)
        return traceparent_of(self.attempt)

    def end_attempt(self, attributes: Attributes, error: str | None) -> None:
        attempt = self.attempt
        if attempt is None:
            return
        self.attempt = None
        if self.recording:
            attempt.set_attributes(attributes)
            attempt.set_status(_error_status(error))
        attempt.end()

    def end(self, attributes: Attributes, error: str | None, end_ns: int | None = None) -> None:
        """End the call's span (and an attempt still open: cut off with the call)."""
        self.end_attempt({"gateway.attempt.outcome": "cancelled"}, "cancelled")
        if self.recording:
            self.span.set_attributes(attributes)
            self.span.set_status(_error_status(error))
        self.span.end(end_time=end_ns)


class BoundedSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor with its queue bounded here, and the spans dropped counted.

    `pending` counts spans handed to the SDK's queue and not yet taken for export; the export
    thread lowers it as it takes a batch (`_Counted`), so the SDK's own queue never fills.
    """

    def __init__(self, exporter: SpanExporter, max_queue: int) -> None:
        self._lock = threading.Lock()
        self.max_queue = max_queue
        self.pending = 0
        self.dropped = 0
        super().__init__(
            _Counted(exporter, self),
            max_queue_size=max_queue,
            max_export_batch_size=min(EXPORT_BATCH, max_queue),
            schedule_delay_millis=EXPORT_DELAY_MS,
        )

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        with self._lock:
            if self.pending >= self.max_queue:
                self.dropped += 1
                return
            self.pending += 1
        super().on_end(span)

    def taken(self, count: int) -> None:
        with self._lock:
            self.pending = max(0, self.pending - count)


class _Counted(SpanExporter):
    """The real exporter, telling the processor how many spans left its queue."""

    def __init__(self, exporter: SpanExporter, processor: BoundedSpanProcessor) -> None:
        self.exporter = exporter
        self.processor = processor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.processor.taken(len(spans))
        return self.exporter.export(spans)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class Tracing:
    """The tracer provider of one process: where call spans start, and its clean end.

    `exporter` replaces the OTLP/HTTP one (tests pass the SDK's in-memory exporter).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        service_name: str = "gateway-trio",
        sample_ratio: float = 1.0,
        max_queue: int = 2048,
        export_timeout_s: float = 10.0,
        capture_content: bool = False,
        exporter: SpanExporter | None = None,
    ) -> None:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(
                endpoint=traces_url(endpoint), headers=dict(headers or {}), timeout=export_timeout_s
            )
        self.capture_content = capture_content
        self.processor = BoundedSpanProcessor(exporter, max_queue)
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}),
            sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
            shutdown_on_exit=False,  # `aclose` ends it, bounded; the SDK's atexit hook would wait 30 s
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("gateway_trio")
        self._closed = False

    @property
    def dropped(self) -> int:
        """Spans dropped because the export queue was full (`/metrics`)."""
        return self.processor.dropped

    def start(self, name: str, traceparent: str | None, start_ns: int, attributes: Attributes) -> CallTrace:
        """A call's span: the child of the client's `traceparent` if it sent a valid one."""
        span = self.tracer.start_span(
            name, parent_context(traceparent), SpanKind.SERVER, attributes, start_time=start_ns
        )
        return CallTrace(self.tracer, span, self.capture_content)

    async def aclose(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Export what is queued and stop the export thread, in a worker thread (the SDK's
        shutdown joins threads and waits on the network); abandoned after `timeout_s`."""
        if self._closed:
            return
        self._closed = True

        def shut_down() -> None:
            self.processor.force_flush(int(timeout_s * 1000))
            self.provider.shutdown()

        with trio.move_on_after(timeout_s):
            await trio.to_thread.run_sync(shut_down, abandon_on_cancel=True)
