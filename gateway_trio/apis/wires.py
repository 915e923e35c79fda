"""How each route's answers look on the wire: stream framing, stream end, error bodies.

The pipeline is format-blind; each API (`apis/`) names its `Wire`, which its Calls use.  Chat and
text completions speak OpenAI's `data:` frames ending in `[DONE]`; /v1/messages and
/v1/responses speak typed events (`event: <type>`), whose type is the payload's first key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from typing import Any

import orjson

from gateway_trio.errors import BadRequest, GatewayError

log = logging.getLogger(__name__)

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
    """The Responses API; response ids are rewritten to name their deployment, signed by `ids`."""

    rewrites_ids = True

    def __init__(self, ids: ResponseIds) -> None:
        self.ids = ids

    def error_frame(self, error: GatewayError) -> bytes:
        body = {"type": "error", "code": error.code or str(error.status), "message": error.message, "param": error.param}
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"

    def rewrite_body(self, body: dict[str, Any], deployment_id: str) -> dict[str, Any]:
        if isinstance(body.get("id"), str):
            body["id"] = self.ids.encode(deployment_id, body["id"])
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
RAW = RawWire()


# --- response ids ---------------------------------------------------------------------------

RESPONSE_ID_PREFIX = "resp_"
# A signed id's bytes start with this: 0xC1 never starts valid UTF-8, and the unsigned ids of
# earlier versions are UTF-8 text, so the two formats cannot be mistaken for one another.
SIGNED = b"\xc1"
TAG_BYTES = 16  # 128 bits of HMAC-SHA256: forging one is out of reach, the id stays short
KEY_LABEL = b"gateway-trio response ids v1"


def response_id_key(secret: str | None, master_key: str | None) -> bytes:
    """The key response ids are signed with, which every instance of a fleet must share.

    `server.response_id_secret` when set; else one derived from the master key (which a fleet
    shares already, so ids survive restarts and reach any instance); else a random key of this
    process (`Gateway.run` says so in the log when it starts): its ids die with it and mean
    nothing to other workers.
    """
    source = secret or master_key
    if source:
        return hmac.digest(source.encode(), KEY_LABEL, "sha256")
    return secrets.token_bytes(32)


class ResponseIds:
    """`resp_<base64url(SIGNED + tag + deployment id NUL upstream id)>`: a follow-up's
    `previous_response_id` finds its deployment, and a client cannot forge or alter one."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, deployment_id: str, upstream_id: str) -> str:
        text = f"{deployment_id}\0{upstream_id}".encode()
        return RESPONSE_ID_PREFIX + _b64encode(SIGNED + self._tag(text) + text)

    def decode(self, response_id: str) -> tuple[str, str] | None:
        """(deployment id, upstream id) of an id we issued, or None for any other id (the
        upstream's own, passed on as it is).  An id in our signed format whose tag does not
        match was altered, or signed by another key: a 400, as no upstream could read it."""
        if not response_id.startswith(RESPONSE_ID_PREFIX):
            return None
        packed = _b64decode(response_id[len(RESPONSE_ID_PREFIX):])
        if packed is None:
            return None
        if not packed.startswith(SIGNED):
            return _unsigned(packed)
        tag, text = packed[1:1 + TAG_BYTES], packed[1 + TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(text)):
            raise BadRequest("'previous_response_id' was not issued by this gateway, or was altered",
                             param="previous_response_id")
        deployment_id, _, upstream_id = text.decode().partition("\0")
        return deployment_id, upstream_id

    def _tag(self, text: bytes) -> bytes:
        return hmac.digest(self._key, text, "sha256")[:TAG_BYTES]


def _unsigned(packed: bytes) -> tuple[str, str] | None:
    """An id of the unsigned format issued before ids were signed: `deployment id:upstream id`.
    Anyone can write one, so the router honours it only within the group called."""
    try:
        text = packed.decode()
    except UnicodeDecodeError:
        return None
    deployment_id, sep, upstream_id = text.partition(":")
    return (deployment_id, upstream_id) if sep and deployment_id and upstream_id else None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
