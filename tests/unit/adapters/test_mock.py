"""The built-in mock upstream: real OpenAI wire format, no network."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from gateway_trio.adapters import PROVIDERS
from gateway_trio.adapters.mock import MockAdapter
from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment

adapter = MockAdapter()

MESSAGES = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "an answer"},
    {"role": "user", "content": [{"type": "text", "text": "  echo me"}, {"type": "text", "text": "please "}]},
]


def deployment(**overrides: Any) -> Deployment:
    return Deployment.from_config(ModelConfig(**{"name": "mock-gpt", "model": "mock/gpt-echo", **overrides}))


async def call(dep: Deployment, body: dict[str, Any], stream: bool) -> tuple[httpx.Response, list[bytes]]:
    req = adapter.chat_request(dep, body, dep.model, stream)
    async with httpx.AsyncClient(transport=adapter.local_transport(dep)) as client:
        request = httpx.Request(req.method, req.url, headers=req.headers, content=req.content)
        response = await client.send(request, stream=True)
        pieces = [piece async for piece in response.aiter_raw()]
        await response.aclose()
    return response, pieces


def test_registered_and_needs_no_api_base() -> None:
    dep = deployment()
    assert PROVIDERS["mock"].name == "mock"
    assert dep.api_base is None
    req = adapter.chat_request(dep, {"messages": MESSAGES}, dep.model, stream=False)
    assert req.url == "http://mock.invalid/v1/chat/completions"
    assert "authorization" not in req.headers
    assert isinstance(adapter.local_transport(dep), httpx.AsyncBaseTransport)


async def test_echo_completion() -> None:
    response, pieces = await call(deployment(), {"model": "mock-gpt", "messages": MESSAGES}, stream=False)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    completion = adapter.chat_response(b"".join(pieces), "gpt-echo")
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    assert completion["model"] == "gpt-echo"
    assert completion["choices"] == [{
        "index": 0,
        "message": {"role": "assistant", "content": "  echo me please ", "refusal": None},
        "logprobs": None,
        "finish_reason": "stop",
    }]
    # Words across all messages: 2 + 2 + 2 + 3 prompt, 3 completion.
    assert completion["usage"] == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


async def test_mock_response_stream_with_usage() -> None:
    dep = deployment(mock_response="Hello there,  world!")
    body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": False}}
    response, pieces = await call(dep, body, stream=True)
    assert response.headers["content-type"] == "text/event-stream"
    assert pieces[-1] == b"data: [DONE]\n\n"
    decoder = adapter.chat_stream(dep.model)
    chunks = [orjson.loads(c) for piece in pieces for c in decoder.feed(piece)]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hello "},
        {"content": "there,  "},
        {"content": "world!"},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert decoder.done
    # The adapter always asks for usage; the mock honours it like OpenAI does.
    assert decoder.usage == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    assert orjson.loads(decoder.usage_chunk)["choices"] == []


async def test_stream_without_usage_when_not_asked() -> None:
    dep = deployment(mock_response="ok")
    req = adapter.chat_request(dep, {"messages": MESSAGES}, dep.model, stream=True)
    raw = orjson.loads(req.content)
    raw.pop("stream_options")
    async with httpx.AsyncClient(transport=adapter.local_transport(dep)) as client:
        response = await client.post(req.url, content=orjson.dumps(raw))
    events = response.content.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert b'"usage"' not in response.content
    assert len(events) == 5  # role, "ok", finish, [DONE], trailing


async def test_empty_mock_response_and_no_user_message() -> None:
    _, pieces = await call(deployment(mock_response=""), {"messages": MESSAGES}, stream=False)
    assert orjson.loads(b"".join(pieces))["choices"][0]["message"]["content"] == ""
    _, pieces = await call(deployment(), {"messages": [{"role": "system", "content": "x"}]}, stream=True)
    decoder = adapter.chat_stream("m")
    deltas = [orjson.loads(c)["choices"][0]["delta"] for p in pieces for c in decoder.feed(p)]
    assert deltas == [{"role": "assistant", "content": ""}, {}]


async def test_other_routes_and_bad_bodies() -> None:
    dep = deployment()
    async with httpx.AsyncClient(transport=adapter.local_transport(dep)) as client:
        missing = await client.post("http://mock.invalid/v1/audio/speech", json={"input": "x"})
        bad = await client.post("http://mock.invalid/v1/chat/completions", content=b"{nope")
    assert missing.status_code == 404
    assert bad.status_code == 400
    assert adapter.error_message(bad.status_code, bad.content) == "request body is not valid JSON"
