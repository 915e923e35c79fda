"""The Anthropic features chat clients reach through the translation: structured output,
extended thinking (both ways, streamed and not), tools kept with tool_choice "none", the
parameters Anthropic cannot honour, and the client headers it reads."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway_trio.adapters import PROVIDERS
from gateway_trio.adapters.anthropic import AnthropicAdapter
from gateway_trio.adapters.anthropic_json import JSON_TOOL
from gateway_trio.adapters.base import with_client_headers
from gateway_trio.adapters.params import ANTHROPIC_CHAT, used_params
from gateway_trio.apis import CHAT
from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest

adapter = AnthropicAdapter()
USER = [{"role": "user", "content": "Who is Ada?"}]
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
    "required": ["name", "born"],
}


def deployment() -> Deployment:
    return Deployment.from_config(ModelConfig(name="claude", model="anthropic/claude-sonnet-4", api_key="sk-ant-x"))


def translated(**fields: Any) -> dict[str, Any]:
    body = {"model": "claude", "messages": USER, **fields}
    return orjson.loads(adapter.chat_request(deployment(), body, "claude-sonnet-4", False).content)


def stream_chunks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    decoder = adapter.chat_stream("claude")
    raw = b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in events)
    return [orjson.loads(p) for p in decoder.feed(raw)]


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def finish(chunks: list[dict[str, Any]]) -> str | None:
    return next(
        (c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]), None
    )


START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4",
        "usage": {"input_tokens": 9, "output_tokens": 1},
    },
}


def end(stop_reason: str) -> list[dict[str, Any]]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": 20}},
        {"type": "message_stop"},
    ]


# --- parameters Anthropic cannot honour ----------------------------------------------------


def test_used_params_skips_nulls_and_openai_defaults():
    body = {
        "seed": 3,
        "n": 1,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.5,
        "logprobs": False,
        "logit_bias": {},
        "top_logprobs": None,
        "temperature": 0.2,
    }
    assert used_params(body, ANTHROPIC_CHAT) == ["seed", "frequency_penalty"]
    assert used_params({"logprobs": True, "n": 2}, ANTHROPIC_CHAT) == ["logprobs", "n"]


def test_adapters_name_what_they_cannot_honour_per_call_type():
    assert adapter.unsupported_params("chat", {"seed": 1, "top_k": 5, "response_format": {"type": "json_object"}}) == [
        "seed"
    ]
    assert adapter.unsupported_params("text_completion", {"echo": True, "suffix": "x", "best_of": 1}) == [
        "echo",
        "suffix",
    ]
    assert adapter.unsupported_params("messages", {"top_k": 5}) == []  # Anthropic's own format: nothing lost
    openai = PROVIDERS["openai"]
    assert openai.unsupported_params("chat", {"seed": 1}) == []
    assert openai.unsupported_params("messages", {"top_k": 5, "thinking": {"type": "disabled"}}) == ["top_k"]
    assert openai.unsupported_params("messages", {"thinking": {"type": "enabled", "budget_tokens": 2000}}) == []
    assert adapter.client_headers == frozenset({"anthropic-beta"}) and not openai.client_headers


def test_client_headers_join_the_deployments_own():
    merged = with_client_headers(
        {"anthropic-beta": "prompt-caching-2024-07-31", "x-api-key": "k"}, {"anthropic-beta": "output-128k-2025-02-19"}
    )
    assert merged == {"anthropic-beta": "prompt-caching-2024-07-31,output-128k-2025-02-19", "x-api-key": "k"}
    assert with_client_headers({}, {"anthropic-beta": "a"}) == {"anthropic-beta": "a"}


def test_top_k_is_carried_over():
    assert translated(top_k=5)["top_k"] == 5


# --- structured output ---------------------------------------------------------------------


def test_json_schema_becomes_a_forced_tool():
    body = translated(response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}})
    assert body["tools"] == [
        {"name": JSON_TOOL, "description": "Answer with JSON matching this schema (person).", "input_schema": SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}


def test_json_object_and_text_formats():
    tool = translated(response_format={"type": "json_object"})["tools"][0]
    assert tool["name"] == JSON_TOOL and tool["input_schema"]["type"] == "object"
    assert "tools" not in translated(response_format={"type": "text"})


def test_json_tool_joins_client_tools_and_is_not_forced_while_thinking():
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    body = translated(tools=tools, reasoning_effort="low", response_format={"type": "json_object"})
    assert [t["name"] for t in body["tools"]] == ["lookup", JSON_TOOL]
    assert "tool_choice" not in body  # Anthropic refuses a forced tool while thinking


@pytest.mark.parametrize(
    "response_format",
    [{"type": "yaml"}, {"type": "json_schema"}, "json", {"type": "json_schema", "json_schema": {"schema": []}}],
)
def test_bad_response_format_is_a_400_naming_it(response_format):
    with pytest.raises(BadRequest) as raised:
        translated(response_format=response_format)
    assert raised.value.param == "response_format"


def test_json_tool_answer_is_the_content():
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": JSON_TOOL, "input": {"name": "Ada", "born": 1815}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 9, "output_tokens": 12},
    }
    answer = adapter.chat_response(orjson.dumps(message), "claude")
    choice = answer["choices"][0]
    assert orjson.loads(choice["message"]["content"]) == {"name": "Ada", "born": 1815}
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_json_tool_stream_becomes_content_deltas():
    events = [
        START,
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": JSON_TOOL, "input": {}},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"name": "Ada",'},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": ' "born": 1815}'},
        },
        {"type": "content_block_stop", "index": 0},
        *end("tool_use"),
    ]
    chunks = stream_chunks(events)
    assert not any("tool_calls" in d for d in deltas(chunks))
    text = "".join(d.get("content") or "" for d in deltas(chunks))
    assert orjson.loads(text) == {"name": "Ada", "born": 1815}
    assert finish(chunks) == "stop"


# --- extended thinking ---------------------------------------------------------------------


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096)])
def test_reasoning_effort_becomes_a_thinking_budget(effort, budget):
    body = translated(reasoning_effort=effort)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 4096 + budget  # the answer keeps its default room


def test_thinking_is_passed_on_and_wins_over_reasoning_effort():
    thinking = {"type": "enabled", "budget_tokens": 3000}
    body = translated(thinking=thinking, reasoning_effort="high", max_tokens=8000)
    assert body["thinking"] == thinking and body["max_tokens"] == 8000
    assert "thinking" not in translated(reasoning_effort="none")
    assert translated(thinking={"type": "disabled"})["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"thinking": {"type": "enabled"}}, "thinking"),
        ({"thinking": "on"}, "thinking"),
        ({"reasoning_effort": "high", "max_tokens": 1000}, "max_tokens"),
    ],
)
def test_bad_thinking_requests_are_400s_naming_the_field(fields, param):
    with pytest.raises(BadRequest) as raised:
        translated(**fields)
    assert raised.value.param == param


def test_thinking_blocks_of_the_history_go_back_first_and_signed():
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "thinking_blocks": [
                {"type": "thinking", "thinking": "Look it up.", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": "opaque"},
            ],
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "Ada"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "1815"},
    ]
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    body = orjson.loads(adapter.chat_request(deployment(), {"messages": messages, "tools": tools}, "m", False).content)
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Look it up.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "Ada"}},
    ]
    text_only = [
        *USER,
        {
            "role": "assistant",
            "content": "Hi",
            "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}],
        },
    ]
    body = orjson.loads(adapter.chat_request(deployment(), {"messages": text_only}, "m", False).content)
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "t", "signature": "s"},
        {"type": "text", "text": "Hi"},
    ]


def test_bad_thinking_blocks_are_400s():
    messages = [*USER, {"role": "assistant", "content": "x", "thinking_blocks": [{"type": "thought"}]}]
    with pytest.raises(BadRequest) as raised:
        adapter.chat_request(deployment(), {"messages": messages}, "m", False)
    assert raised.value.param == "messages[1].thinking_blocks[0]"


def test_thinking_answer_gives_reasoning_content_and_thinking_blocks():
    blocks = [
        {"type": "thinking", "thinking": "Ada was born ", "signature": "sig-a"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "thinking", "thinking": "in 1815.", "signature": "sig-b"},
    ]
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4",
        "content": [*blocks, {"type": "text", "text": "1815."}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 9, "output_tokens": 30},
    }
    reply = adapter.chat_response(orjson.dumps(message), "claude")["choices"][0]["message"]
    assert reply["content"] == "1815."
    assert reply["reasoning_content"] == "Ada was born in 1815."
    assert reply["thinking_blocks"] == blocks
    plain = {**message, "content": [{"type": "text", "text": "1815."}]}
    assert "reasoning_content" not in adapter.chat_response(orjson.dumps(plain), "claude")["choices"][0]["message"]


def test_thinking_stream_gives_reasoning_deltas_then_the_signed_block():
    events = [
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Ada was "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "born."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-1"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "x"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "1815."}},
        {"type": "content_block_stop", "index": 2},
        *end("end_turn"),
    ]
    got = deltas(stream_chunks(events))
    assert "".join(d.get("reasoning_content") or "" for d in got) == "Ada was born."
    blocks = [b for d in got for b in d.get("thinking_blocks") or ()]
    assert blocks == [
        {"type": "thinking", "thinking": "Ada was born.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "x"},
    ]
    assert "".join(d.get("content") or "" for d in got) == "1815."


# --- tools with tool_choice "none" ---------------------------------------------------------


def test_tool_choice_none_keeps_the_tools_for_a_history_with_tool_calls():
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "1815"},
    ]
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    body = {"messages": messages, "tools": tools, "tool_choice": "none"}
    sent = orjson.loads(adapter.chat_request(deployment(), body, "m", False).content)
    assert [t["name"] for t in sent["tools"]] == ["lookup"]
    assert sent["tool_choice"] == {"type": "none"}


def test_a_thinking_stream_assembles_for_logging_with_its_reasoning():
    events = [
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "4"}},
        *end("end_turn"),
    ]
    assembler = CHAT.assembler()
    for chunk in stream_chunks(events):
        assembler.add(orjson.dumps(chunk))
    message = assembler.result(None)["choices"][0]["message"]
    assert message["content"] == "4" and message["reasoning_content"] == "Hmm."
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "Hmm.", "signature": "s"}]


# --- /v1/messages on a chat upstream: thinking as reasoning_effort, reasoning as thinking ----


def openai_deployment() -> Deployment:
    return Deployment.from_config(ModelConfig(name="gpt", model="openai/o3", api_base="https://api.openai.com/v1"))


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 2048}, "medium"),
        ({"type": "enabled", "budget_tokens": 10000}, "high"),
        ({"type": "adaptive"}, "medium"),
        ({"type": "disabled"}, None),
    ],
)
def test_messages_thinking_becomes_reasoning_effort_on_a_chat_upstream(thinking, effort):
    body = {"model": "gpt", "max_tokens": 50, "messages": USER, "thinking": thinking}
    sent = orjson.loads(PROVIDERS["openai"].messages_request(openai_deployment(), body, "o3", False).content)
    assert sent.get("reasoning_effort") == effort and "thinking" not in sent


def test_messages_bad_thinking_is_a_400_on_a_chat_upstream():
    body = {"model": "gpt", "max_tokens": 50, "messages": USER, "thinking": {"type": "enabled"}}
    with pytest.raises(BadRequest) as raised:
        PROVIDERS["openai"].messages_request(openai_deployment(), body, "o3", False)
    assert raised.value.param == "thinking"


def test_a_chat_upstreams_reasoning_comes_back_as_a_thinking_block():
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "o3",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2 is 4."},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
    }
    message = PROVIDERS["openai"].messages_response(orjson.dumps(completion), "o3")
    assert message["content"] == [
        {"type": "thinking", "thinking": "2+2 is 4.", "signature": ""},
        {"type": "text", "text": "4"},
    ]


def test_a_chat_upstreams_reasoning_streams_as_a_thinking_block():
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "o3",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    raw = b"".join(
        [
            chunk({"role": "assistant", "reasoning_content": "2+2 "}),
            chunk({"reasoning_content": "is 4."}),
            chunk({"content": "4"}),
            chunk({}, "stop"),
            b"data: [DONE]\n\n",
        ]
    )
    events = [orjson.loads(p) for p in PROVIDERS["openai"].messages_stream("o3").feed(raw)]
    kinds = [(e["type"], e.get("index"), (e.get("delta") or e.get("content_block") or {}).get("type")) for e in events]
    assert kinds[:8] == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
    ]
    assert "".join(
        e["delta"]["thinking"] for e in events if e["type"] == "content_block_delta" and e["index"] == 0
    ) == ("2+2 is 4.")
