"""The built-in `mock` provider: an OpenAI upstream that lives inside the process.

It answers through an httpx transport rather than a shortcut in the pipeline, so a mock
deployment exercises exactly the code a real one does (request building, SSE decoding,
usage accounting) while needing no network and no key.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from gateway_trio.deployment import Deployment
from gateway_trio.providers.openai import OpenAIAdapter

MOCK_API_BASE = "http://mock.invalid/v1"  # .invalid never resolves, should anything try

_WORD = re.compile(r"\S+\s*")


class MockAdapter(OpenAIAdapter):
    name = "mock"

    def api_base(self, deployment: Deployment) -> str:
        return (deployment.api_base or MOCK_API_BASE).rstrip("/")

    def local_transport(self, deployment: Deployment) -> httpx.AsyncBaseTransport:
        return MockUpstream(deployment.mock_response)


class MockUpstream(httpx.AsyncBaseTransport):
    """Answers `POST …/chat/completions` the way OpenAI does; anything else is a 404."""

    def __init__(self, mock_response: str | None) -> None:
        self.mock_response = mock_response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return _error(404, f"no mock route for {request.method} {request.url.path}")
        try:
            body = orjson.loads(await request.aread())
        except orjson.JSONDecodeError:
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "messages: must be a list")
        content = self.mock_response if self.mock_response is not None else _last_user_text(body["messages"])
        prompt_tokens = sum(_count_words(_text(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
        completion_tokens = _count_words(content)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        reply = _Reply(str(body.get("model") or "mock"), content, usage)
        if body.get("stream"):
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=_EventStream(reply.events(include_usage))
            )
        return _json(200, reply.completion())


class _Reply:
    """One mock answer, rendered either as a completion or as a chunk sequence."""

    def __init__(self, model: str, content: str, usage: dict[str, int]) -> None:
        self.id = f"chatcmpl-mock-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model
        self.content = content
        self.usage = usage

    def completion(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": self.content, "refusal": None}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": self.usage,
        }

    def events(self, include_usage: bool) -> list[bytes]:
        chunks = [self._chunk({"role": "assistant", "content": ""})]
        chunks += [self._chunk({"content": piece}) for piece in _pieces(self.content)]
        chunks.append(self._chunk({}, "stop"))
        if include_usage:
            # As OpenAI does: `usage: null` on every chunk, then one usage-only chunk.
            for chunk in chunks:
                chunk["usage"] = None
            chunks.append(self._envelope([], usage=self.usage))
        return [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks] + [b"data: [DONE]\n\n"]

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._envelope([choice])

    def _envelope(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }


class _EventStream(httpx.AsyncByteStream):
    """A body handed out piece by piece, as a socket would."""

    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self._events:
            yield event


def _pieces(content: str) -> list[str]:
    """One piece per word with its trailing spaces, so the pieces join back to `content`."""
    pieces = _WORD.findall(content)
    leading = content[: len(content) - len(content.lstrip())]
    if leading:
        pieces = [leading + pieces[0], *pieces[1:]] if pieces else [leading]
    return pieces


def _count_words(text: str) -> int:
    return len(text.split())


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _json(status: int, body: dict[str, Any]) -> httpx.Response:
    # A stream rather than `content=`: httpx pre-reads `content`, and the caller must be able
    # to read this body any way it reads a network one (`aiter_raw` included).
    content = orjson.dumps(body)
    headers = {"content-type": "application/json", "content-length": str(len(content))}
    return httpx.Response(status, headers=headers, stream=_EventStream([content]))


def _error(status: int, message: str) -> httpx.Response:
    return _json(status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
