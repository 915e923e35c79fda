"""The checks every API's parser shares: a JSON object of bounded depth, no field that would
choose the upstream, a model name safe to route on, the stream flags (the gateway's own
fields are `options`').

Checks are plain code rather than a pydantic model per request: they run on every call, and
they must name the offending field in the error.
"""

from __future__ import annotations

from typing import Any, Mapping

import orjson

from gateway_trio.adapters.depth import MAX_JSON_DEPTH, too_deep
from gateway_trio.errors import BadRequest

# Nothing a client sends may change where the upstream call goes or what credentials it uses
# (LiteLLM's `user_config` is a whole router of the client's own: deployments, bases and keys).
FORBIDDEN_FIELDS = ("api_base", "api_key", "base_url", "extra_headers", "user_config")
# Model names travel into headers, logs and upstream URLs: at most this long, printable only.
MAX_MODEL_CHARS = 256


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


def require_field(body: dict[str, Any], name: str, kinds: tuple[type, ...], what: str) -> Any:
    """`body[name]`, which must be one of `kinds` (and, if a string or list, not empty)."""
    value = body.get(name)
    if not isinstance(value, kinds) or (isinstance(value, (str, list)) and not value):
        raise BadRequest(f"'{name}' is required and must be {what}", param=name)
    return value
