"""The OpenAI chat-completions adapter, also used for any OpenAI-compatible server.

Our internal format *is* OpenAI's, so the work here is mostly to leave bytes alone: stream
chunks are parsed once (to see usage and errors) and forwarded as the upstream sent them.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson

from gateway_trio.deployment import Deployment
from gateway_trio.errors import UpstreamError
from gateway_trio.providers.base import AdapterBase, UpstreamRequest
from gateway_trio.providers.sse import SSEParser

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
    message = _error_text(body)
    return client_safe(message) if message else generic


def _error_text(body: Any) -> str | None:
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


class OpenAIStreamDecoder:
    """Watches an OpenAI stream for usage and errors; passes every other chunk through untouched."""

    __slots__ = ("usage", "usage_chunk", "done", "_parser")

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None
        # The usage-only chunk is held back: the pipeline forwards it only to clients that
        # asked for `stream_options.include_usage`, while we always ask the upstream for it.
        self.usage_chunk: bytes | None = None
        self.done = False
        self._parser = SSEParser()

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for event, payload in self._parser.feed(data):
            if payload == b"[DONE]":
                self.done = True
                continue
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise malformed("a stream chunk is not valid JSON") from None
            if not isinstance(chunk, dict):
                raise malformed("a stream chunk is not a JSON object")
            if chunk.get("error") or event == b"error":
                message = _error_text(chunk) or "upstream reported an error mid-stream"
                raise UpstreamError(client_safe(message))
            usage = chunk.get("usage")
            if usage:
                self.usage = usage
                if not chunk.get("choices"):
                    self.usage_chunk = payload
                    continue
            out.append(payload)
        return out


class OpenAIAdapter(AdapterBase):
    """OpenAI `/chat/completions`, and servers that copy it (vLLM, LM Studio, Ollama)."""

    name = "openai"

    def chat_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        upstream = {**body, "model": model}
        if stream:
            upstream["stream"] = True
            options = upstream.get("stream_options")
            upstream["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        else:
            # OpenAI refuses stream_options on a non-streaming call.
            upstream.pop("stream_options", None)
            if "stream" in upstream:
                upstream["stream"] = False
        headers = {"content-type": "application/json", **self.auth_headers(deployment), **deployment.headers}
        return UpstreamRequest("POST", self.chat_url(deployment, model), headers, orjson.dumps(upstream))

    def chat_url(self, deployment: Deployment, model: str) -> str:
        return f"{self.api_base(deployment)}/chat/completions"

    def api_base(self, deployment: Deployment) -> str:
        if not deployment.api_base:
            raise UpstreamError(f"deployment {deployment.id} of {deployment.group!r} has no api_base")
        return deployment.api_base.rstrip("/")

    def auth_headers(self, deployment: Deployment) -> dict[str, str]:
        return {"authorization": f"Bearer {deployment.api_key}"} if deployment.api_key else {}

    def chat_response(self, payload: bytes, model: str) -> dict[str, Any]:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise malformed("the body is not valid JSON") from None
        if not isinstance(body, dict) or "choices" not in body:
            raise malformed("no 'choices' in the chat completion")
        return body

    def chat_stream(self, model: str) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def error_message(self, status: int, payload: bytes) -> str:
        return upstream_error_message(status, payload)

    def local_transport(self, deployment: Deployment) -> httpx.AsyncBaseTransport | None:
        """Real upstreams are reached over the network; only the mock answers in-process."""
        return None
