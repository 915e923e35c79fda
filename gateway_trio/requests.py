"""Reading and checking client request bodies before they become Calls.

Checks are plain code rather than a pydantic model per request: they run on every call, and
they must name the offending field in the error.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_trio.calls import Call
from gateway_trio.errors import BadRequest

# Nothing a client sends may change where the upstream call goes or what credentials it uses.
FORBIDDEN_FIELDS = ("api_base", "api_key", "base_url", "extra_headers")
# Fields the gateway itself consumes (LiteLLM's names); they are not sent upstream.
GATEWAY_FIELDS = ("guardrails", "metadata", "tags")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    for name in FORBIDDEN_FIELDS:
        if name in body:
            raise BadRequest(f"'{name}' may not be set by clients", param=name)
    return body


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a non-empty string", param="model")
    return model


def stream_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    """(stream, include_usage) as the client asked."""
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean", param="stream")
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not isinstance(options, dict):
        raise BadRequest("'stream_options' must be an object", param="stream_options")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise BadRequest("'stream_options.include_usage' must be a boolean", param="stream_options.include_usage")
    return stream, stream and include_usage


def check_chat(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required and must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"'messages[{index}]' must be an object with a 'role'", param=f"messages[{index}]")


def call_options(call: Call) -> None:
    """Move the gateway's own fields (metadata, tags, guardrails) from the body to the call."""
    body = call.body
    if not any(name in body for name in GATEWAY_FIELDS):
        return
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be an object", param="metadata")
    tags = body.get("tags", metadata.get("tags")) or []
    guardrails = body.get("guardrails", metadata.get("guardrails")) or []
    for name, value in (("tags", tags), ("guardrails", guardrails)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadRequest(f"'{name}' must be an array of strings", param=name)
    call.metadata = {k: v for k, v in metadata.items() if k not in ("tags", "guardrails")}
    call.tags = tags
    call.requested_guardrails = guardrails
    call.body = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS}
