"""Reading and checking client request bodies before they become Calls.

Checks are plain code rather than a pydantic model per request: they run on every call, and
they must name the offending field in the error.
"""

from __future__ import annotations

from typing import Any, Mapping

import orjson

from gateway_trio.adapters.base import Upload
from gateway_trio.adapters.depth import MAX_JSON_DEPTH, too_deep
from gateway_trio.apis.wires import ANTHROPIC, OPENAI, ResponsesWire, Wire
from gateway_trio.calls import Call
from gateway_trio.errors import BadRequest

# Nothing a client sends may change where the upstream call goes or what credentials it uses.
FORBIDDEN_FIELDS = ("api_base", "api_key", "base_url", "extra_headers")
# Model names travel into headers, logs and upstream URLs: at most this long, printable only.
MAX_MODEL_CHARS = 256
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
    if too_deep(body):
        raise BadRequest(f"the request body nests JSON deeper than {MAX_JSON_DEPTH} levels", code="json_too_deep")
    refuse_upstream_fields(body)
    return body


def refuse_upstream_fields(fields: Mapping[str, Any]) -> None:
    """Refuse the fields that would choose the upstream or its credentials, in any body format."""
    for name in FORBIDDEN_FIELDS:
        if name in fields:
            raise BadRequest(f"'{name}' may not be set by clients", param=name)


def require_model(body: Mapping[str, Any]) -> str:
    return check_model(body.get("model"))


def check_model(model: Any) -> str:
    """A model name safe to route on and to name in headers, logs and URLs.

    Control and other unprintable characters would split a header or a log line, or reach an
    upstream inside a URL or body; a megabyte-long name would be compared with every group.
    """
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a non-empty string", param="model")
    if len(model) > MAX_MODEL_CHARS:
        raise BadRequest(f"'model' must be at most {MAX_MODEL_CHARS} characters", param="model")
    if not model.isprintable():
        raise BadRequest("'model' must not contain control or other unprintable characters", param="model")
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


def _require(body: dict[str, Any], name: str, kinds: tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if not isinstance(value, kinds) or (isinstance(value, (str, list)) and not value):
        raise BadRequest(f"'{name}' is required and must be {what}", param=name)
    return value


def _build(call_type: str, body: dict[str, Any], *, wire: Wire = OPENAI, streams: bool = True,
           model: str | None = None) -> Call:
    stream, include_usage = stream_flags(body) if streams else (False, False)
    if not streams and body.get("stream"):
        raise BadRequest(f"'stream' is not supported on {call_type} requests", param="stream")
    call = Call(call_type, model if model is not None else require_model(body), body, stream, include_usage)
    call.wire = wire
    call_options(call)
    return call


def chat_call(body: dict[str, Any]) -> Call:
    require_model(body)
    check_chat(body)
    return _build("completion", body)


def text_completion_call(body: dict[str, Any]) -> Call:
    require_model(body)
    _require(body, "prompt", (str, list), "a string or an array")
    return _build("text_completion", body)


def embeddings_call(body: dict[str, Any]) -> Call:
    require_model(body)
    _require(body, "input", (str, list), "a string or an array")
    return _build("embeddings", body, streams=False)


def moderation_call(body: dict[str, Any], default_model: str | None) -> Call:
    _require(body, "input", (str, list), "a string or an array")
    model = body.get("model") or default_model
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: no moderation model is configured as the default", param="model")
    return _build("moderation", body, streams=False, model=check_model(model))


def responses_call(body: dict[str, Any], wire: ResponsesWire) -> Call:
    """A Responses call; `wire` signs the ids of its answers and reads those sent back."""
    require_model(body)
    _require(body, "input", (str, list), "a string or an array")
    call = _build("responses", body, wire=wire)
    previous = body.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str):
            raise BadRequest("'previous_response_id' must be a string", param="previous_response_id")
        decoded = wire.ids.decode(previous)
        if decoded is not None:
            # A follow-up goes back to the deployment that holds the conversation (if it is one
            # of the group called: the router sees to that), with the upstream's own id restored.
            call.pinned_deployment, upstream_id = decoded
            call.body = {**call.body, "previous_response_id": upstream_id}
    return call


def messages_call(body: dict[str, Any]) -> Call:
    require_model(body)
    messages = _require(body, "messages", (list,), "a non-empty array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"'messages[{index}]' must be an object with role 'user' or 'assistant'",
                             param=f"messages[{index}]")
    if "max_tokens" in body and not isinstance(body["max_tokens"], int):
        raise BadRequest("'max_tokens' must be an integer", param="max_tokens")
    return _build("anthropic_messages", body, wire=ANTHROPIC)


def transcription_call(fields: dict[str, str], upload: Upload | None) -> Call:
    refuse_upstream_fields(fields)
    if upload is None:
        raise BadRequest("'file' is required: send the audio as a multipart file field", param="file")
    model = check_model(fields.get("model"))
    return Call("audio_transcription", model, {**fields, "file": upload})
