"""What every adapter does with an upstream's reply before trusting it: error texts made safe
to tell a client, and the one way a reply is called malformed (the upstream's fault, a 502).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from gateway_trio.errors import UpstreamError

MAX_ERROR_CHARS = 500

# Upstream error texts like to quote the (partly masked) key and link to account pages;
# neither may reach a client or a log.
_URL = re.compile(r"\b(?:https?|wss?)://\S+", re.IGNORECASE)
_SECRET = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-*]+"  # OpenAI/Anthropic-style keys
    r"|\bBearer\s+\S+"
    r"|\S*\*{3,}\S*"  # masked keys: sk-ab****wxyz
    r"|\b[A-Za-z0-9_\-]{32,}\b",  # long opaque tokens (Azure keys are 32 hex chars)
    re.IGNORECASE,
)


def client_safe(text: str) -> str:
    """`text` with URLs and anything key-like removed, cut to a readable length."""
    text = _SECRET.sub("<redacted>", _URL.sub("<url>", text))
    return text[:MAX_ERROR_CHARS]


def upstream_error_message(status: int, payload: bytes) -> str:
    """The `error.message` of an OpenAI- or Anthropic-shaped error body, else a generic line."""
    generic = f"upstream returned HTTP {status}"
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return generic
    message = error_text(body)
    return client_safe(message) if message else generic


def error_text(body: Any) -> str | None:
    """Both OpenAI (`{"error": {...}}`) and Anthropic (`{"type": "error", "error": {...}}`)
    keep the text in `error.message`; some compatible servers put a bare string in `error`."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        return message if isinstance(message, str) and message else None
    if isinstance(error, str) and error:
        return error
    return None


def malformed(what: str) -> UpstreamError:
    return UpstreamError(f"malformed upstream reply: {what}")


def parse_json_reply(payload: bytes, required: str, what: str) -> dict[str, Any]:
    """The JSON object of a successful answer, which must hold `required` to count as one:
    a list of objects for `choices`, `data` and `results`, a string for `text`.  Anything
    else (`"choices": null`) is the upstream's fault, a 502, not a 200 that breaks later."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise malformed("the body is not valid JSON") from None
    if not isinstance(body, dict) or required not in body:
        raise malformed(f"no {required!r} in the {what}")
    value = body[required]
    if required == "text":
        if not isinstance(value, str):
            raise malformed(f"{required!r} in the {what} is not a string")
    elif not is_object_list(value):
        raise malformed(f"{required!r} in the {what} is not a list of objects")
    return body


def is_object_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)
