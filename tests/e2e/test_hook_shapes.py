"""What every hook receives is the native object of its route, streamed or not.

A route x stream x outcome matrix: `response_obj` in the logging hooks, `response` in the
post-call success and response-headers hooks, and `kwargs["standard_logging_object"]`.  A
logging hook on /v1/messages gets an Anthropic `message`, on /v1/responses a `response`, on
/v1/completions a `text_completion`, with the same text as the client read, however it was sent.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from harness import client_and_gateway, eventually, make_config, sse_payloads

from gateway_trio.hooks import CustomLogger
from gateway_trio.hooks.views import unwrap
from gateway_trio.testing import Behavior

MASTER = "sk-master-shapes-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}
HELLO = [{"role": "user", "content": "hello there"}]

# route -> (path, body, streams, LiteLLM's call type)
ROUTES: dict[str, tuple[str, dict[str, Any] | None, bool, str]] = {
    "chat": ("/v1/chat/completions", {"messages": HELLO}, True, "completion"),
    "completions": ("/v1/completions", {"prompt": "hello there"}, True, "text_completion"),
    "responses": ("/v1/responses", {"input": "hello there"}, True, "responses"),
    "messages": ("/v1/messages", {"max_tokens": 64, "messages": HELLO}, True, "anthropic_messages"),
    "embeddings": ("/v1/embeddings", {"input": "hello there"}, False, "embeddings"),
    "moderations": ("/v1/moderations", {"input": "hello there"}, False, "moderation"),
    "transcriptions": ("/v1/audio/transcriptions", None, False, "audio_transcription"),
    "images": ("/v1/images/generations", {"prompt": "hello there"}, False, "image_generation"),
}
# Each route on an OpenAI deployment; those an Anthropic deployment serves on one too (messages
# pass through natively there, the others are translated).
CASES = [
    (route, model, stream)
    for route, (_, _, streams, _) in ROUTES.items()
    for model in (("m", "claude") if streams else ("m",))
    for stream in ((False, True) if streams else (False,))
]


class ShapeRecorder(CustomLogger):
    """Keeps, as plain data, what each hook was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[str, dict[str, Any], Any]] = []
        self.post_call: list[Any] = []
        self.headers: list[Any] = []

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.logged.append(("success", kwargs, plain(response_obj)))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.logged.append(("failure", kwargs, plain(response_obj)))

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        self.post_call.append(plain(response))

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None,
                                                    call_info=None):
        self.headers.append(plain(response))
        return None


def plain(value: Any) -> Any:
    return None if value is None else orjson.loads(orjson.dumps(unwrap(value)))


def config_for(upstream):
    models = [
        {"name": "m", "model": "openai/shape-model", "api_base": f"{upstream.base_url}/v1"},
        {"name": "claude", "model": "anthropic/claude-shape", "api_base": upstream.base_url, "api_key": "sk-ant-s"},
    ]
    return make_config(models=models, server={"master_key": MASTER}, router={"num_retries": 0})


async def send(client, route: str, model: str, stream: bool):
    path, extra, _, _ = ROUTES[route]
    if route == "transcriptions":
        files = {"file": ("clip.wav", b"RIFF" + b"\0" * 2000, "audio/wav")}
        return await client.post(path, data={"model": model}, files=files, headers=AUTH)
    body = {"model": model, **(extra or {})}
    if stream:
        body["stream"] = True
    return await client.post(path, json=body, headers=AUTH)


def native_text(route: str, obj: dict[str, Any]) -> str:
    """The answer's text, read the way that route's own clients read it; asserts the shape."""
    if route == "chat":
        assert obj["object"] == "chat.completion" and isinstance(obj["id"], str)
        message = obj["choices"][0]["message"]
        assert message["role"] == "assistant"
        return message["content"]
    if route == "completions":
        assert obj["object"] == "text_completion" and isinstance(obj["id"], str)
        return obj["choices"][0]["text"]
    if route == "messages":
        assert obj["type"] == "message" and obj["role"] == "assistant" and isinstance(obj["id"], str)
        assert obj["stop_reason"] and isinstance(obj["usage"], dict)
        return "".join(block["text"] for block in obj["content"] if block["type"] == "text")
    if route == "responses":
        assert obj["object"] == "response" and obj["status"] == "completed" and isinstance(obj["id"], str)
        return "".join(part["text"] for item in obj["output"] if item["type"] == "message"
                       for part in item["content"] if part["type"] == "output_text")
    if route == "embeddings":
        assert obj["object"] == "list" and isinstance(obj["data"][0]["embedding"], list)
        return ""
    if route == "moderations":
        assert isinstance(obj["results"], list) and obj["results"]
        return ""
    if route == "images":
        assert isinstance(obj["created"], int) and obj["data"][0]["url"]
        return obj["data"][0]["revised_prompt"]
    assert route == "transcriptions"
    return obj["text"]


def client_text(route: str, response, stream: bool) -> str:
    """The text the client read: from the body, or from the stream's deltas."""
    if not stream:
        return native_text(route, response.json())
    events = [orjson.loads(p) for p in sse_payloads(response.text) if p != "[DONE]"]
    if route == "chat":
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in events if c.get("choices"))
    if route == "completions":
        return "".join(c["choices"][0].get("text") or "" for c in events if c.get("choices"))
    if route == "messages":
        return "".join(e["delta"].get("text") or "" for e in events if e["type"] == "content_block_delta")
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def first_chunk_shape(route: str, chunk: dict[str, Any]) -> None:
    """The response-headers hook of a stream sees its first chunk, in the route's own format."""
    if route == "chat":
        assert chunk["object"] == "chat.completion.chunk"
    elif route == "completions":
        assert chunk["object"] == "text_completion"
    elif route == "messages":
        assert chunk["type"] == "message_start"
    else:
        assert chunk["type"] == "response.created"


@pytest.mark.parametrize(("route", "model", "stream"), CASES)
async def test_every_hook_sees_the_native_object_of_its_route(upstream, route, model, stream):
    recorder = ShapeRecorder()
    async with client_and_gateway(config_for(upstream), hooks=[recorder]) as (client, _gateway):
        ok = await send(client, route, model, stream)
        assert ok.status_code == 200, ok.text
        await eventually(lambda: len(recorder.logged) == 1)
        upstream.default = Behavior(status=500)
        failed = await send(client, route, model, stream)
        assert failed.status_code == 502, failed.text
        await eventually(lambda: len(recorder.logged) == 2)

    text = client_text(route, ok, stream)
    (outcome, kwargs, response_obj), (failed_outcome, failed_kwargs, failed_obj) = recorder.logged
    assert outcome == "success" and failed_outcome == "failure"
    # The logging hook's object: the route's native answer, with the text the client read.
    assert response_obj is not None
    assert native_text(route, response_obj) == text
    if route not in ("embeddings", "moderations"):
        assert text
    assert failed_obj is None
    # The standard logging object: the route's call type, its stream flag, its outcome.
    _, _, _, call_type = ROUTES[route]
    for logged, status in ((kwargs, "success"), (failed_kwargs, "failure")):
        standard = logged["standard_logging_object"]
        assert standard["call_type"] == call_type == logged["call_type"]
        assert standard["stream"] is stream and standard["status"] == status
        assert standard["call_id"] == logged["litellm_call_id"]
    # The in-line hooks: the native body when whole; a stream's headers see its first chunk.
    success_headers, failure_headers = recorder.headers
    assert failure_headers is None
    if stream:
        assert recorder.post_call == []
        first_chunk_shape(route, success_headers)
    else:
        (post_call,) = recorder.post_call
        assert native_text(route, post_call) == text
        assert native_text(route, success_headers) == text
