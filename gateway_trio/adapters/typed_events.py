"""Passing the typed-event APIs through unchanged: Anthropic Messages and OpenAI Responses.

When the client speaks the upstream's own format there is nothing to translate; the adapter
only swaps in the deployment's model, watches the stream for usage, its end and errors, and
hands each event's JSON on.  The gateway frames such streams as `event: <type>` lines read
from each payload's first key, so a payload whose `"type"` is not first is re-serialised.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_trio.adapters.base import SSEDecoder
from gateway_trio.adapters.replies import client_safe, malformed
from gateway_trio.adapters.usage import add_messages_usage, chat_usage_from_messages, chat_usage_from_responses
from gateway_trio.errors import UpstreamError

_TYPE_FIRST = b'{"type"'


def passthrough_body(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """The client's body bound for the deployment's model, streaming exactly when we stream."""
    upstream = {**body, "model": model}
    if stream:
        upstream["stream"] = True
    else:
        upstream.pop("stream", None)
    return upstream


def parse_object(payload: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise malformed(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise malformed(f"{what} is not a JSON object")
    return value


def type_first(payload: bytes, event: dict[str, Any]) -> bytes:
    """`payload` as is when its first key is `type` (the common case), else re-serialised so."""
    if payload.lstrip().startswith(_TYPE_FIRST):
        return payload
    return orjson.dumps({"type": event["type"], **event})


class TypedEventDecoder(SSEDecoder):
    """Shared loop: parse SSE, check each event, let the subclass look at it, pass it on."""

    def feed_into(self, data: bytes, out: list[bytes]) -> None:
        for _name, payload in self._parser.feed(data):
            if payload == b"[DONE]":  # not part of either format, but harmless if a proxy adds it
                continue
            event = parse_object(payload, "a stream event")
            kind = event.get("type")
            if not isinstance(kind, str):
                raise malformed("a stream event has no 'type'")
            if kind == "error":
                raise UpstreamError(client_safe(_error_text(event)))
            self.observe(kind, event)
            out.append(type_first(payload, event))

    def observe(self, kind: str, event: dict[str, Any]) -> None:
        raise NotImplementedError


def _error_text(event: dict[str, Any]) -> str:
    # Anthropic nests the text in `error.message`; Responses puts `message` at the top.
    error = event.get("error")
    message = error.get("message") if isinstance(error, dict) else event.get("message")
    return message if isinstance(message, str) and message else "upstream reported an error mid-stream"


class MessagesPassthroughDecoder(TypedEventDecoder):
    """Anthropic Messages events as they came; usage from message_start and message_delta."""

    def __init__(self) -> None:
        super().__init__()
        self._raw_usage: dict[str, Any] = {}

    def observe(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "message_start":
            message = event.get("message")
            self._record(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            self._record(event.get("usage"))
        elif kind == "message_stop":
            self.done = True

    def _record(self, usage: Any) -> None:
        if usage is not None:
            add_messages_usage(self._raw_usage, usage)
            self.usage = chat_usage_from_messages(self._raw_usage)


# A Responses stream ends with exactly one of these; each carries the final response object.
RESPONSES_TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})


class ResponsesPassthroughDecoder(TypedEventDecoder):
    """OpenAI Responses events as they came; usage from the terminal event's response."""

    def observe(self, kind: str, event: dict[str, Any]) -> None:
        if kind not in RESPONSES_TERMINAL:
            return
        self.done = True
        response = event.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        if usage is not None:
            self.usage = chat_usage_from_responses(usage)
