"""LiteLLM's request parameters read at parse time: out of the body, onto the Call.

Async only because a `Call` notes the trio clock when it is made."""

from __future__ import annotations

import pytest

from gateway_trio.apis import CHAT, EMBEDDINGS, MESSAGES
from gateway_trio.apis.options import MAX_NUM_RETRIES, apply_headers, form_values
from gateway_trio.calls import NO_OVERRIDES, Overrides
from gateway_trio.errors import BadRequest


def chat(**extra):
    return {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_a_body_without_litellm_fields_is_kept_as_it_is():
    body = chat(temperature=0.1)
    call = CHAT.parse(body)
    assert call.body is body
    assert call.overrides is NO_OVERRIDES and call.drop_params is None


async def test_every_litellm_field_leaves_the_body_for_the_call():
    call = CHAT.parse(chat(
        fallbacks=["b", {"model": "c"}], context_window_fallbacks=["d"], num_retries=3, timeout=12,
        stream_timeout=4.5, mock_response="hello", drop_params=False, caching=True, cache={"no-store": True},
        metadata={"tags": ["m"], "who": "me"}, litellm_metadata={"tags": ["l", "m"], "where": "here"},
        tags=["t"], temperature=0,
    ))
    assert call.body == chat(temperature=0)
    assert call.overrides == Overrides(fallbacks=("b", "c"), context_window_fallbacks=("d",), num_retries=3,
                                       timeout_s=12.0, stream_timeout_s=4.5, mock_response="hello")
    assert call.drop_params is False
    assert call.tags == ["t", "m", "l"]
    assert call.metadata == {"who": "me", "where": "here", "cache": {"no-store": True}, "caching": True}


async def test_num_retries_is_capped_and_mock_response_may_be_a_message():
    call = EMBEDDINGS.parse({"model": "e", "input": "x", "num_retries": 1000,
                             "mock_response": {"role": "assistant", "content": "canned"}})
    assert call.overrides.num_retries == MAX_NUM_RETRIES and call.overrides.mock_response == "canned"


def test_user_config_is_refused_on_every_json_route():
    from gateway_trio.apis.checks import parse_json_object

    with pytest.raises(BadRequest) as refused:
        parse_json_object(b'{"model": "m", "user_config": {"model_list": []}}')
    assert refused.value.param == "user_config"


def headed(call, **headers):
    call.request_headers = {name.replace("_", "-"): value for name, value in headers.items()}
    apply_headers(call)
    return call


async def test_headers_set_what_the_body_did_not_and_add_tags():
    call = headed(CHAT.parse(chat(num_retries=1, tags=["body"])), x_litellm_num_retries="5",
                  x_litellm_timeout="2.5", x_gateway_stream_timeout="1", x_litellm_tags="a, b,,body")
    assert call.overrides == Overrides(num_retries=1, timeout_s=2.5, stream_timeout_s=1.0)
    assert call.tags == ["body", "a", "b"]


async def test_the_gateway_spelling_wins_over_litellms():
    call = headed(MESSAGES.parse({"model": "c", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}),
                  x_gateway_timeout="3", x_litellm_timeout="nonsense")
    assert call.overrides.timeout_s == 3.0


async def test_unrelated_headers_change_nothing():
    call = headed(CHAT.parse(chat()), x_request_id="1", user_agent="sdk")
    assert call.overrides is NO_OVERRIDES and call.tags == []


@pytest.mark.parametrize(("header", "value"), [
    ("x-litellm-timeout", "0"), ("x-litellm-timeout", "inf"), ("x-litellm-num-retries", "1.5"),
    ("x-gateway-num-retries", "-2"), ("x-litellm-stream-timeout", "soon"),
])
async def test_a_bad_header_names_itself(header, value):
    call = CHAT.parse(chat())
    call.request_headers = {header: value}
    with pytest.raises(BadRequest) as refused:
        apply_headers(call)
    assert refused.value.param == header


def test_form_fields_are_read_into_json_values():
    values = form_values({"model": "w", "fallbacks": "a, b", "context_window_fallbacks": '["c"]', "num_retries": "2",
                          "timeout": "1.5", "drop_params": "TRUE", "caching": "no", "cache": '{"ttl": 5}',
                          "language": "en"})
    assert values == {"model": "w", "fallbacks": ["a", "b"], "context_window_fallbacks": ["c"], "num_retries": 2,
                      "timeout": 1.5, "drop_params": True, "caching": "no", "cache": {"ttl": 5}, "language": "en"}
    with pytest.raises(BadRequest) as refused:
        form_values({"metadata": "{not json"})
    assert refused.value.param == "metadata"
