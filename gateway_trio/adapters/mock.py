"""The built-in `mock` provider: an OpenAI upstream that lives inside the process.

It answers through an httpx transport rather than a shortcut in the pipeline, so a mock
deployment exercises exactly the code a real one does (request building, SSE decoding,
usage accounting) while needing no network and no key.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import re
import struct
import time
import uuid
from collections.abc import AsyncIterator
from email.parser import BytesParser
from typing import Any

import httpx
import orjson

from gateway_trio.adapters.chat_chunks import chunk_envelope
from gateway_trio.adapters.openai import OpenAIAdapter
from gateway_trio.adapters.responses_stream import ResponsesThroughChat
from gateway_trio.deployment import Deployment

MOCK_API_BASE = "http://mock.invalid/v1"  # .invalid never resolves, should anything try

_WORD = re.compile(r"\S+\s*")


class MockAdapter(ResponsesThroughChat, OpenAIAdapter):
    name = "mock"

    def api_base(self, deployment: Deployment) -> str:
        return (deployment.api_base or MOCK_API_BASE).rstrip("/")

    def local_transport(self, deployment: Deployment) -> httpx.AsyncBaseTransport:
        return MockUpstream(deployment.mock_response)

    # /v1/responses goes through chat (ResponsesThroughChat), and /v1/messages through the
    # OpenAI adapter's translation, so the in-process upstream needs only chat endpoints.


class MockUpstream(httpx.AsyncBaseTransport):
    """Answers OpenAI's POST endpoints the way OpenAI does; anything else is a 404.

    Chat and text completions echo the last user message (or prompt) unless the deployment
    sets `mock_response`; embeddings, moderations, transcriptions and images are deterministic, so
    tests can compare answers across calls.
    """

    def __init__(self, mock_response: str | None) -> None:
        self.mock_response = mock_response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        route = next((name for suffix, name in _ROUTES if path.endswith(suffix)), None)
        if request.method != "POST" or route is None:
            return _error(404, f"no mock route for {request.method} {path}")
        payload = await request.aread()
        if route == "transcription":
            return _transcription(request.headers.get("content-type", ""), payload)
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        if route == "chat":
            return self._chat(body)
        if route == "text_completion":
            return self._text_completion(body)
        if route == "embeddings":
            return _embeddings(body)
        if route == "image_generation":
            return _images(body)
        return _moderations(body)

    def _chat(self, body: dict[str, Any]) -> httpx.Response:
        if not isinstance(body.get("messages"), list):
            return _error(400, "messages: must be a list")
        content = self.mock_response if self.mock_response is not None else _last_user_text(body["messages"])
        prompt_tokens = sum(_count_words(_text(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
        return _answer(_Reply(str(body.get("model") or "mock"), content, _usage(prompt_tokens, content)), body)

    def _text_completion(self, body: dict[str, Any]) -> httpx.Response:
        prompt = _prompt_text(body.get("prompt"))
        if prompt is None:
            return _error(400, "prompt: must be a string or a list of strings")
        content = self.mock_response if self.mock_response is not None else prompt
        reply = _TextReply(str(body.get("model") or "mock"), content, _usage(_count_words(prompt), content))
        return _answer(reply, body)


_ROUTES = (  # by path suffix; chat before its own suffix `/completions`
    ("/chat/completions", "chat"),
    ("/completions", "text_completion"),
    ("/embeddings", "embeddings"),
    ("/moderations", "moderation"),
    ("/audio/transcriptions", "transcription"),
    ("/images/generations", "image_generation"),
)


def _usage(prompt_tokens: int, content: str) -> dict[str, int]:
    completion_tokens = _count_words(content)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _answer(reply: _Reply, body: dict[str, Any]) -> httpx.Response:
    if body.get("stream"):
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_EventStream(reply.events(include_usage))
        )
    return _json(200, reply.completion())


class _Reply:
    """One mock chat answer, rendered either as a completion or as a chunk sequence."""

    object_name = "chat.completion"
    chunk_object = "chat.completion.chunk"
    id_prefix = "chatcmpl-mock-"

    def __init__(self, model: str, content: str, usage: dict[str, int]) -> None:
        self.id = f"{self.id_prefix}{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model
        self.content = content
        self.usage = usage

    def completion(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": self.object_name,
            "created": self.created,
            "model": self.model,
            "choices": [self._whole_choice()],
            "usage": self.usage,
        }

    def events(self, include_usage: bool) -> list[bytes]:
        chunks = [self._envelope([choice]) for choice in self._choices()]
        if include_usage:
            # As OpenAI does: `usage: null` on every chunk, then one usage-only chunk.
            for chunk in chunks:
                chunk["usage"] = None
            chunks.append(self._envelope([], usage=self.usage))
        return [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks] + [b"data: [DONE]\n\n"]

    def _whole_choice(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": self.content, "refusal": None}
        return {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}

    def _choices(self) -> list[dict[str, Any]]:
        deltas = [{"role": "assistant", "content": ""}, *({"content": piece} for piece in _pieces(self.content)), {}]
        last = len(deltas) - 1
        return [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": "stop" if i == last else None}
            for i, delta in enumerate(deltas)
        ]

    def _envelope(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return chunk_envelope(self.id, self.chunk_object, self.created, self.model, choices, **extra)


class _TextReply(_Reply):
    """A legacy text completion: `choices[].text`, and stream chunks of the same object type."""

    object_name = chunk_object = "text_completion"
    id_prefix = "cmpl-mock-"

    def _whole_choice(self) -> dict[str, Any]:
        return {"text": self.content, "index": 0, "logprobs": None, "finish_reason": "stop"}

    def _choices(self) -> list[dict[str, Any]]:
        texts = [*_pieces(self.content), ""]
        last = len(texts) - 1
        return [
            {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop" if i == last else None}
            for i, text in enumerate(texts)
        ]


# -- embeddings, moderations, transcriptions ---------------------------------------------------

EMBEDDING_DIMENSIONS = 8
MAX_EMBEDDING_DIMENSIONS = 256
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors",
    "violence", "violence/graphic",
)
FLAG_WORD = "flag-me"  # the one input the mock moderation flags, so tests can provoke it


def _embeddings(body: dict[str, Any]) -> httpx.Response:
    inputs = _embedding_inputs(body.get("input"))
    if inputs is None:
        return _error(400, "input: must be a non-empty string, token array, or list of either")
    dimensions = body.get("dimensions")
    sized = isinstance(dimensions, int) and 0 < dimensions <= MAX_EMBEDDING_DIMENSIONS
    size = dimensions if sized else EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    tokens = 0
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))  # one "word" per token
        tokens += _count_words(text)
        vector = _vector(text, size)
        encoded: Any = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    model = str(body.get("model") or "mock-embedding")
    return _json(200, {"object": "list", "data": data, "model": model, "usage": usage})


def _embedding_inputs(raw: Any) -> list[str | list[int]] | None:
    """The inputs of an embeddings body (a string, a token array, or a list of either)."""
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        return [raw] if raw else None
    if isinstance(raw, list) and raw and all(isinstance(item, (str, list)) for item in raw):
        return raw
    return None


def _vector(text: str, size: int) -> list[float]:
    """Values in [-1, 1) derived from a hash of `text`: equal texts, equal vectors."""
    digest = b""
    counter = 0
    while len(digest) < size:
        digest += hashlib.blake2b(f"{counter}:{text}".encode(), digest_size=64).digest()
        counter += 1
    return [round(byte / 128.0 - 1.0, 6) for byte in digest[:size]]


def _moderations(body: dict[str, Any]) -> httpx.Response:
    raw = body.get("input")
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        texts = raw
    elif isinstance(raw, list) and raw and all(isinstance(item, dict) for item in raw):
        texts = [_text(raw)]  # multimodal parts are moderated as one input, as OpenAI does
    else:
        return _error(400, "input: must be a string, a list of strings or a list of parts")
    results = []
    for text in texts:
        flagged = FLAG_WORD in text
        categories = {name: flagged and name == "harassment" for name in MODERATION_CATEGORIES}
        scores = {name: 0.99 if value else 0.0001 for name, value in categories.items()}
        results.append({"flagged": flagged, "categories": categories, "category_scores": scores})
    model = str(body.get("model") or "omni-moderation-latest")
    return _json(200, {"id": f"modr-mock-{uuid.uuid4().hex[:24]}", "model": model, "results": results})


# A 1x1 transparent PNG: the one image the mock draws, whatever it is asked for.
_PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000b49444154789c6360000200000500017a5eab3f0000000049454e44ae426082"
)).decode()


def _images(body: dict[str, Any]) -> httpx.Response:
    """`n` images (URLs that never resolve, or the PNG above) whose revised prompt is the prompt."""
    prompt = body.get("prompt")
    n = body.get("n", 1)
    if not isinstance(prompt, str) or not prompt:
        return _error(400, "prompt: must be a non-empty string")
    if type(n) is not int or not 1 <= n <= 10:
        return _error(400, "n: must be an integer from 1 to 10")
    as_base64 = body.get("response_format") == "b64_json"
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
    data = [{"revised_prompt": prompt, **({"b64_json": _PNG} if as_base64 else
                                          {"url": f"https://images.mock.invalid/{digest}-{i}.png"})}
            for i in range(n)]
    return _json(200, {"created": int(time.time()), "data": data})


def _transcription(content_type: str, payload: bytes) -> httpx.Response:
    if not content_type.lower().startswith("multipart/form-data"):
        return _error(400, "expected a multipart/form-data body")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + payload
    )
    fields: dict[str, str] = {}
    upload: tuple[str, bytes] | None = None
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if name == "file":
            upload = (part.get_filename() or "", data)
        elif isinstance(name, str):
            fields[name] = data.decode("utf-8", "replace")
    if upload is None:
        return _error(400, "file: is required")
    filename, audio = upload
    text = f"transcribed {len(audio)} bytes from {filename}"
    response_format = fields.get("response_format", "json")
    if response_format == "text":
        return _plain(text + "\n")
    if response_format == "srt":
        return _plain(f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n\n")
    if response_format == "vtt":
        return _plain(f"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n{text}\n\n")
    if response_format == "verbose_json":
        return _json(200, {"task": "transcribe", "language": "english", "duration": 1.0, "text": text, "segments": []})
    return _json(200, {"text": text})


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


def _prompt_text(prompt: Any) -> str | None:
    """A completions prompt as text: a string, or several joined; token arrays as their numbers."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(item, str) for item in prompt):
        return "\n".join(prompt)
    if isinstance(prompt, list) and all(isinstance(item, int) for item in prompt):
        return " ".join(map(str, prompt))
    return None


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _json(status: int, body: dict[str, Any]) -> httpx.Response:
    return _body(status, orjson.dumps(body), "application/json")


def _plain(text: str) -> httpx.Response:
    return _body(200, text.encode(), "text/plain; charset=utf-8")


def _body(status: int, content: bytes, content_type: str) -> httpx.Response:
    # A stream rather than `content=`: httpx pre-reads `content`, and the caller must be able
    # to read this body any way it reads a network one (`aiter_raw` included).
    headers = {"content-type": content_type, "content-length": str(len(content))}
    return httpx.Response(status, headers=headers, stream=_EventStream([content]))


def _error(status: int, message: str) -> httpx.Response:
    return _json(status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
