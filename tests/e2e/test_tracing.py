"""OpenTelemetry traces end to end (SPEC §11): the real gateway on 127.0.0.1 against the mock
upstream, its spans read with the SDK's in-memory exporter, and once as they arrive at a small
OTLP/HTTP receiver (protobuf, decoded with opentelemetry-proto)."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trio
from harness import chat, client_and_gateway, eventually, make_config, sse_payloads

from gateway_trio.hooks import CustomLogger
from gateway_trio.testing import Behavior

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from gateway_trio.runtime.tracing import SHUTDOWN_TIMEOUT_S

MASTER = "sk-master-tracing-0123456789"
VIRTUAL = "sk-virtual-tracing-0123456789"
UPSTREAM_KEY = "sk-upstream-tracing-secret-42"
EXPORT_SECRET = "export-header-secret-987654"
PROMPT = "the-secret-prompt-words"


class Receiver:
    """An OTLP/HTTP collector on 127.0.0.1:0 in a thread: keeps what POST /v1/traces brings."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], ExportTraceServiceRequest]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                received.append(({k.lower(): v for k, v in self.headers.items()}, message))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[Any]:
        return [
            span
            for _, request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


HOOKS = ("hook_classes:PreCallEditor", "hook_classes:CallInfoHeaders")


def config_for(
    upstream,
    endpoint: str,
    model_headers: dict[str, str] | None = None,
    callbacks: tuple[str, ...] = HOOKS,
    **otel: Any,
):
    return make_config(
        server={"master_key": MASTER},
        models=[
            {
                "name": "gpt",
                "model": "openai/gpt-4o-mini",
                "api_base": f"{upstream.base_url}/v1",
                "api_key": UPSTREAM_KEY,
                "headers": model_headers or {},
            }
        ],
        router={"num_retries": 1, "retry_backoff_s": 0},
        keys=[{"key": VIRTUAL, "key_alias": "tracing-key"}],
        guardrails=[
            {
                "name": "no-ids",
                "guardrail": "regex",
                "mode": "pre_call",
                "default_on": True,
                "params": {"patterns": ["ID-[0-9]{9}"]},
            }
        ],
        hooks={"callbacks": list(callbacks)},
        otel={"endpoint": endpoint, "headers": {"x-export-key": EXPORT_SECRET}, **otel},
    )


def in_memory(gateway) -> InMemorySpanExporter:
    """The gateway's spans, also kept in memory as each ends."""
    exporter = InMemorySpanExporter()
    gateway.tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def named(spans, name: str) -> list[Any]:
    return [span for span in spans if span.name == name]


def every_attribute_value(spans) -> str:
    return " ".join(f"{key}={value}" for span in spans for key, value in (span.attributes or {}).items())


async def streamed(client, headers: dict[str, str], text: str = PROMPT) -> str:
    request = chat("gpt", text, stream=True)
    async with client.stream("POST", "/v1/chat/completions", json=request, headers=headers) as response:
        assert response.status_code == 200
        return (await response.aread()).decode()


async def test_a_streamed_call_with_one_retry_is_one_trace_continuing_the_clients(upstream):
    upstream.default = Behavior(status=500, fail_times=1, chunks=3)
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    headers = {"authorization": f"Bearer {VIRTUAL}", "traceparent": f"00-{trace_id}-{parent_id}-01"}
    with receiving() as receiver:
        async with client_and_gateway(config_for(upstream, receiver.url)) as (client, gateway):
            memory = in_memory(gateway)
            body = await streamed(client, headers)
            assert sse_payloads(body)[-1] == "[DONE]"
            await eventually(lambda: named(memory.get_finished_spans(), "gateway call"))
    spans = memory.get_finished_spans()
    (call,) = named(spans, "gateway call")
    assert f"{call.context.trace_id:032x}" == trace_id
    assert f"{call.parent.span_id:016x}" == parent_id and call.parent.is_remote
    assert {f"{span.context.trace_id:032x}" for span in spans} == {trace_id}

    failed, succeeded = sorted(named(spans, "attempt"), key=lambda span: span.start_time)
    for attempt in (failed, succeeded):
        assert attempt.parent.span_id == call.context.span_id
        assert attempt.attributes["gen_ai.system"] == "openai"
        assert attempt.attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert attempt.attributes["server.address"] == f"{upstream.base_url}/v1"
    assert failed.attributes["gateway.attempt.retry"] == 0
    assert failed.attributes["gateway.attempt.outcome"] == "failure"
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.status.status_code is StatusCode.ERROR
    assert succeeded.attributes["gateway.attempt.retry"] == 1
    assert succeeded.attributes["gateway.attempt.outcome"] == "success"
    assert succeeded.status.status_code is StatusCode.OK
    # The call's span lasts until the stream's end, the winning attempt's with it.
    assert call.end_time >= succeeded.end_time > succeeded.start_time >= failed.end_time

    # Each upstream request carried its own attempt's trace context.
    sent = [received.headers["traceparent"] for received in upstream.received]
    assert sent == [f"00-{trace_id}-{attempt.context.span_id:016x}-01" for attempt in (failed, succeeded)]

    attributes = call.attributes
    assert attributes["gateway.status"] == "success"
    assert attributes["http.response.status_code"] == 200
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt"
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.usage.input_tokens"] > 0 and attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["gateway.model_group"] == "gpt"
    assert attributes["gateway.key_alias"] == "tracing-key"
    assert attributes["gateway.attempted_retries"] == 1
    assert attributes["gateway.call_id"]
    assert "gen_ai.input.messages" not in attributes

    (guardrail,) = named(spans, "guardrail no-ids")
    assert guardrail.parent.span_id == call.context.span_id
    assert guardrail.attributes["gateway.guardrail.mode"] == "pre_call"
    assert guardrail.attributes["gateway.guardrail.status"] == "success"
    (pre_call,) = named(spans, "hook PreCallEditor.async_pre_call_hook")
    (headers_hook,) = named(spans, "hook CallInfoHeaders.async_post_call_response_headers_hook")
    for hook in (pre_call, headers_hook):
        assert hook.parent.span_id == call.context.span_id
        assert hook.attributes["gateway.hook.outcome"] == "ran"
        assert call.start_time <= hook.start_time <= hook.end_time <= call.end_time

    # No key of any kind, no export header, no prompt text in any attribute or status.
    text = every_attribute_value(spans) + " ".join(str(span.status.description) for span in spans)
    for secret in (MASTER, VIRTUAL, UPSTREAM_KEY, EXPORT_SECRET, PROMPT):
        assert secret not in text


async def test_prompts_go_into_spans_only_with_capture_content(upstream):
    with receiving() as receiver:
        async with client_and_gateway(config_for(upstream, receiver.url, capture_content=True)) as (client, gateway):
            memory = in_memory(gateway)
            response = await client.post(
                "/v1/chat/completions", json=chat("gpt", PROMPT), headers={"authorization": f"Bearer {VIRTUAL}"}
            )
            assert response.status_code == 200
            (call,) = await eventually(lambda: named(memory.get_finished_spans(), "gateway call"))
            body = await streamed(client, {"authorization": f"Bearer {VIRTUAL}"}, "streamed-words")
            assert sse_payloads(body)[-1] == "[DONE]"
            await eventually(lambda: len(named(memory.get_finished_spans(), "gateway call")) == 2)
    assert PROMPT in call.attributes["gen_ai.input.messages"]
    assert PROMPT in call.attributes["gen_ai.output.messages"]  # the mock echoes it
    stream = named(memory.get_finished_spans(), "gateway call")[1]
    assert "streamed-words" in stream.attributes["gen_ai.input.messages"]
    assert "streamed-words" in stream.attributes["gen_ai.output.messages"]  # assembled from the chunks
    assert VIRTUAL not in every_attribute_value(memory.get_finished_spans())


async def test_without_a_client_traceparent_a_new_trace_starts_and_reaches_the_upstream(upstream):
    with receiving() as receiver:
        async with client_and_gateway(config_for(upstream, receiver.url)) as (client, gateway):
            memory = in_memory(gateway)
            headers = {"authorization": f"Bearer {VIRTUAL}", "traceparent": "not-a-traceparent"}
            response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=headers)
            assert response.status_code == 200
            (call,) = await eventually(lambda: named(memory.get_finished_spans(), "gateway call"))
    assert call.parent is None
    (attempt,) = named(memory.get_finished_spans(), "attempt")
    trace_id = f"{call.context.trace_id:032x}"
    assert upstream.received[0].headers["traceparent"] == f"00-{trace_id}-{attempt.context.span_id:016x}-01"


class Failures(CustomLogger):
    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict, traceback_str):
        return None


async def test_a_failed_call_span_says_so(upstream):
    upstream.default = Behavior(status=500)
    with receiving() as receiver:
        async with client_and_gateway(config_for(upstream, receiver.url), hooks=[Failures()]) as (client, gateway):
            memory = in_memory(gateway)
            response = await client.post(
                "/v1/chat/completions", json=chat("gpt"), headers={"authorization": f"Bearer {VIRTUAL}"}
            )
            assert response.status_code == 502
            (call,) = await eventually(lambda: named(memory.get_finished_spans(), "gateway call"))
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["gateway.status"] == "failure"
    assert call.attributes["http.response.status_code"] == 502
    assert call.attributes["error.type"] == "UpstreamError"
    assert len(named(memory.get_finished_spans(), "attempt")) == 2
    (hook,) = named(memory.get_finished_spans(), "hook Failures.async_post_call_failure_hook")
    assert hook.parent.span_id == call.context.span_id


async def test_spans_are_exported_over_otlp_http(upstream):
    trace_id = secrets.token_hex(16)
    headers = {"authorization": f"Bearer {VIRTUAL}", "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    with receiving() as receiver:
        config = config_for(upstream, receiver.url, service_name="gw-under-test")
        async with client_and_gateway(config) as (client, _):
            assert sse_payloads(await streamed(client, headers))[-1] == "[DONE]"
            exported = await eventually(lambda: named(receiver.spans(), "gateway call"), timeout=15)
            names = {span.name for span in receiver.spans()}
            metrics = (await client.get("/metrics", headers={"authorization": f"Bearer {MASTER}"})).text
    assert {"gateway call", "attempt", "guardrail no-ids"} <= names
    assert exported[0].trace_id.hex() == trace_id
    export_headers, request = receiver.requests[0]
    assert export_headers["x-export-key"] == EXPORT_SECRET
    assert export_headers["content-type"] == "application/x-protobuf"
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "gw-under-test"
    assert "gateway_otel_spans_dropped_total 0.0" in metrics


class Checks(CustomLogger):
    """A moderation hook and a post-call success hook: in-line hooks with spans of their own."""

    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        return None

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        return response


async def test_moderation_and_success_hooks_have_spans(upstream):
    with receiving() as receiver:
        config = config_for(upstream, receiver.url)
        async with client_and_gateway(config, hooks=[Checks()]) as (client, gateway):
            memory = in_memory(gateway)
            response = await client.post(
                "/v1/chat/completions", json=chat("gpt"), headers={"authorization": f"Bearer {VIRTUAL}"}
            )
            assert response.status_code == 200
            (call,) = await eventually(lambda: named(memory.get_finished_spans(), "gateway call"))
    spans = memory.get_finished_spans()
    for name in ("hook Checks.async_moderation_hook", "hook Checks.async_post_call_success_hook"):
        (hook,) = named(spans, name)
        assert hook.parent.span_id == call.context.span_id
        assert hook.attributes["gateway.hook.outcome"] == "ran"


async def test_a_deployment_configured_traceparent_is_never_replaced(upstream):
    configured = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    with receiving() as receiver:
        config = config_for(upstream, receiver.url, model_headers={"traceparent": configured})
        async with client_and_gateway(config) as (client, _):
            headers = {"authorization": f"Bearer {VIRTUAL}", "traceparent": f"00-{secrets.token_hex(16)}-{'1' * 16}-01"}
            response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=headers)
            assert response.status_code == 200
    assert upstream.received[0].headers["traceparent"] == configured


async def test_dropped_spans_are_counted_in_metrics(upstream):
    with receiving() as receiver:
        async with client_and_gateway(config_for(upstream, receiver.url, max_queue=1)) as (client, gateway):
            gateway.tracing.processor.pending = 1  # as if the export thread were behind: the queue is full
            response = await client.post(
                "/v1/chat/completions", json=chat("gpt"), headers={"authorization": f"Bearer {VIRTUAL}"}
            )
            assert response.status_code == 200
            dropped = await eventually(lambda: gateway.tracing.dropped)
            metrics = (await client.get("/metrics", headers={"authorization": f"Bearer {MASTER}"})).text
    assert dropped == 5  # the call, its attempt, its guardrail run, its two hooks
    assert f"gateway_otel_spans_dropped_total {float(dropped)}" in metrics


async def test_an_unreachable_collector_never_holds_a_call_nor_the_shutdown(upstream):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with client_and_gateway(config_for(upstream, endpoint, export_timeout_s=30)) as (client, _):
        began = trio.current_time()
        for _ in range(3):
            response = await client.post(
                "/v1/chat/completions", json=chat("gpt"), headers={"authorization": f"Bearer {VIRTUAL}"}
            )
            assert response.status_code == 200
        assert trio.current_time() - began < 5  # generous: each call takes milliseconds
        closing = trio.current_time()
    # The export thread would retry for export_timeout_s; the shutdown waits for it a few seconds at most.
    assert trio.current_time() - closing < SHUTDOWN_TIMEOUT_S + 5


@pytest.mark.parametrize(
    ("path", "body", "operation"),
    [
        ("/v1/messages", {"model": "gpt", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}, "chat"),
        ("/v1/embeddings", {"model": "gpt", "input": "hi"}, "embeddings"),
        ("/v1/completions", {"model": "gpt", "prompt": "hi"}, "text_completion"),
    ],
)
async def test_every_route_is_traced_the_same_way(upstream, path, body, operation):
    with receiving() as receiver:
        config = config_for(upstream, receiver.url, callbacks=("hook_classes:CallInfoHeaders",))
        async with client_and_gateway(config) as (client, gateway):
            memory = in_memory(gateway)
            response = await client.post(path, json=body, headers={"authorization": f"Bearer {VIRTUAL}"})
            assert response.status_code == 200, response.text
            (call,) = await eventually(lambda: named(memory.get_finished_spans(), "gateway call"))
    assert call.attributes["gen_ai.operation.name"] == operation
    assert call.attributes["http.route"] == path
    assert call.attributes["gateway.status"] == "success"
    assert call.attributes["gen_ai.usage.input_tokens"] > 0
    (attempt,) = named(memory.get_finished_spans(), "attempt")
    assert upstream.received[0].headers["traceparent"].split("-")[2] == f"{attempt.context.span_id:016x}"
