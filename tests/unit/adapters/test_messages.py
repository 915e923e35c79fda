"""The `anthropic_messages` call type: passed through to Anthropic, translated for chat upstreams."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from wire_exchange import Exchange, assert_type_first, decode_all, deployment, splits, sse

from gateway_trio.adapters import PROVIDERS
from gateway_trio.adapters.mock import MockUpstream
from gateway_trio.errors import BadRequest, UpstreamError

anthropic = PROVIDERS["anthropic"]
openai = PROVIDERS["openai"]
azure = PROVIDERS["azure"]
mock = PROVIDERS["mock"]

MESSAGES_BODY: dict[str, Any] = {
    "model": "claude-alias",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this image, and the weather?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "A cat. Checking."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C, sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_02", "content": [
                {"type": "text", "text": "14:02"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/clock.png"}},
            ], "is_error": False},
            {"type": "text", "text": "Thanks!"},
        ]},
        {"role": "assistant", "content": "Anything else?"},
        {"role": "user", "content": "No."},
    ],
    "tools": [
        {"name": "get_weather", "description": "Weather by city",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "stop_sequences": ["\n\nHuman:"],
    "temperature": 0.3,
    "top_p": 0.9,
    "top_k": 5,
    "metadata": {"user_id": "user-7"},
    "stream": True,
}

MESSAGE = b"""{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant",
"model":"claude-3-5-sonnet-20241022","content":[{"type":"text","text":"Hi! \\u00e9"}],
"stop_reason":"end_turn","stop_sequence":null,
"usage":{"input_tokens":12,"output_tokens":6,"cache_read_input_tokens":4}}"""

ANTHROPIC_STREAM = sse([
    ("message_start", '{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-3-haiku-20240307","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}'),
    ("content_block_start", '{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}'),
    ("ping", '{"type": "ping"}'),
    ("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay, café"}}'),
    ("content_block_stop", '{"index":0,"type":"content_block_stop"}'),
    ("content_block_start", '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}'),
    ("content_block_delta", '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Paris\\"}"}}'),
    ("content_block_stop", '{"type":"content_block_stop","index":1}'),
    ("message_delta", '{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}'),
    ("message_stop", '{"type":"message_stop"}'),
])


def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    body = {"id": "chatcmpl-T1", "object": "chat.completion.chunk", "created": 1741569952, "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_x", "choices": choices, **({"usage": None} | extra)}
    return orjson.dumps(body)


CHAT_TOOL_STREAM = b"".join(b"data: " + c + b"\n\n" for c in [
    chunk({"role": "assistant", "content": "", "refusal": None}),
    chunk({"content": "Let me"}),
    chunk({"content": " check \u00e9."}),
    chunk({"tool_calls": [{"index": 0, "id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
    chunk({"tool_calls": [{"index": 1, "id": "call_def", "type": "function", "function": {"name": "get_time", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
    chunk({}, "tool_calls"),
    chunk(None, usage={"prompt_tokens": 80, "completion_tokens": 30, "total_tokens": 110,
                       "prompt_tokens_details": {"cached_tokens": 16}}),
]) + b"data: [DONE]\n\n"

COMPLETION = orjson.dumps({
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [{
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "Checking.",
            "refusal": None,
            "tool_calls": [
                {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_def", "type": "function", "function": {"name": "get_time", "arguments": '{"tz": "Eur'}},
            ],
        },
        "logprobs": None,
        "finish_reason": "tool_calls",
    }],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
              "prompt_tokens_details": {"cached_tokens": 0}},
})


# --- Anthropic: passed through -------------------------------------------------------------


async def test_anthropic_passthrough_request_and_json() -> None:
    dep = deployment("anthropic/claude-3-5-sonnet-20241022", headers={"anthropic-beta": "x"})
    ex = Exchange()
    body = {**MESSAGES_BODY}
    message = await ex.call(anthropic, "messages", dep, body, False, MESSAGE)
    assert ex.seen is not None
    assert ex.seen.method == "POST" and str(ex.seen.url) == "https://api.anthropic.com/v1/messages"
    assert ex.seen.headers["x-api-key"] == "sk-test-0123456789abcdef"
    assert ex.seen.headers["anthropic-version"] == "2023-06-01"
    assert ex.seen.headers["anthropic-beta"] == "x"
    assert "authorization" not in ex.seen.headers
    expected = {k: v for k, v in MESSAGES_BODY.items() if k != "stream"}
    assert ex.body == {**expected, "model": "claude-3-5-sonnet-20241022"}
    assert message == orjson.loads(MESSAGE)
    assert body == MESSAGES_BODY  # the client's body is not changed in place


@pytest.mark.parametrize("pieces", splits(ANTHROPIC_STREAM))
async def test_anthropic_passthrough_stream(pieces: list[bytes]) -> None:
    dep = deployment("anthropic/claude-3-haiku-20240307")
    ex = Exchange()
    payloads, decoder = await ex.call(anthropic, "messages", dep, MESSAGES_BODY, True, pieces)
    assert ex.body["stream"] is True and ex.body["model"] == "claude-3-haiku-20240307"
    events = assert_type_first(payloads)
    assert [e["type"] for e in events] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    ]
    # Untouched bytes where `type` already came first; re-serialised only where it did not.
    originals = [block.split(b"data: ", 1)[1] for block in ANTHROPIC_STREAM.split(b"\n\n") if block]
    assert [p for i, p in enumerate(payloads) if i != 4] == [o for i, o in enumerate(originals) if i != 4]
    assert events[4] == {"type": "content_block_stop", "index": 0}
    assert events[3]["delta"]["text"] == "Okay, café"
    assert decoder.done and decoder.usage_chunk is None
    assert decoder.usage == {"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561}


def test_anthropic_passthrough_stream_errors() -> None:
    head = ANTHROPIC_STREAM[: ANTHROPIC_STREAM.index(b"event: content_block_stop")]
    _, decoder = decode_all(anthropic, "messages", "c", [head])
    assert not decoder.done and decoder.usage["prompt_tokens"] == 472
    error = sse([("error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')])
    with pytest.raises(UpstreamError, match="Overloaded"):
        decode_all(anthropic, "messages", "c", [head, error])
    for bad in (b"data: {not json\n\n", b"data: [1]\n\n", b'data: {"index": 0}\n\n'):
        with pytest.raises(UpstreamError, match="malformed"):
            decode_all(anthropic, "messages", "c", [bad])


def test_anthropic_passthrough_bad_json_answers() -> None:
    with pytest.raises(UpstreamError, match="Overloaded"):
        anthropic.response("messages", b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "c")
    for bad in (b"{", b"[]", b'{"type":"completion"}'):
        with pytest.raises(UpstreamError, match="malformed"):
            anthropic.response("messages", bad, "c")


# --- OpenAI (and Azure, mock): translated through chat -------------------------------------


async def test_openai_translation_of_the_request() -> None:
    dep = deployment("openai/gpt-4o")
    ex = Exchange()
    await ex.call(openai, "messages", dep, MESSAGES_BODY, True, b"data: [DONE]\n\n")
    assert ex.seen is not None
    assert str(ex.seen.url) == "https://api.openai.com/v1/chat/completions"
    assert ex.seen.headers["authorization"] == "Bearer sk-test-0123456789abcdef"
    assert ex.body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse.\n\nUse tools."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image, and the weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ]},
            {"role": "assistant", "content": "A cat. Checking.", "tool_calls": [
                {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                {"id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "toolu_01", "content": "18C, sunny"},
            {"role": "tool", "tool_call_id": "toolu_02", "content": "14:02"},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/clock.png"}},
                {"type": "text", "text": "Thanks!"},
            ]},
            {"role": "assistant", "content": "Anything else?"},
            {"role": "user", "content": "No."},
        ],
        "max_tokens": 1024,
        "stop": ["\n\nHuman:"],
        "temperature": 0.3,
        "top_p": 0.9,
        "user": "user-7",
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [({"type": "auto"}, "auto"), ({"type": "none"}, "none"),
     ({"type": "tool", "name": "get_time"}, {"type": "function", "function": {"name": "get_time"}})],
)
async def test_tool_choices(choice: dict[str, Any], expected: Any) -> None:
    ex = Exchange()
    body = {**MESSAGES_BODY, "tool_choice": choice}
    await ex.call(openai, "messages", deployment("openai/gpt-4o"), body, False, COMPLETION)
    assert ex.body["tool_choice"] == expected and "parallel_tool_calls" not in ex.body
    assert "stream" not in ex.body and "stream_options" not in ex.body


async def test_azure_url_and_key() -> None:
    dep = deployment("azure/my-gpt4o", api_base="https://res.openai.azure.com", api_version="2024-10-21")
    ex = Exchange()
    await ex.call(azure, "messages", dep, MESSAGES_BODY, False, COMPLETION)
    assert ex.seen is not None
    assert str(ex.seen.url) == "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    assert ex.seen.headers["api-key"] == "sk-test-0123456789abcdef"


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ("hi", "messages"),
        ([{"role": "user", "content": [{"type": "document", "source": {}}]}], "messages[0].content[0].type"),
        ([{"role": "system", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}], "messages[0].content[0].source"),
        ([{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]}], "messages[0].content[0].name"),
    ],
)
def test_bad_requests_name_the_field(messages: Any, field: str) -> None:
    with pytest.raises(BadRequest) as info:
        openai.request("messages", deployment("openai/gpt-4o"), {"model": "m", "max_tokens": 5, "messages": messages}, "gpt-4o", False)
    assert info.value.param == field


def test_server_tools_are_refused() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}
    with pytest.raises(BadRequest, match="tools\\[0\\].type"):
        openai.request("messages", deployment("openai/gpt-4o"), body, "gpt-4o", False)


async def test_openai_translation_of_the_answer() -> None:
    ex = Exchange()
    message = await ex.call(openai, "messages", deployment("openai/gpt-4o"), MESSAGES_BODY, False, COMPLETION)
    assert message == {
        "id": "msg_chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o-2024-08-06",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"city": "Paris"}},
            # Arguments cut short (max tokens) cannot be parsed: an empty input stands in.
            {"type": "tool_use", "id": "call_def", "name": "get_time", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 82, "output_tokens": 17},
    }


@pytest.mark.parametrize(("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")])
def test_stop_reasons_and_cached_usage(finish: str, stop: str) -> None:
    completion = orjson.loads(COMPLETION)
    completion["choices"][0]["finish_reason"] = finish
    completion["choices"][0]["message"] = {"role": "assistant", "content": None}
    completion["usage"]["prompt_tokens_details"] = {"cached_tokens": 80}
    message = openai.response("messages", orjson.dumps(completion), "gpt-4o")
    assert message["stop_reason"] == stop
    assert message["content"] == [{"type": "text", "text": ""}]
    assert message["usage"] == {"input_tokens": 2, "output_tokens": 17, "cache_read_input_tokens": 80}


def translated_tool_stream_events() -> list[dict[str, Any]]:
    return [
        {"type": "message_start", "message": {
            "id": "msg_chatcmpl-T1", "type": "message", "role": "assistant", "model": "gpt-4o-2024-08-06",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}},  # unknown until the end
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " check \u00e9."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"ci'}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": 'ty": "Paris"}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "tool_use", "id": "call_def", "name": "get_time", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"input_tokens": 64, "output_tokens": 30, "cache_read_input_tokens": 16}},
        {"type": "message_stop"},
    ]


@pytest.mark.parametrize("pieces", splits(CHAT_TOOL_STREAM))
async def test_openai_translation_of_a_tool_stream(pieces: list[bytes]) -> None:
    ex = Exchange()
    payloads, decoder = await ex.call(openai, "messages", deployment("openai/gpt-4o"), MESSAGES_BODY, True, pieces)
    events = assert_type_first(payloads)
    # Chat sends usage last: message_start knows the input count only if all came in one read.
    start_usage = events[0]["message"].pop("usage")
    assert start_usage in ({"input_tokens": 0, "output_tokens": 0},
                           {"input_tokens": 64, "output_tokens": 0, "cache_read_input_tokens": 16})
    expected = translated_tool_stream_events()
    del expected[0]["message"]["usage"]
    assert events == expected
    assert decoder.done and decoder.usage_chunk is None
    assert decoder.usage["prompt_tokens"] == 80 and decoder.usage["completion_tokens"] == 30


def test_translated_stream_waits_for_the_end_before_message_delta() -> None:
    head = CHAT_TOOL_STREAM[: CHAT_TOOL_STREAM.index(b"data: [DONE]")]
    payloads, decoder = decode_all(openai, "messages", "gpt-4o", [head])
    kinds = [e["type"] for e in assert_type_first(payloads)]
    assert kinds[-1] == "content_block_delta" and not decoder.done
    rest = decoder.feed(b"data: [DONE]\n\n")
    assert [orjson.loads(p)["type"] for p in rest] == ["content_block_stop", "message_delta", "message_stop"]
    assert decoder.done


def test_translated_stream_errors_come_from_the_chat_decoder() -> None:
    error = b'data: {"error":{"message":"The server had an error","type":"server_error"}}\n\n'
    with pytest.raises(UpstreamError, match="server had an error"):
        decode_all(openai, "messages", "gpt-4o", [b"data: " + chunk({"content": "x"}) + b"\n\n", error])
    with pytest.raises(UpstreamError, match="malformed"):
        decode_all(openai, "messages", "gpt-4o", [b"data: {oops\n\n"])


def test_empty_chat_stream_still_makes_a_whole_message() -> None:
    payloads, decoder = decode_all(openai, "messages", "gpt-4o", [b"data: [DONE]\n\n"])
    events = assert_type_first(payloads)
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
    assert events[0]["message"]["model"] == "gpt-4o" and events[0]["message"]["id"].startswith("msg_")
    assert events[1]["delta"]["stop_reason"] == "end_turn" and decoder.done


# --- the built-in mock: the same translation, answered in-process --------------------------


async def test_mock_messages_json_and_stream() -> None:
    dep = deployment("mock/echo", mock_response="Hello from the mock")
    body = {"model": "echo", "max_tokens": 50, "system": "be nice", "messages": [{"role": "user", "content": "hi there"}]}
    ex = Exchange()
    message = await ex.call(mock, "messages", dep, body, False, b"", transport=MockUpstream(dep.mock_response))
    assert message["type"] == "message" and message["content"] == [{"type": "text", "text": "Hello from the mock"}]
    assert message["stop_reason"] == "end_turn" and message["usage"] == {"input_tokens": 4, "output_tokens": 4}
    payloads, decoder = await ex.call(mock, "messages", dep, body, True, b"", transport=MockUpstream(dep.mock_response))
    events = assert_type_first(payloads)
    assert [e["type"] for e in events] == [
        "message_start", "content_block_start", *["content_block_delta"] * 4, "content_block_stop", "message_delta", "message_stop",
    ]
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == "Hello from the mock"
    assert events[-2]["usage"] == {"input_tokens": 4, "output_tokens": 4}
    assert decoder.done and decoder.usage == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
