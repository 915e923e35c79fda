"""How each route's answers look on the wire: stream framing, stream end, error bodies.

The pipeline is format-blind; a Call carries the `Wire` of the route it came from.  Chat and
text completions speak OpenAI's `data:` frames ending in `[DONE]`; /v1/messages and
/v1/responses speak typed events (`event: <type>`), whose type is the payload's first key.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from gateway_trio.errors import GatewayError

TYPE_PREFIX = b'{"type":"'
RESPONSE_EVENTS = (b"response.created", b"response.in_progress", b"response.completed",
                   b"response.failed", b"response.incomplete")


def event_type(payload: bytes) -> bytes:
    if payload.startswith(TYPE_PREFIX):
        return payload[len(TYPE_PREFIX):payload.index(b'"', len(TYPE_PREFIX))]
    return str(orjson.loads(payload).get("type", "message")).encode()


class Wire:
    """OpenAI's format: `data: {...}` frames, `data: [DONE]`, `{"error": {...}}` bodies."""

    done = b"data: [DONE]\n\n"
    rewrites_ids = False

    def frames(self, payloads: list[bytes]) -> bytes:
        return b"".join([b"data: " + p + b"\n\n" for p in payloads])

    def error_body(self, error: GatewayError) -> bytes:
        return error.openai_json()

    def error_frame(self, error: GatewayError) -> bytes:
        return b"data: " + error.openai_json() + b"\n\n"

    def rewrite_body(self, body: dict[str, Any], deployment_id: str) -> dict[str, Any]:
        return body

    def rewrite_payload(self, payload: bytes, deployment_id: str) -> bytes:
        return payload


class TypedEventWire(Wire):
    """Typed SSE events (`event: <type>`), ended by their own last event."""

    done = b""

    def frames(self, payloads: list[bytes]) -> bytes:
        return b"".join([b"event: " + event_type(p) + b"\ndata: " + p + b"\n\n" for p in payloads])


class AnthropicWire(TypedEventWire):
    def error_body(self, error: GatewayError) -> bytes:
        return orjson.dumps(error.anthropic_body())

    def error_frame(self, error: GatewayError) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(error.anthropic_body()) + b"\n\n"


class ResponsesWire(TypedEventWire):
    """The Responses API; response ids are rewritten to name their deployment."""

    rewrites_ids = True

    def error_frame(self, error: GatewayError) -> bytes:
        body = {"type": "error", "code": error.code or str(error.status), "message": error.message, "param": error.param}
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"

    def rewrite_body(self, body: dict[str, Any], deployment_id: str) -> dict[str, Any]:
        if isinstance(body.get("id"), str):
            body["id"] = encode_response_id(deployment_id, body["id"])
        return body

    def rewrite_payload(self, payload: bytes, deployment_id: str) -> bytes:
        if not payload.startswith(TYPE_PREFIX) or event_type(payload) not in RESPONSE_EVENTS:
            return payload
        event = orjson.loads(payload)
        response = event.get("response")
        if isinstance(response, dict):
            self.rewrite_body(response, deployment_id)
        return orjson.dumps(event)


class RawWire(Wire):
    """Pass-through routes: bytes as they came, nothing added."""

    done = b""

    def frames(self, payloads: list[bytes]) -> bytes:
        return b"".join(payloads)

    def error_frame(self, error: GatewayError) -> bytes:
        return b""


OPENAI = Wire()
ANTHROPIC = AnthropicWire()
RESPONSES = ResponsesWire()
RAW = RawWire()


def encode_response_id(deployment_id: str, upstream_id: str) -> str:
    """`resp_<base64url(deployment id : upstream id)>`, so a follow-up finds its deployment."""
    packed = base64.urlsafe_b64encode(f"{deployment_id}:{upstream_id}".encode()).rstrip(b"=")
    return "resp_" + packed.decode()


def decode_response_id(response_id: str) -> tuple[str, str] | None:
    """(deployment id, upstream id) of an id we issued, or None for anything else."""
    if not response_id.startswith("resp_"):
        return None
    packed = response_id[len("resp_"):]
    try:
        text = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    deployment_id, sep, upstream_id = text.partition(":")
    return (deployment_id, upstream_id) if sep and deployment_id and upstream_id else None
