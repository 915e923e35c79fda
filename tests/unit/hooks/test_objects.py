"""The response objects hooks receive behave as LiteLLM's do, and as the dicts they are (SPEC §6).

LiteLLM hooks read answers both ways (`response.choices[0].message.content` and
`response["choices"][0]["message"]["content"]`), hand them to code that wants a dict
(`litellm.completion_cost`, `json.dumps`, `dict(...)`), and edit them in place.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from gateway_trio.hooks import (
    AnthropicMessagesResponse,
    Choices,
    Delta,
    EmbeddingResponse,
    Message,
    ModelResponse,
    ModelResponseStream,
    OpenAIModerationResponse,
    ResponsesAPIResponse,
    StreamingChoices,
    TextCompletionResponse,
    TranscriptionResponse,
    Usage,
)
from gateway_trio.hooks.views import response_object, unwrap

HIDDEN = {"custom_llm_provider": "openai", "model_id": "dep-1", "additional_headers": {}}


def chat_body(text: str = "hello") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


# Each route's native answer, and the LiteLLM class hooks get it as.
SHAPES = [
    (chat_body(), ModelResponse),
    ({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "he"}}]}, ModelResponseStream),
    ({"object": "text_completion", "choices": [{"text": "hi", "index": 0}], "usage": {}}, TextCompletionResponse),
    (
        {"object": "list", "data": [{"object": "embedding", "embedding": [0.1], "index": 0}], "model": "e"},
        EmbeddingResponse,
    ),
    ({"object": "response", "status": "completed", "output": [], "usage": {"input_tokens": 1}}, ResponsesAPIResponse),
    ({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}]}, AnthropicMessagesResponse),
    ({"id": "modr-1", "model": "m", "results": [{"flagged": False}]}, OpenAIModerationResponse),
    ({"text": "transcribed"}, TranscriptionResponse),
]


@pytest.mark.parametrize(("body", "cls"), SHAPES, ids=[cls.__name__ for _, cls in SHAPES])
def test_each_route_s_answer_is_its_litellm_class_and_a_dict(body, cls):
    response = response_object(body, HIDDEN)
    assert type(response) is cls
    assert isinstance(response, dict) and isinstance(response, Mapping)
    assert response == body and dict(response) == body
    assert response._hidden_params is HIDDEN
    assert orjson.loads(orjson.dumps(response)) == body
    assert json.loads(json.dumps(response)) == body


def test_attribute_and_item_access_read_the_same_answer():
    response = response_object(chat_body("both ways"), HIDDEN)
    assert response.choices[0].message.content == "both ways"
    assert response["choices"][0]["message"]["content"] == "both ways"
    assert response["choices"][0].message["content"] == "both ways"
    assert response.usage.prompt_tokens == 3 and response["usage"]["total_tokens"] == 5
    assert response.get("usage").completion_tokens == 2 and response.get("absent", "dflt") == "dflt"
    assert isinstance(response.choices[0], Choices) and isinstance(response.choices[0].message, Message)
    assert isinstance(response.usage, Usage) and isinstance(response.get("usage"), dict)
    assert [choice.finish_reason for choice in response.choices] == ["stop"]
    assert "usage" in response and len(response) == 6


def test_a_declared_field_that_is_absent_reads_none_any_other_name_is_an_attribute_error():
    message = response_object(chat_body()).choices[0].message
    assert message.tool_calls is None and message.function_call is None
    assert "tool_calls" not in message  # reading it does not add it
    with pytest.raises(AttributeError):
        _ = message.no_such_field
    assert getattr(response_object(chat_body()), "_response_ms", 0) == 0  # what completion_cost probes
    assert not hasattr(message, "__setstate__")


def test_stream_chunks_read_their_delta():
    chunk = ModelResponseStream({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}}]}, HIDDEN)
    assert isinstance(chunk.choices[0], StreamingChoices) and isinstance(chunk.choices[0].delta, Delta)
    assert chunk.choices[0].delta.content is None  # the last chunk's empty delta, as LiteLLM reads it


def test_an_edit_through_any_object_is_in_the_answer_the_gateway_sends():
    body = chat_body("before")
    response = response_object(body, HIDDEN)
    response.choices[0].message.content = "after"
    response["model"] = "renamed"
    response.system_fingerprint = "fp"
    sent = orjson.loads(orjson.dumps(unwrap(response)))
    assert sent["choices"][0]["message"]["content"] == "after"
    assert sent["model"] == "renamed" and sent["system_fingerprint"] == "fp"
    assert body["choices"][0]["message"]["content"] == "before"  # the upstream's body is left as it came


def test_nested_values_become_objects_only_when_read():
    response = response_object(chat_body(), HIDDEN)
    assert type(dict.__getitem__(response, "usage")) is dict
    assert type(dict.__getitem__(response, "choices")) is list
    _ = response.usage
    assert type(dict.__getitem__(response, "usage")) is Usage
    assert type(dict.__getitem__(response, "choices")) is list  # untouched: still the plain list


def test_model_dump_is_a_deep_plain_copy():
    response = response_object(chat_body(), HIDDEN)
    _ = response.choices[0].message
    dumped = response.model_dump()
    assert dumped == chat_body() and type(dumped) is dict
    assert type(dumped["choices"][0]["message"]) is dict
    dumped["choices"][0]["message"]["content"] = "changed"
    assert response.choices[0].message.content == "hello"
    assert response.dict() == response.json() == response.to_dict() == chat_body()
    assert orjson.loads(response.model_dump_json()) == chat_body()


def test_hidden_params_take_the_headers_a_hook_adds():
    response = response_object(chat_body(), {"additional_headers": {}})
    response._hidden_params["additional_headers"]["x-mine"] = "1"
    assert response._hidden_params == {"additional_headers": {"x-mine": "1"}}
    assert "_hidden_params" not in response  # never part of the body
    replaced = {"additional_headers": {}}
    response._hidden_params = replaced
    assert response._hidden_params is replaced and "_hidden_params" not in response


def test_copies_and_pickles_keep_class_body_and_hidden_params():
    response = response_object(chat_body(), HIDDEN)
    _ = response.choices[0].message
    for clone in (copy.deepcopy(response), pickle.loads(pickle.dumps(response)), copy.copy(response)):
        assert type(clone) is ModelResponse and clone == chat_body()
        assert clone._hidden_params == HIDDEN
        assert clone.choices[0].message.content == "hello"


def test_hooks_may_build_their_own_answers_from_the_classes():
    built = ModelResponse(model="m", choices=[Choices(index=0, message=Message(role="assistant", content="x"))])
    assert built.choices[0].message.content == "x" and built._hidden_params == {}
    assert orjson.loads(orjson.dumps(unwrap(built)))["choices"][0]["message"]["content"] == "x"


def test_unwrap_dumps_another_library_s_model():
    class Foreign:
        def model_dump(self):
            return {"object": "chat.completion"}

    assert unwrap(Foreign()) == {"object": "chat.completion"}
    plain = {"a": 1}
    assert unwrap(plain) is plain


def test_it_reads_the_way_litellm_s_cost_calculator_reads_an_answer():
    """`litellm.completion_cost` (without litellm installed here): it wants a dict whose `usage` is
    a dict it can splat, `model` by `.get`, and `_hidden_params` by `getattr`."""
    response = response_object(chat_body(), {"custom_llm_provider": "openai", "model": "gpt-4o-mini"})
    assert isinstance(response, dict)
    usage = response.get("usage", {})
    assert isinstance(usage, dict) and dict(**usage) == chat_body()["usage"]
    assert usage.get("prompt_tokens", 0) == 3 and "prompt_tokens_details" not in usage
    assert response.get("model", None) == "gpt-4o-mini" and response.get("service_tier") is None
    hidden = getattr(response, "_hidden_params", None)
    assert hidden.get("custom_llm_provider") == "openai" and hidden.get("region_name") is None
    assert getattr(response, "_response_ms", 0) == 0
