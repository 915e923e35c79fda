"""Anthropic Messages ↔ OpenAI chat completions, against Anthropic's real wire format."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from gateway_trio.adapters import PROVIDERS
from gateway_trio.adapters.anthropic import AnthropicAdapter
from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest, UpstreamError

API_KEY = "sk-ant-api03-test-key"
adapter = AnthropicAdapter()

MESSAGE = b"""{
  "id": "msg_01Aq9w938a90dw8q",
  "type": "message",
  "role": "assistant",
  "model": "claude-3-5-sonnet-20241022",
  "content": [
    {"type": "text", "text": "I'll check the weather"},
    {"type": "text", "text": " in San Francisco."},
    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
     "input": {"location": "San Francisco, CA", "unit": "celsius"}}
  ],
  "stop_reason": "tool_use",
  "stop_sequence": null,
  "usage": {"input_tokens": 472, "output_tokens": 91,
            "cache_creation_input_tokens": 10, "cache_read_input_tokens": 20}
}"""

TEXT_STREAM = b"""event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-3-5-sonnet-20241022", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

"""

TOOL_STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-3-haiku-20240307","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", let's check."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \\"San Francisco, CA\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""

OPENAI_BODY: dict[str, Any] = {
    "model": "claude",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "system", "content": [{"type": "text", "text": "Use tools."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Weather and time here?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "14:05"}]},
        {"role": "user", "content": "Thanks"},
    ],
    "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "get_time"}},
    ],
    "tool_choice": "required",
    "max_completion_tokens": 300,
    "stop": "END",
    "temperature": 0.3,
    "top_p": 0.9,
    "user": "user-42",
    "stream": True,
    "stream_options": {"include_usage": True},
    "presence_penalty": 0.5,
    "logit_bias": {"50256": -100},
    "seed": 7,
}


def deployment(**overrides: Any) -> Deployment:
    fields = {"name": "claude", "model": "anthropic/claude-3-5-sonnet", "api_key": API_KEY, **overrides}
    return Deployment.from_config(ModelConfig(**fields))


async def sent_request(dep: Deployment, body: dict[str, Any], stream: bool) -> httpx.Request:
    req = adapter.chat_request(dep, body, dep.model, stream)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=MESSAGE)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await client.send(httpx.Request(req.method, req.url, headers=req.headers, content=req.content))
    return seen[0]


def translated(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    return orjson.loads(adapter.chat_request(deployment(), body, "claude-3-5-sonnet", stream).content)


async def test_request_url_headers_and_full_translation() -> None:
    seen = await sent_request(deployment(headers={"anthropic-beta": "prompt-caching-2024-07-31"}), OPENAI_BODY, True)
    assert seen.method == "POST"
    assert str(seen.url) == "https://api.anthropic.com/v1/messages"
    assert seen.headers["x-api-key"] == API_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "authorization" not in seen.headers
    assert orjson.loads(seen.content) == {
        "model": "claude-3-5-sonnet",
        "system": "You are terse.\n\nUse tools.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather and time here?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C and sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "14:05"}]},
            ]},
            {"role": "user", "content": "Thanks"},
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather for a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "any"},
        "max_tokens": 300,
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_p": 0.9,
        "stream": True,
        "metadata": {"user_id": "user-42"},
    }


async def test_api_base_variants_and_no_key() -> None:
    for base in ("https://proxy.example/anthropic", "https://proxy.example/anthropic/v1", "https://proxy.example/anthropic/v1/messages"):
        seen = await sent_request(deployment(api_base=base, api_key=None), {"messages": []}, False)
        assert str(seen.url) == "https://proxy.example/anthropic/v1/messages"
        assert "x-api-key" not in seen.headers


def test_defaults_and_plain_user_message() -> None:
    body = translated({"messages": [{"role": "user", "content": "Hi"}], "stop": ["a", "b"], "max_tokens": 50})
    assert body == {
        "model": "claude-3-5-sonnet",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 50,
        "stop_sequences": ["a", "b"],
    }
    assert translated({"messages": [{"role": "user", "content": "Hi"}]})["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_time"}}, {"type": "tool", "name": "get_time"}),
        (None, None),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    body = translated({**OPENAI_BODY, "tool_choice": choice})
    assert body.get("tool_choice") == expected
    assert len(body["tools"]) == 2


def test_tool_choice_none_keeps_tools_and_parallel_flag() -> None:
    # The history holds tool calls: Anthropic needs the tools defined, and "none" to call none.
    kept = translated({**OPENAI_BODY, "tool_choice": "none", "parallel_tool_calls": False})
    assert len(kept["tools"]) == 2 and kept["tool_choice"] == {"type": "none"}
    body = translated({**OPENAI_BODY, "tool_choice": None, "parallel_tool_calls": False})
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_image_urls_and_cached_system_blocks() -> None:
    body = translated({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Long", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]},
    ]})
    assert body["system"] == [{"type": "text", "text": "Long", "cache_control": {"type": "ephemeral"}}]
    assert body["messages"][0]["content"] == [{"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([{"role": "wizard", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": [{"type": "input_audio"}]}], "messages[0].content[0].type"),
        ([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}],
         "messages[0].tool_calls[0].function.arguments"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,xyz"}}]}],
         "messages[0].content[0].image_url.url"),
    ],
)
def test_bad_requests_name_the_field(messages: list[Any], field: str) -> None:
    with pytest.raises(BadRequest, match=field.replace("[", r"\[").replace("]", r"\]")):
        translated({"messages": messages})


def test_response_translation() -> None:
    completion = adapter.chat_response(MESSAGE, "claude-3-5-sonnet")
    assert isinstance(completion["created"], int)
    completion.pop("created")
    assert completion == {
        "id": "msg_01Aq9w938a90dw8q",
        "object": "chat.completion",
        "model": "claude-3-5-sonnet-20241022",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "I'll check the weather in San Francisco.",
                "tool_calls": [{
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"San Francisco, CA","unit":"celsius"}'},
                }],
            },
            "finish_reason": "tool_calls",
        }],
        "usage": {"prompt_tokens": 502, "completion_tokens": 91, "total_tokens": 593,
                  "prompt_tokens_details": {"cached_tokens": 20}},
    }


@pytest.mark.parametrize(("stop_reason", "finish"), [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length")])
def test_response_finish_reasons_and_text_only(stop_reason: str, finish: str) -> None:
    message = {"id": "msg_x", "type": "message", "role": "assistant", "model": "claude-3-5-sonnet-20241022",
               "content": [], "stop_reason": stop_reason, "usage": {"input_tokens": 3, "output_tokens": 0}}
    choice = adapter.chat_response(orjson.dumps(message), "m")["choices"][0]
    assert choice == {"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": finish}


@pytest.mark.parametrize("payload", [b"{not json", b'{"id": "msg_x"}', b'"text"'])
def test_malformed_response(payload: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed upstream reply"):
        adapter.chat_response(payload, "m")


def decode(pieces: list[bytes]) -> tuple[list[dict[str, Any]], Any]:
    decoder = adapter.chat_stream("claude-3-5-sonnet")
    chunks = [orjson.loads(c) for piece in pieces for c in decoder.feed(piece)]
    return chunks, decoder


def splits(data: bytes) -> list[list[bytes]]:
    return [[data], [data[i : i + 1] for i in range(len(data))], [data[i : i + 7] for i in range(0, len(data), 7)]]


def test_text_stream() -> None:
    chunks, decoder = decode([TEXT_STREAM])
    assert {(c["id"], c["object"], c["model"], c["created"]) for c in chunks} == {
        ("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "chat.completion.chunk", "claude-3-5-sonnet-20241022", chunks[0]["created"])
    }
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""}, {"content": "Hello"}, {"content": "!"}, {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert decoder.done
    assert decoder.usage == {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}
    usage_chunk = orjson.loads(decoder.usage_chunk)
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == decoder.usage
    assert usage_chunk["id"] == chunks[0]["id"] and usage_chunk["object"] == "chat.completion.chunk"


def test_tool_use_stream() -> None:
    chunks, decoder = decode([TOOL_STREAM])
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Okay"},
        {"content": ", let's check."},
        {"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                         "function": {"name": "get_weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ' "San Francisco, CA"}'}}]},
        {"tool_calls": [{"index": 1, "id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas if d.get("tool_calls") and d["tool_calls"][0]["index"] == 0)
    assert orjson.loads(arguments) == {"location": "San Francisco, CA"}
    assert decoder.usage == {"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561}


@pytest.mark.parametrize("stream", [TEXT_STREAM, TOOL_STREAM, TOOL_STREAM.replace(b"\n", b"\r\n")])
def test_stream_splits_do_not_matter(stream: bytes) -> None:
    results = []
    for pieces in splits(stream):
        chunks, decoder = decode(pieces)
        for chunk in chunks:
            chunk.pop("created")
        usage_chunk = orjson.loads(decoder.usage_chunk)
        usage_chunk.pop("created")
        results.append((chunks, decoder.usage, usage_chunk, decoder.done))
    assert results[0] == results[1] == results[2]
    assert results[0][3] is True


async def test_stream_through_an_httpx_response() -> None:
    reply = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=TOOL_STREAM)
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: reply)) as client:
        async with client.stream("POST", "https://api.anthropic.com/v1/messages") as response:
            decoder = adapter.chat_stream("claude-3-5-sonnet")
            chunks = [c async for piece in response.aiter_bytes() for c in decoder.feed(piece)]
    assert len(chunks) == 9 and decoder.done


def test_not_done_before_message_stop() -> None:
    _, decoder = decode([TEXT_STREAM[: TEXT_STREAM.index(b"event: message_stop")]])
    assert not decoder.done and decoder.usage_chunk is None
    assert decoder.usage == {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}


def test_error_event_raises_with_its_message() -> None:
    error = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    head = TEXT_STREAM[: TEXT_STREAM.index(b"event: content_block_stop")]
    decoder = adapter.chat_stream("m")
    assert len(decoder.feed(head)) == 3
    with pytest.raises(UpstreamError, match="^Overloaded$"):
        decoder.feed(error)


@pytest.mark.parametrize("bad", [b"event: content_block_delta\ndata: {\"type\": \"content_blo\n\n", b"data: 42\n\n"])
def test_malformed_event_raises(bad: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed upstream reply"):
        adapter.chat_stream("m").feed(bad)


def test_error_message_is_client_safe() -> None:
    payload = orjson.dumps({"type": "error", "error": {"type": "authentication_error",
                            "message": f"invalid x-api-key {API_KEY}; see https://docs.anthropic.com/en/api/errors"}})
    message = PROVIDERS["anthropic"].error_message(401, payload)
    assert message.startswith("invalid x-api-key")
    assert API_KEY not in message and "sk-" not in message and "https" not in message
    assert adapter.error_message(529, b"") == "upstream returned HTTP 529"
