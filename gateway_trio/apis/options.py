"""LiteLLM's request parameters, interpreted by the gateway and never forwarded.

Clients written for the LiteLLM proxy put the proxy's own options in the request body
(`fallbacks`, `num_retries`, `timeout`, `mock_response`, `metadata.tags`, `cache`, ...) and in
headers (`x-litellm-timeout`, ...).  A real OpenAI upstream answers 400 to any of them, so they
are taken out of the body here, once, when the request is parsed, and kept on the `Call`: the
tags and metadata for records and hooks, the routing ones as its `Overrides` for dispatch,
`drop_params` for the adapters.  A bad value is a 400 that names the field (or the header).

Where body and header both set one, the body wins: it is the request's own, while headers are
often a client's defaults.  Tags from both are kept.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import orjson

from gateway_trio.apis.checks import MAX_MODEL_CHARS
from gateway_trio.calls import NO_OVERRIDES, Call, Overrides
from gateway_trio.errors import BadRequest

# The routing options of `Overrides`, by body field.
ROUTING_FIELDS = (
    "fallbacks",
    "context_window_fallbacks",
    "num_retries",
    "timeout",
    "stream_timeout",
    "mock_response",
    "mock_testing_fallbacks",
    "mock_testing_context_fallbacks",
)
# Every body field the gateway consumes: none of them is sent upstream.
GATEWAY_FIELDS = frozenset(
    {
        "guardrails",
        "metadata",
        "litellm_metadata",
        "tags",
        "cache",
        "caching",
        "drop_params",
        *ROUTING_FIELDS,
    }
)
# More retries than this per request is a mistake or an attack on the upstream: capped.
MAX_NUM_RETRIES = 10
MAX_FALLBACKS = 16
# Request headers that set the same options: (option, the gateway's name, LiteLLM's name).
HEADERS = (
    ("timeout", "x-gateway-timeout", "x-litellm-timeout"),
    ("stream_timeout", "x-gateway-stream-timeout", "x-litellm-stream-timeout"),
    ("num_retries", "x-gateway-num-retries", "x-litellm-num-retries"),
    ("tags", "x-gateway-tags", "x-litellm-tags"),
)
HEADER_NAMES = frozenset(name for _, *names in HEADERS for name in names)
# Form fields (multipart bodies carry strings only) and how they are read before the checks.
FORM_JSON = frozenset({"metadata", "litellm_metadata", "cache"})
FORM_LISTS = frozenset({"fallbacks", "context_window_fallbacks", "tags", "guardrails"})
FORM_NUMBERS = frozenset({"num_retries", "timeout", "stream_timeout"})
FORM_FLAGS = frozenset({"caching", "drop_params", "mock_testing_fallbacks", "mock_testing_context_fallbacks"})


def take_options(call: Call) -> None:
    """Move the gateway's own fields from the call's body to the call (a new body without them).

    Added to what the call already holds, so it also serves a body a pre-call hook returned
    (LiteLLM's hooks may set `mock_response`, `fallbacks` or `metadata` in `data`): what that
    body sets wins, tags and metadata are merged, and still nothing of it goes upstream.
    """
    body = call.body
    if body.keys().isdisjoint(GATEWAY_FIELDS):
        return
    metadata = _object(body, "metadata")
    litellm_metadata = _object(body, "litellm_metadata")
    tags = _joined(
        _strings(body.get("tags"), "tags"),
        _strings(metadata.get("tags"), "metadata.tags"),
        _strings(litellm_metadata.get("tags"), "litellm_metadata.tags"),
    )
    guardrails = _joined(
        _strings(body.get("guardrails"), "guardrails"),
        _strings(metadata.get("guardrails"), "metadata.guardrails"),
        _strings(litellm_metadata.get("guardrails"), "litellm_metadata.guardrails"),
    )
    kept = {k: v for k, v in {**metadata, **litellm_metadata}.items() if k not in ("tags", "guardrails")}
    if "cache" in body:  # accepted and recorded; they act once the response cache exists
        kept["cache"] = _object(body, "cache")
    if "caching" in body:
        kept["caching"] = _flag(body["caching"], "caching")
    if "drop_params" in body:
        call.drop_params = _flag(body["drop_params"], "drop_params")
    call.metadata = {**call.metadata, **kept} if call.metadata else kept
    call.tags = _joined(call.tags, tags)
    call.requested_guardrails = _joined(call.requested_guardrails, guardrails)
    if not body.keys().isdisjoint(ROUTING_FIELDS):
        asked = routing_overrides(body)
        if call.overrides is not NO_OVERRIDES:
            set_here = {f.name: getattr(asked, f.name) for f in dataclasses.fields(asked)}
            asked = dataclasses.replace(call.overrides, **{k: v for k, v in set_here.items() if v is not None})
        call.overrides = asked
    call.body = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS}


def routing_overrides(body: Mapping[str, Any]) -> Overrides:
    """The `Overrides` a body's routing fields ask for, checked."""
    num_retries = body.get("num_retries")
    return Overrides(
        fallbacks=_model_names(body.get("fallbacks"), "fallbacks"),
        context_window_fallbacks=_model_names(body.get("context_window_fallbacks"), "context_window_fallbacks"),
        num_retries=None if num_retries is None else _retries(num_retries, "num_retries"),
        timeout_s=_seconds(body.get("timeout"), "timeout"),
        stream_timeout_s=_seconds(body.get("stream_timeout"), "stream_timeout"),
        mock_response=_mock_text(body.get("mock_response")),
        mock_failure=_mock_failure(body),
    )


def apply_headers(call: Call) -> None:
    """Add the options the request's headers set (lower-cased names) where the body set none."""
    headers = call.request_headers
    if headers.keys().isdisjoint(HEADER_NAMES):
        return
    changes: dict[str, Any] = {}
    for option, ours, litellm in HEADERS:
        name = ours if ours in headers else litellm
        value = headers.get(name)
        if value is None:
            continue
        if option == "tags":
            call.tags = _joined(call.tags, [tag.strip() for tag in value.split(",") if tag.strip()])
        elif option == "num_retries":
            changes["num_retries"] = _retries(_number(value, name), name)
        else:
            changes[f"{option}_s"] = _seconds(_number(value, name), name)
    # The body's own value wins over a header's.
    changes = {field: value for field, value in changes.items() if getattr(call.overrides, field) is None}
    if changes:
        call.overrides = dataclasses.replace(call.overrides, **changes)


def form_values(fields: Mapping[str, str]) -> dict[str, Any]:
    """A multipart body's fields with the gateway's own read into JSON values, for `take_options`:
    objects as JSON, lists as JSON arrays or comma-separated names, numbers and flags as such."""
    if fields.keys().isdisjoint(GATEWAY_FIELDS):
        return dict(fields)
    values: dict[str, Any] = dict(fields)
    for name in GATEWAY_FIELDS & fields.keys():
        raw = fields[name]
        if name in FORM_JSON or (name in FORM_LISTS and raw.lstrip().startswith("[")):
            try:
                values[name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise BadRequest(f"'{name}' must be JSON in a form field", param=name) from None
        elif name in FORM_LISTS:
            values[name] = [item.strip() for item in raw.split(",") if item.strip()]
        elif name in FORM_NUMBERS:
            values[name] = _number(raw, name)
        elif name in FORM_FLAGS:
            values[name] = {"true": True, "false": False}.get(raw.strip().lower(), raw)
    return values


# --- the checks -------------------------------------------------------------------------------


def _object(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"'{name}' must be an object", param=name)
    return value


def _strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"'{name}' must be an array of strings", param=name)
    return value


def _joined(*lists: list[str]) -> list[str]:
    """The lists' items in order, each once."""
    if len(lists) == 1 or not any(lists[1:]):
        return list(lists[0])
    return list(dict.fromkeys(item for items in lists for item in items))


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be a boolean", param=name)
    return value


def _model_names(value: Any, name: str) -> tuple[str, ...] | None:
    """Model names: strings, or LiteLLM SDK's `{"model": name}` (with nothing else in it)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_FALLBACKS:
        raise BadRequest(f"'{name}' must be an array of at most {MAX_FALLBACKS} model names", param=name)
    names = []
    for index, item in enumerate(value):
        if isinstance(item, dict) and item.keys() == {"model"}:
            item = item["model"]
        elif isinstance(item, dict):
            raise BadRequest(
                f"'{name}[{index}]' may only name a model: per-fallback parameters are not supported",
                param=f"{name}[{index}]",
            )
        if not isinstance(item, str) or not item or len(item) > MAX_MODEL_CHARS or not item.isprintable():
            raise BadRequest(f"'{name}[{index}]' must be a model name", param=f"{name}[{index}]")
        names.append(item)
    return tuple(names)


def _number(raw: str, name: str) -> float | int:
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise BadRequest(f"'{name}' must be a number", param=name) from None


def _seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise BadRequest(f"'{name}' must be a positive number of seconds", param=name)
    return float(value)


def _retries(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"'{name}' must be a non-negative integer", param=name)
    return min(value, MAX_NUM_RETRIES)


def _mock_failure(body: Mapping[str, Any]) -> str | None:
    """Which failure LiteLLM's `mock_testing_*` flags ask of the requested group, if any."""
    failure = None
    for name, kind in (("mock_testing_fallbacks", "error"), ("mock_testing_context_fallbacks", "context_window")):
        if name in body and _flag(body[name], name):
            failure = failure or kind
    return failure


def _mock_text(value: Any) -> str | None:
    """The text of `mock_response`: a string, or an assistant message's `content`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    raise BadRequest("'mock_response' must be a string or an object with a string 'content'", param="mock_response")
