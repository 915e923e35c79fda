"""What a call's spans say: GenAI semantic-convention attributes from the Call and its record.

The pipeline opens a call's span here (`open_call`), dispatch an attempt's (`open_attempt`,
`close_attempt`), and `Pipeline.finish` closes the call's from its spend record
(`close_call`), so every route and every way a call ends is traced in the same place.  The
attributes are built from what is already at hand (the record carries tokens, cost and key
alias), never from a secret: no key, no header value, an api base without credentials.  Prompt
and answer text go in only with `[otel] capture_content = true`.  A gateway without `[otel]`
never calls in here (`call.trace is None`).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import orjson

from gateway_trio.calls import Call
from gateway_trio.config import ConfigError, OtelConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import GatewayError, UpstreamError
from gateway_trio.spend.records import SpendRecord

if TYPE_CHECKING:
    from gateway_trio.runtime.tracing import Tracing

CALL_SPAN = "gateway call"
ATTEMPT_SPAN = "attempt"
# The GenAI operation (`gen_ai.operation.name`) of each client API; others go by the API's name.
OPERATIONS = {
    "chat": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
# `gen_ai.system` where the semantic conventions name a provider otherwise.
SYSTEMS = {"azure": "az.ai.openai", "hosted_vllm": "vllm", "ollama_chat": "ollama"}
REQUEST_PARAMS = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
)
CONTENT_FIELDS = ("messages", "input", "prompt", "system", "instructions")


def check_tracing(config: OtelConfig) -> None:
    """With an endpoint set, OpenTelemetry must be installed: said at load, not at the first call."""
    if config.endpoint is not None and importlib.util.find_spec("opentelemetry.sdk") is None:
        raise ConfigError("otel.endpoint: traces need OpenTelemetry: pip install 'gateway-trio[otel]'")


def tracing_for(config: OtelConfig) -> Tracing | None:
    """The process's tracing for `[otel]`, or None when it has no endpoint (nothing of
    OpenTelemetry is imported then).  Made when the gateway runs, not when it is built: the
    SDK starts its export thread at once, and `check-config` must start nothing."""
    if config.endpoint is None:
        return None
    from gateway_trio.runtime.tracing import Tracing

    return Tracing(
        config.endpoint,
        headers={name: value.get_secret_value() for name, value in config.headers.items()},
        service_name=config.service_name,
        sample_ratio=config.sample_ratio,
        max_queue=config.max_queue,
        export_timeout_s=config.export_timeout_s,
        capture_content=config.capture_content,
    )


def open_call(tracing: Tracing, call: Call) -> None:
    """Start the call's span, under the client's `traceparent` if it sent one."""
    attributes: dict[str, Any] = {
        "gateway.call_id": call.call_id,
        "http.route": call.route or call.api.name,
        "gen_ai.operation.name": OPERATIONS.get(call.api.name, call.api.name),
        "gen_ai.request.model": call.model,
        "gateway.stream": call.stream,
    }
    body = call.body
    if isinstance(body, dict):
        for name, key in REQUEST_PARAMS:
            value = body.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attributes[key] = value
        if tracing.capture_content:
            content = {name: body[name] for name in CONTENT_FIELDS if name in body}
            if content:
                attributes["gen_ai.input.messages"] = _json(content)
    call.trace = tracing.start(
        CALL_SPAN, call.request_headers.get("traceparent"), int(call.start_time * 1e9), attributes
    )


def open_attempt(call: Call, deployment: Deployment) -> str | None:
    """Start the span of the attempt on `deployment`; the `traceparent` the upstream gets."""
    trace = call.trace
    if trace is None:
        return None
    attributes: dict[str, Any] = {
        "gateway.deployment_id": deployment.id,
        "gateway.model_group": deployment.group,
        "gen_ai.system": SYSTEMS.get(deployment.provider, deployment.provider),
        "gen_ai.request.model": deployment.upstream_model(call.model),
        "gateway.attempt.retry": call.attempted_retries,
        "gateway.attempt.fallback": call.attempted_fallbacks,
    }
    if deployment.public_api_base:
        attributes["server.address"] = deployment.public_api_base
    return trace.start_attempt(ATTEMPT_SPAN, attributes)


def close_attempt(call: Call, ok: bool, error: BaseException | None) -> None:
    """End the call's open attempt: how it went, and what the upstream answered."""
    trace = call.trace
    if trace is None or trace.attempt is None:
        return
    attributes: dict[str, Any] = {"gateway.attempt.outcome": "success" if ok else "failure" if error else "cancelled"}
    if ok:
        attributes["http.response.status_code"] = 200
    elif error is not None:
        attributes["error.type"] = type(error).__name__
        if isinstance(error, UpstreamError) and error.upstream_status is not None:
            attributes["http.response.status_code"] = error.upstream_status
    trace.end_attempt(attributes, None if ok else _described(error) if error else "cancelled")


def close_call(call: Call, record: SpendRecord, response: dict[str, Any] | None, error: BaseException | None) -> None:
    """End the call's span from its one spend record (tokens, cost, key alias, retries)."""
    trace = call.trace
    if trace is None:
        return
    attributes: dict[str, Any] = {"gateway.status": record.status}
    if trace.recording:
        for key, value in (
            ("gateway.model_group", record.model_group),
            ("gateway.deployment_id", record.model_id),
            ("gen_ai.system", SYSTEMS.get(record.provider, record.provider) if record.provider else None),
            ("gen_ai.response.model", _response_model(response) or call.upstream_model),
            ("gen_ai.usage.input_tokens", record.prompt_tokens),
            ("gen_ai.usage.output_tokens", record.completion_tokens),
            ("gateway.cost", record.cost),
            ("gateway.key_alias", record.key_alias),
            ("gateway.team_id", record.team_id),
            ("gateway.attempted_retries", record.attempted_retries),
            ("gateway.attempted_fallbacks", record.attempted_fallbacks),
            ("gateway.cache_hit", record.cache_hit),
        ):
            if value is not None:
                attributes[key] = value
        if isinstance(response, dict):
            if isinstance(response.get("id"), str):
                attributes["gen_ai.response.id"] = response["id"]
            # The answer's text: chat's choices, Anthropic's content, Responses' output (never an
            # embedding's vectors or an image's bytes).
            output = response.get("choices") or response.get("content") or response.get("output")
            if trace.capture_content and output:
                attributes["gen_ai.output.messages"] = _json(output)
        if record.status == "success":
            attributes["http.response.status_code"] = 200
        elif isinstance(error, GatewayError):
            attributes["http.response.status_code"] = error.status
        if error is not None:
            attributes["error.type"] = type(error).__name__
    trace.end(attributes, _described(error) if error is not None else None, int(record.end_time * 1e9))


def _response_model(response: dict[str, Any] | None) -> str | None:
    """The model the upstream says answered (OpenAI and Anthropic bodies name it)."""
    model = response.get("model") if isinstance(response, dict) else None
    return model if isinstance(model, str) else None


def _described(error: BaseException | None) -> str | None:
    """A span status for `error`: its class and code, never its message (which may quote the
    prompt the upstream or a guardrail saw)."""
    if error is None:
        return None
    code = getattr(error, "code", None)
    return f"{type(error).__name__} ({code})" if code else type(error).__name__


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)
