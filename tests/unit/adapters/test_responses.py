"""The `responses` call type: passed through to OpenAI and Azure, translated for Anthropic and mock."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from wire_exchange import Exchange, assert_type_first, decode_all, deployment, splits, sse

from gateway_trio.adapters import PROVIDERS
from gateway_trio.adapters.mock import MockUpstream
from gateway_trio.adapters.usage import chat_usage
from gateway_trio.errors import BadRequest, UpstreamError

openai = PROVIDERS["openai"]
azure = PROVIDERS["azure"]
anthropic = PROVIDERS["anthropic"]
mock = PROVIDERS["mock"]

RESPONSES_BODY: dict[str, Any] = {
    "model": "alias",
    "instructions": "Be brief.",
    "input": [
        {"role": "developer", "content": "Prefer metric units."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Weather and time in Paris? Also this image:"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"},
        ]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}', "status": "completed"},
        {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "get_time", "arguments": "{}", "status": "completed"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_2", "output": "14:02"},
        {"role": "user", "content": "Thanks, and tomorrow?"},
    ],
    "tools": [
        {"type": "function", "name": "get_weather", "description": "Weather by city", "strict": True,
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}},
    ],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "max_output_tokens": 300,
    "temperature": 0.5,
    "top_p": 0.8,
    "store": False,
    "stream": True,
}

RESPONSE = b"""{
  "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
  "object": "response",
  "created_at": 1741476542,
  "status": "completed",
  "error": null,
  "incomplete_details": null,
  "instructions": null,
  "max_output_tokens": null,
  "model": "gpt-4.1-2025-04-14",
  "output": [
    {"type": "message", "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b", "status": "completed",
     "role": "assistant", "content": [{"type": "output_text", "text": "In a peaceful grove...", "annotations": []}]}
  ],
  "parallel_tool_calls": true,
  "previous_response_id": null,
  "reasoning": {"effort": null, "summary": null},
  "store": true,
  "temperature": 1.0,
  "text": {"format": {"type": "text"}},
  "tool_choice": "auto",
  "tools": [],
  "top_p": 1.0,
  "truncation": "disabled",
  "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123},
  "user": null,
  "metadata": {}
}"""

_R = '{"id":"resp_67c9","object":"response","created_at":1741290958,"status":"%s","model":"gpt-4.1-2025-04-14","output":%s,"usage":%s}'
_MSG = '"id":"msg_67c9","type":"message","role":"assistant"'
OPENAI_STREAM = sse([
    ("response.created", '{"type":"response.created","sequence_number":0,"response":%s}' % (_R % ("in_progress", "[]", "null"))),
    ("response.in_progress", '{"type":"response.in_progress","sequence_number":1,"response":%s}' % (_R % ("in_progress", "[]", "null"))),
    ("response.output_item.added", '{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{%s,"status":"in_progress","content":[]}}' % _MSG),
    ("response.content_part.added", '{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_67c9","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}'),
    ("response.output_text.delta", '{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67c9","output_index":0,"content_index":0,"delta":"Hi caf\u00e9"}'),
    ("response.output_text.done", '{"sequence_number":5,"type":"response.output_text.done","item_id":"msg_67c9","output_index":0,"content_index":0,"text":"Hi caf\u00e9"}'),
    ("response.content_part.done", '{"type":"response.content_part.done","sequence_number":6,"item_id":"msg_67c9","output_index":0,"content_index":0,"part":{"type":"output_text","text":"Hi caf\u00e9","annotations":[]}}'),
    ("response.output_item.done", '{"type":"response.output_item.done","sequence_number":7,"output_index":0,"item":{%s,"status":"completed","content":[{"type":"output_text","text":"Hi caf\u00e9","annotations":[]}]}}' % _MSG),
    ("response.completed", '{"type":"response.completed","sequence_number":8,"response":%s}' % (_R % (
        "completed", '[{%s,"status":"completed","content":[{"type":"output_text","text":"Hi caf\u00e9","annotations":[]}]}]' % _MSG,
        '{"input_tokens":37,"input_tokens_details":{"cached_tokens":5},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":48}'))),
])

ANTHROPIC_MESSAGE = orjson.dumps({
    "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant", "model": "claude-3-5-sonnet-20241022",
    "content": [
        {"type": "text", "text": "I'll check."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 472, "output_tokens": 91},
})

ANTHROPIC_TOOL_STREAM = sse([
    ("message_start", '{"type":"message_start","message":{"id":"msg_014p7gG3","type":"message","role":"assistant","model":"claude-3-haiku-20240307","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}'),
    ("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
    ("ping", '{"type": "ping"}'),
    ("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}'),
    ("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", let\'s check \u00e9."}}'),
    ("content_block_stop", '{"type":"content_block_stop","index":0}'),
    ("content_block_start", '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1","name":"get_weather","input":{}}}'),
    ("content_block_delta", '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}'),
    ("content_block_delta", '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\":"}}'),
    ("content_block_delta", '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \\"Paris\\"}"}}'),
    ("content_block_stop", '{"type":"content_block_stop","index":1}'),
    ("message_delta", '{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}'),
    ("message_stop", '{"type":"message_stop"}'),
])


def chat_chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return orjson.dumps({"id": "chatcmpl-X", "object": "chat.completion.chunk", "created": 1741569952,
                         "model": "mock-model", "choices": choices, "usage": None, **extra})


CHAT_CALL_STREAM = b"".join(b"data: " + c + b"\n\n" for c in [
    chat_chunk({"role": "assistant", "content": None,
                "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
    chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
    chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    chat_chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}),
    chat_chunk({}, "tool_calls"),
    chat_chunk(None, usage={"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}),
]) + b"data: [DONE]\n\n"


# --- OpenAI and Azure: passed through ------------------------------------------------------


async def test_openai_passthrough_request_and_json() -> None:
    ex = Exchange()
    body = {**RESPONSES_BODY}
    response = await ex.call(openai, "responses", deployment("openai/gpt-4.1", headers={"OpenAI-Organization": "org-1"}), body, False, RESPONSE)
    assert ex.seen is not None
    assert ex.seen.method == "POST" and str(ex.seen.url) == "https://api.openai.com/v1/responses"
    assert ex.seen.headers["authorization"] == "Bearer sk-test-0123456789abcdef"
    assert ex.seen.headers["openai-organization"] == "org-1"
    assert ex.body == {**{k: v for k, v in RESPONSES_BODY.items() if k != "stream"}, "model": "gpt-4.1"}
    assert response == orjson.loads(RESPONSE)
    assert body == RESPONSES_BODY
    assert chat_usage(response["usage"]) == {"prompt_tokens": 36, "completion_tokens": 87, "total_tokens": 123}


async def test_azure_responses_url() -> None:
    ex = Exchange()
    dep = deployment("azure/my-gpt41", api_base="https://res.openai.azure.com/", api_version="2024-10-21")
    await ex.call(azure, "responses", dep, RESPONSES_BODY, False, RESPONSE)
    assert ex.seen is not None
    # One endpoint per resource; the deployment is named by the body's model. A version older
    # than the Responses API is raised to the first that has it.
    assert str(ex.seen.url) == "https://res.openai.azure.com/openai/responses?api-version=2025-03-01-preview"
    assert ex.seen.headers["api-key"] == "sk-test-0123456789abcdef" and "authorization" not in ex.seen.headers
    assert ex.body["model"] == "my-gpt41"
    newer = deployment("azure/my-gpt41", api_base="https://res.openai.azure.com", api_version="2025-04-01-preview")
    assert azure.request("responses", newer, RESPONSES_BODY, "my-gpt41", True).url.endswith("api-version=2025-04-01-preview")


@pytest.mark.parametrize("pieces", splits(OPENAI_STREAM))
async def test_openai_passthrough_stream(pieces: list[bytes]) -> None:
    ex = Exchange()
    payloads, decoder = await ex.call(openai, "responses", deployment("openai/gpt-4.1"), RESPONSES_BODY, True, pieces)
    assert ex.body["stream"] is True and "stream_options" not in ex.body
    events = assert_type_first(payloads)
    assert [e["sequence_number"] for e in events] == list(range(9))
    originals = [block.split(b"data: ", 1)[1] for block in OPENAI_STREAM.split(b"\n\n") if block]
    assert [p for i, p in enumerate(payloads) if i != 5] == [o for i, o in enumerate(originals) if i != 5]
    assert events[5] == orjson.loads(originals[5])  # reordered to put `type` first, else the same
    assert decoder.done and decoder.usage_chunk is None
    assert decoder.usage == {
        "prompt_tokens": 37, "completion_tokens": 11, "total_tokens": 48,
        "prompt_tokens_details": {"cached_tokens": 5}, "completion_tokens_details": {"reasoning_tokens": 2},
    }


@pytest.mark.parametrize("terminal", ["response.failed", "response.incomplete"])
def test_openai_passthrough_other_terminal_events(terminal: str) -> None:
    head = OPENAI_STREAM[: OPENAI_STREAM.index(b"event: response.completed")]
    payloads, decoder = decode_all(openai, "responses", "gpt-4.1", [head])
    assert len(payloads) == 8 and not decoder.done and decoder.usage is None
    end = sse([(terminal, '{"type":"%s","sequence_number":8,"response":%s}' % (terminal, _R % ("failed", "[]", "null")))])
    assert len(decoder.feed(end)) == 1 and decoder.done


def test_openai_passthrough_errors() -> None:
    error = sse([("error", '{"type":"error","code":"ERR_SOMETHING","message":"Something went wrong","param":null,"sequence_number":1}')])
    with pytest.raises(UpstreamError, match="Something went wrong"):
        head = OPENAI_STREAM[: OPENAI_STREAM.index(b"event: response.output_item.added")]
        decode_all(openai, "responses", "m", [head[:200], head[200:], error])
    for bad in (b"data: {nope\n\n", b'data: {"sequence_number": 1}\n\n'):
        with pytest.raises(UpstreamError, match="malformed"):
            decode_all(openai, "responses", "m", [bad])
    for body in (b"{", b'{"object": "chat.completion"}'):
        with pytest.raises(UpstreamError, match="malformed"):
            openai.response("responses", body, "m")


# --- Anthropic: translated through chat, then through chat's own Messages translation ------


async def test_anthropic_translation_of_the_request() -> None:
    ex = Exchange()
    dep = deployment("anthropic/claude-3-5-sonnet-20241022")
    await ex.call(anthropic, "responses", dep, RESPONSES_BODY, True, b"")
    assert ex.seen is not None
    assert str(ex.seen.url) == "https://api.anthropic.com/v1/messages"
    assert ex.seen.headers["x-api-key"] == "sk-test-0123456789abcdef"
    assert ex.body == {
        "model": "claude-3-5-sonnet-20241022",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather and time in Paris? Also this image:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "14:02"},
            ]},
            {"role": "user", "content": "Thanks, and tomorrow?"},
        ],
        "system": "Be brief.\n\nPrefer metric units.",
        "max_tokens": 300,
        "temperature": 0.5,
        "top_p": 0.8,
        "stream": True,
        "tools": [
            {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
             "description": "Weather by city"},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": []}, "input"),
        ({"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0].type"),
        ({"input": "hi", "tools": [{"type": "web_search_preview"}]}, "tools[0].type"),
        ({"input": "hi", "tool_choice": {"type": "file_search"}}, "tool_choice"),
    ],
)
def test_untranslatable_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as info:
        anthropic.request("responses", deployment("anthropic/claude"), {"model": "m", **body}, "claude", False)
    assert info.value.param == field


def test_plain_string_input_and_text_format() -> None:
    spec = mock.request("responses", deployment("mock/m"), {
        "model": "m", "input": "Hello", "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True}},
        "parallel_tool_calls": False, "user": "u1",
    }, "m", False)
    assert orjson.loads(spec.content) == {
        "model": "m", "messages": [{"role": "user", "content": "Hello"}], "parallel_tool_calls": False, "user": "u1",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}},
    }


async def test_anthropic_translation_of_the_answer() -> None:
    ex = Exchange()
    response = await ex.call(anthropic, "responses", deployment("anthropic/claude-3-5-sonnet-20241022"), RESPONSES_BODY, False, ANTHROPIC_MESSAGE)
    message, call = response["output"]
    assert message["id"].startswith("msg_") and call["id"].startswith("fc_")
    assert message == {"type": "message", "id": message["id"], "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": "I'll check.", "annotations": []}]}
    assert call == {"type": "function_call", "id": call["id"], "call_id": "toolu_01A", "name": "get_weather",
                    "arguments": '{"city":"Paris"}', "status": "completed"}
    assert response["id"] == "resp_msg_01Aq9w938a90dw8q"
    assert (response["object"], response["status"], response["model"]) == ("response", "completed", "claude-3-5-sonnet-20241022")
    assert isinstance(response["created_at"], int) and response["incomplete_details"] is None
    assert response["usage"] == {"input_tokens": 472, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 91,
                                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 563}


def test_truncated_answer_is_incomplete() -> None:
    message = orjson.loads(ANTHROPIC_MESSAGE)
    message["stop_reason"] = "max_tokens"
    response = anthropic.response("responses", orjson.dumps(message), "claude")
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def check_item_events(events: list[dict[str, Any]]) -> None:
    """Each item's events name the id and output index its `output_item.added` announced."""
    items: dict[int, str] = {}
    for event in events:
        if event["type"] == "response.output_item.added":
            items[event["output_index"]] = event["item"]["id"]
        elif "item_id" in event:
            assert items[event["output_index"]] == event["item_id"], event
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


@pytest.mark.parametrize("pieces", splits(ANTHROPIC_TOOL_STREAM))
async def test_anthropic_translation_of_a_stream(pieces: list[bytes]) -> None:
    ex = Exchange()
    payloads, decoder = await ex.call(anthropic, "responses", deployment("anthropic/claude-3-haiku"), RESPONSES_BODY, True, pieces)
    events = assert_type_first(payloads)
    check_item_events(events)
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]
    created = events[0]["response"]
    assert (created["id"], created["status"], created["output"], created["usage"]) == ("resp_msg_014p7gG3", "in_progress", [], None)
    assert events[2]["item"] == {"type": "message", "id": events[2]["item"]["id"], "status": "in_progress", "role": "assistant", "content": []}
    assert events[3]["part"] == {"type": "output_text", "text": "", "annotations": []}
    assert [e["delta"] for e in events[4:6]] == ["Okay", ", let's check \u00e9."]
    assert events[6]["text"] == "Okay, let's check \u00e9."
    assert events[9]["item"] == {"type": "function_call", "id": events[9]["item"]["id"], "call_id": "toolu_01T1",
                                 "name": "get_weather", "arguments": "", "status": "in_progress"}
    assert events[12]["arguments"] == '{"city": "Paris"}' and events[12]["name"] == "get_weather"
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["id"] == created["id"]
    assert final["output"] == [events[8]["item"], events[13]["item"]]
    assert events[13]["item"]["status"] == "completed" and events[13]["item"]["arguments"] == '{"city": "Paris"}'
    assert final["usage"]["input_tokens"] == 472 and final["usage"]["output_tokens"] == 89
    assert final["usage"]["total_tokens"] == 561
    assert decoder.done and decoder.usage_chunk is None
    assert decoder.usage == {"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561}


def test_translated_stream_errors() -> None:
    head = ANTHROPIC_TOOL_STREAM[: ANTHROPIC_TOOL_STREAM.index(b"event: content_block_stop")]
    error = sse([("error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')])
    with pytest.raises(UpstreamError, match="Overloaded"):
        decode_all(anthropic, "responses", "claude", [head, error])
    payloads, decoder = decode_all(anthropic, "responses", "claude", [ANTHROPIC_TOOL_STREAM[:-40]])
    assert not decoder.done and orjson.loads(payloads[-1])["type"] != "response.completed"


# --- the built-in mock: the same translation over the in-process chat upstream -------------


async def test_mock_responses_json_and_stream() -> None:
    dep = deployment("mock/echo")
    body = {"model": "echo", "instructions": "Be nice.", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hello mock world"}]}]}
    ex = Exchange()
    response = await ex.call(mock, "responses", dep, body, False, b"", transport=MockUpstream(None))
    assert response["object"] == "response" and response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "hello mock world"
    assert response["usage"]["input_tokens"] == 5 and response["usage"]["output_tokens"] == 3
    payloads, decoder = await ex.call(mock, "responses", dep, body, True, b"", transport=MockUpstream(None))
    events = assert_type_first(payloads)
    check_item_events(events)
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "hello mock world"
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["usage"]["total_tokens"] == 8
    assert decoder.done and decoder.usage == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


@pytest.mark.parametrize("pieces", splits(CHAT_CALL_STREAM))
async def test_mock_function_call_stream(pieces: list[bytes]) -> None:
    ex = Exchange()
    payloads, decoder = await ex.call(mock, "responses", deployment("mock/m"), {"model": "m", "input": "hi"}, True, pieces)
    events = assert_type_first(payloads)
    check_item_events(events)
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]
    output = events[-1]["response"]["output"]
    assert [(i["call_id"], i["name"], i["arguments"], i["status"]) for i in output] == [
        ("call_a", "get_weather", '{"city":"Paris"}', "completed"), ("call_b", "get_time", "{}", "completed"),
    ]
    assert output[0]["id"] != output[1]["id"]
    assert events[-1]["response"]["usage"]["total_tokens"] == 29


def test_mock_truncated_stream_ends_incomplete() -> None:
    stream = b"".join(b"data: " + c + b"\n\n" for c in [
        chat_chunk({"role": "assistant", "content": "cut"}), chat_chunk({}, "length"),
    ]) + b"data: [DONE]\n\n"
    payloads, decoder = decode_all(mock, "responses", "m", [stream])
    last = orjson.loads(payloads[-1])
    assert last["type"] == "response.incomplete" and last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][0]["content"][0]["text"] == "cut" and decoder.done


def test_empty_chat_stream_still_makes_a_whole_response() -> None:
    payloads, decoder = decode_all(mock, "responses", "m", [b"data: [DONE]\n\n"])
    events = [orjson.loads(p) for p in payloads]
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.completed"]
    assert events[0]["response"]["id"] == events[-1]["response"]["id"] and decoder.done
    assert [e["sequence_number"] for e in events] == [0, 1, 2]


def test_mock_function_call_answer() -> None:
    completion = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    response = mock.response("responses", orjson.dumps(completion), "m")
    assert [item["type"] for item in response["output"]] == ["function_call"]
    assert response["output"][0]["arguments"] == '{"city":"Paris"}' and response["created_at"] == 1
