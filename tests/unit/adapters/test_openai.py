"""The OpenAI adapter against OpenAI's real wire format, through httpx.MockTransport."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from wire_exchange import send

from gateway_trio.adapters import PROVIDERS, adapter_for
from gateway_trio.adapters.openai import OpenAIAdapter
from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import UpstreamError

API_KEY = "sk-test-0123456789abcdefghijklmnop"

COMPLETION = b"""{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {
      "index": 0,
      "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": null, "annotations": []},
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19, "completion_tokens": 7, "total_tokens": 26,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default",
  "system_fingerprint": "fp_06737a9306"
}"""

CHUNKS = [
    b'{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}',
    b'{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}',
    b'{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{"content":" there \\u00e9"},"logprobs":null,"finish_reason":null}],"usage":null}',
    b'{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}',
]
USAGE_CHUNK = b'{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}'
STREAM = b"".join(b"data: " + c + b"\n\n" for c in [*CHUNKS, USAGE_CHUNK]) + b"data: [DONE]\n\n"

BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "temperature": 0.2,
}


def deployment(**overrides: Any) -> Deployment:
    fields = {"name": "gpt-4o-mini", "model": "openai/gpt-4o-mini", "api_key": API_KEY, **overrides}
    return Deployment.from_config(ModelConfig(**fields))


async def test_request_as_the_upstream_sees_it() -> None:
    dep = deployment(api_base="https://llm.example.com/v1/", headers={"x-team": "blue"})
    req = OpenAIAdapter().chat_request(dep, BODY, "gpt-4o-mini-2024-07-18", stream=False)
    seen, response = await send(req, httpx.Response(200, content=COMPLETION))
    assert seen.method == "POST"
    assert str(seen.url) == "https://llm.example.com/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {API_KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-team"] == "blue"
    sent = orjson.loads(seen.content)
    assert sent == {**BODY, "model": "gpt-4o-mini-2024-07-18"}
    assert "stream_options" not in sent
    assert OpenAIAdapter().chat_response(response.content, "gpt-4o-mini")["choices"][0]["message"]["content"] == (
        "Hello! How can I help?"
    )


async def test_default_api_base_and_no_key_means_no_authorization() -> None:
    req = OpenAIAdapter().chat_request(deployment(api_key=None), BODY, "gpt-4o-mini", stream=False)
    seen, _ = await send(req, httpx.Response(200, content=COMPLETION))
    assert str(seen.url) == "https://api.openai.com/v1/chat/completions"
    assert "authorization" not in seen.headers


async def test_streaming_request_always_asks_for_usage() -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_obfuscation": False}}
    req = OpenAIAdapter().chat_request(deployment(), body, "gpt-4o-mini", stream=True)
    seen, _ = await send(req, httpx.Response(200, content=STREAM))
    sent = orjson.loads(seen.content)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert body["stream_options"] == {"include_obfuscation": False}  # the caller's body is untouched


def test_non_streaming_request_drops_stream_options() -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    sent = orjson.loads(OpenAIAdapter().chat_request(deployment(), body, "m", stream=False).content)
    assert sent["stream"] is False
    assert "stream_options" not in sent


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"object": "chat.completion"}'])
def test_malformed_completion(payload: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed upstream reply"):
        OpenAIAdapter().chat_response(payload, "gpt-4o-mini")


def decode(pieces: list[bytes]) -> tuple[list[bytes], Any]:
    decoder = OpenAIAdapter().chat_stream("gpt-4o-mini")
    out: list[bytes] = []
    for piece in pieces:
        out.extend(decoder.feed(piece))
    return out, decoder


class Pieces(httpx.AsyncByteStream):
    """A response body that arrives in the given reads, like a socket would deliver it."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self):  # type: ignore[override]
        for piece in self.pieces:
            yield piece


async def test_stream_passes_chunks_through_and_holds_back_usage() -> None:
    reads = [STREAM[i : i + 37] for i in range(0, len(STREAM), 37)]
    reply = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Pieces(reads))
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: reply)) as client:
        async with client.stream("POST", "https://api.openai.com/v1/chat/completions") as response:
            raw = [piece async for piece in response.aiter_raw()]
    chunks, decoder = decode(raw)
    assert chunks == CHUNKS  # the upstream's own bytes, not re-serialized
    assert decoder.usage_chunk == USAGE_CHUNK
    assert decoder.usage["total_tokens"] == 12
    assert decoder.done


@pytest.mark.parametrize("crlf", [False, True])
def test_stream_splits_do_not_matter(crlf: bool) -> None:
    data = STREAM.replace(b"\n", b"\r\n") if crlf else STREAM
    whole, whole_decoder = decode([data])
    single, single_decoder = decode([data[i : i + 1] for i in range(len(data))])
    assert whole == single == CHUNKS
    assert whole_decoder.usage == single_decoder.usage
    assert whole_decoder.usage_chunk == single_decoder.usage_chunk == USAGE_CHUNK
    assert single_decoder.done


def test_stream_not_done_before_done_marker() -> None:
    chunks, decoder = decode([STREAM[: STREAM.index(b"data: [DONE]")]])
    assert chunks == CHUNKS and not decoder.done


def test_usage_on_a_choice_chunk_is_kept_and_forwarded() -> None:
    # vLLM with continuous usage stats puts usage on every chunk.
    chunk = b'{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
    chunks, decoder = decode([b"data: " + chunk + b"\n\n"])
    assert chunks == [chunk]
    assert decoder.usage == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    assert decoder.usage_chunk is None


def test_stream_error_chunk_raises_with_its_message() -> None:
    error = b'data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}\n\n'
    with pytest.raises(UpstreamError, match="The server had an error"):
        decode([b"data: " + CHUNKS[0] + b"\n\n" + error])


@pytest.mark.parametrize("bad", [b'data: {"id": "chatcmpl-x", "choi\n\n', b"data: [1, 2]\n\n"])
def test_malformed_chunk_raises(bad: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed upstream reply: a stream chunk"):
        decode([b"data: " + CHUNKS[0] + b"\n\n", bad])


def test_error_message_openai_and_anthropic_shapes() -> None:
    adapter = OpenAIAdapter()
    openai = b'{"error":{"message":"Rate limit reached for gpt-4o-mini.","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
    anthropic = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    assert adapter.error_message(429, openai) == "Rate limit reached for gpt-4o-mini."
    assert adapter.error_message(529, anthropic) == "Overloaded"
    assert adapter.error_message(502, b"<html>Bad Gateway</html>") == "upstream returned HTTP 502"
    assert adapter.error_message(500, b'{"detail": "boom"}') == "upstream returned HTTP 500"
    long = orjson.dumps({"error": {"message": "too long " * 300}})
    assert len(adapter.error_message(400, long)) == 500


def test_error_message_never_carries_keys_or_urls() -> None:
    payload = orjson.dumps(
        {
            "error": {
                "message": f"Incorrect API key provided: {API_KEY[:8]}****************mnop. You can find your "
                f"API key at https://platform.openai.com/account/api-keys. (key {API_KEY}, Bearer {API_KEY})",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        }
    )
    message = OpenAIAdapter().error_message(401, payload)
    assert message.startswith("Incorrect API key provided:")
    assert "sk-" not in message and "mnop" not in message and "http" not in message
    assert API_KEY not in message


def test_registry() -> None:
    assert adapter_for("openai") is PROVIDERS["hosted_vllm"] is PROVIDERS["lm_studio"] is PROVIDERS["ollama_chat"]
    assert {"openai", "azure", "anthropic", "mock"} <= set(PROVIDERS)
    assert all(PROVIDERS[name].name == name for name in ("openai", "azure", "anthropic", "mock"))
    assert OpenAIAdapter().local_transport(deployment()) is None
    with pytest.raises(KeyError, match="unknown provider"):
        adapter_for("nope")
