"""Each API object on its own: its routes, its adapter methods, its assembler, its texts."""

from __future__ import annotations

import orjson
import pytest

from gateway_trio import apis
from gateway_trio.adapters import PROVIDERS
from gateway_trio.apis import CHAT, COMPLETIONS, MESSAGES, RESPONSES
from gateway_trio.apis.slots import read, write


def payloads(*events: dict) -> list[bytes]:
    return [orjson.dumps(event) for event in events]


def test_every_api_answers_with_and_without_v1_and_names_served_adapter_methods():
    for api in apis.APIS:
        assert {p.removeprefix("/v1") for p in api.paths} == {api.paths[1]}, api
        assert hasattr(PROVIDERS["openai"], f"{api.adapter_method}_request"), api
    assert len({api.call_type for api in apis.APIS}) == len(apis.APIS)
    assert [api.name for api in apis.APIS if api.x_api_key] == ["messages", "count_tokens"]


def test_a_message_stream_assembles_into_its_message():
    assembler = MESSAGES.assembler()
    for payload in payloads(
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                              "model": "claude", "stop_reason": None, "usage": {"input_tokens": 7}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "tu_1", "name": "look", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"q": '}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"x"}'}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ):
        assembler.add(payload)
    assert assembler.result(None) == {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": "Hello"},
                    {"type": "tool_use", "id": "tu_1", "name": "look", "input": {"q": "x"}}],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 7, "output_tokens": 3},
    }


def test_a_responses_stream_assembles_into_its_final_response():
    final = {"id": "resp_1", "object": "response", "status": "completed",
             "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}]}
    assembler = RESPONSES.assembler()
    for payload in payloads(
        {"type": "response.created", "response": {"id": "resp_1", "object": "response", "status": "in_progress",
                                                  "output": []}},
        {"type": "response.output_text.delta", "delta": "Hi"},
        {"type": "response.completed", "response": final},
    ):
        assembler.add(payload)
    assert assembler.result(None) == final
    cut = RESPONSES.assembler()  # cut before the end: the last response seen, with the items done
    item = final["output"][0]
    for payload in payloads({"type": "response.created", "response": {"id": "resp_1", "output": []}},
                            {"type": "response.output_item.done", "item": item}):
        cut.add(payload)
    assert cut.result(None) == {"id": "resp_1", "output": [item]}
    assert RESPONSES.assembler().result(None) is None


def test_a_completions_stream_assembles_into_a_text_completion():
    assembler = COMPLETIONS.assembler()
    for payload in payloads(
        {"id": "cmpl-1", "object": "text_completion", "created": 5, "model": "m",
         "choices": [{"index": 0, "text": "He", "finish_reason": None}]},
        {"id": "cmpl-1", "object": "text_completion", "created": 5, "model": "m",
         "choices": [{"index": 0, "text": "y", "finish_reason": "stop"}]},
    ):
        assembler.add(payload)
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert assembler.result(usage) == {
        "id": "cmpl-1", "object": "text_completion", "created": 5, "model": "m",
        "choices": [{"index": 0, "text": "Hey", "logprobs": None, "finish_reason": "stop"}], "usage": usage,
    }


@pytest.mark.parametrize(("api", "body", "texts"), [
    (CHAT, {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, "b"]}]}, ["a", "b"]),
    (MESSAGES, {"system": "s", "messages": [{"role": "user", "content": "a"}]}, ["s", "a"]),
    (RESPONSES, {"instructions": "i", "input": [{"role": "user", "content": "a"}]}, ["i", "a"]),
    (COMPLETIONS, {"prompt": ["a", "b"]}, ["a", "b"]),
])
def test_request_texts_are_read_and_written_in_place(api, body, texts):
    slots = api.request_slots(body)
    assert read(slots) == texts
    write(slots, [t.upper() for t in texts])
    assert read(api.request_slots(body)) == [t.upper() for t in texts]


def test_only_chat_answers_a_refusal_and_its_stream_is_two_chunks():
    class FakeCall:
        call_id, model = "abc", "gpt"

    assert CHAT.refusal_body(FakeCall(), "no")["choices"][0]["message"]["content"] == "no"
    first, last = (orjson.loads(p) for p in CHAT.refusal_chunks(FakeCall(), "no"))
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["content"] == "no"
    assert last["choices"][0]["finish_reason"] == "stop"
    for api in apis.APIS[1:]:
        assert api.refusal_body(FakeCall(), "no") is None and api.refusal_chunks(FakeCall(), "no") is None
