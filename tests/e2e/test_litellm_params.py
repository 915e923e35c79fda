"""LiteLLM's request parameters through the real gateway: interpreted, never forwarded.

A strict mock upstream answers 400 to any field its API does not document (as OpenAI and
Anthropic do), so a parameter that leaked would fail the call; its records show what was sent.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import trio
from harness import chat, client_and_gateway, make_config, sse_payloads

from gateway_trio.testing import Behavior, MockUpstream

MASTER = "sk-master-litellm-params-0123456789"
KEY = "sk-test-key-litellm-params-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}

# Every LiteLLM body parameter a client may send that reaches the upstream unless interpreted
# (`mock_response` is tested on its own: it keeps the call from the upstream altogether).
LITELLM_BODY = {
    "fallbacks": ["backup"],
    "context_window_fallbacks": ["backup"],
    "num_retries": 1,
    "timeout": 30,
    "stream_timeout": 20,
    "caching": False,
    "cache": {"no-cache": True, "ttl": 60},
    "drop_params": True,
    "metadata": {"tags": ["body-tag"], "trace": "t-1"},
    "litellm_metadata": {"tags": ["litellm-tag"]},
    "tags": ["plain-tag"],
}
LITELLM_HEADERS = {
    "x-litellm-timeout": "30",
    "x-litellm-stream-timeout": "20",
    "x-litellm-num-retries": "1",
    "x-litellm-tags": "header-one, header-two",
    "x-gateway-timeout": "25",
}
GATEWAY_ONLY = set(LITELLM_BODY) | {"mock_response", "user_config", "mock_testing_fallbacks",
                                    "mock_testing_context_fallbacks"}

ANTHROPIC_BODY = {"max_tokens": 32, "messages": [{"role": "user", "content": "hi there"}]}
# (path, body without model, the model group, whether it streams)
ROUTES = [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi there"}]}, "gpt", True),
    ("/v1/completions", {"prompt": "hi there"}, "gpt", True),
    ("/v1/embeddings", {"input": "hi there"}, "gpt", False),
    ("/v1/moderations", {"input": "hi there"}, "gpt", False),
    ("/v1/responses", {"input": "hi there"}, "gpt", True),
    ("/v1/messages", ANTHROPIC_BODY, "claude", True),
    ("/v1/messages", ANTHROPIC_BODY, "gpt", True),  # translated to chat for an OpenAI deployment
]
CASES = [(path, body, model, stream) for path, body, model, streams in ROUTES for stream in (False, True)[: 1 + streams]]


def config_for(upstream: MockUpstream, hooks: dict[str, Any] | None = None, **router: Any):
    base = upstream.base_url
    models = [
        {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{base}/v1", "api_key": "sk-upstream-secret",
         "info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}},
        {"name": "backup", "model": "openai/backup", "api_base": f"{base}/v1"},
        {"name": "third", "model": "openai/third", "api_base": f"{base}/v1"},
        {"name": "claude", "model": "anthropic/claude-3-5-sonnet", "api_base": base, "api_key": "sk-ant-secret"},
    ]
    return make_config(server={"master_key": MASTER}, models=models, keys=[{"key": KEY, "models": ["gpt"]}],
                       router={"retry_backoff_s": 0, **router}, hooks=hooks or {})


@pytest.fixture
async def strict(nursery) -> MockUpstream:
    mock = MockUpstream(strict=True)
    await nursery.start(mock.serve)
    return mock


async def record_of(client: httpx.AsyncClient, gateway: Any, response: httpx.Response) -> dict[str, Any]:
    await gateway.spend.flush()
    call_id = response.headers["x-gateway-call-id"]
    answer = await client.get("/spend/logs", params={"call_id": call_id}, headers=AUTH)
    (record,) = answer.json()
    return record


def sent_fields(mock: MockUpstream) -> set[str]:
    fields: set[str] = set()
    for received in mock.received:
        body = received.json or {}
        fields |= set(body.get("fields", {}) if "fields" in body else body)
    return fields


# --- the strict upstream itself -------------------------------------------------------------------


async def test_the_strict_mock_refuses_what_real_apis_refuse(strict):
    async with httpx.AsyncClient(base_url=strict.base_url) as http:
        openai = await http.post("/v1/chat/completions", json=chat("m", fallbacks=["x"]))
        anthropic = await http.post("/v1/messages", json={"model": "c", **ANTHROPIC_BODY, "num_retries": 2})
        fine = await http.post("/v1/chat/completions", json=chat("m", temperature=0.2, user="u"))
        form = await http.post("/v1/audio/transcriptions", data={"model": "w", "timeout": "3"},
                               files={"file": ("a.wav", b"RIFF")})
    assert form.status_code == 400 and form.json()["error"]["message"].endswith("supplied: timeout")
    assert openai.status_code == 400
    assert openai.json()["error"]["message"] == "Unrecognized request argument supplied: fallbacks"
    assert anthropic.status_code == 400
    assert anthropic.json()["error"]["message"] == "num_retries: Extra inputs are not permitted"
    assert fine.status_code == 200


async def test_a_field_the_gateway_does_not_know_still_reaches_the_strict_upstream(strict):
    """The control: the gateway passes unknown fields on, so the strict mock would catch a leak."""
    async with client_and_gateway(config_for(strict)) as (client, _):
        answer = await client.post("/v1/chat/completions", json=chat("gpt", not_an_openai_field=1), headers=AUTH)
    assert answer.status_code >= 400
    assert "Unrecognized request argument supplied: not_an_openai_field" in answer.text


# --- nothing leaks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "model", "stream"), CASES)
async def test_every_litellm_parameter_is_interpreted_not_forwarded(strict, path, body, model, stream):
    request = {"model": model, **body, **LITELLM_BODY}
    if stream:
        request["stream"] = True
    async with client_and_gateway(config_for(strict)) as (client, gateway):
        answer = await client.post(path, json=request, headers={**AUTH, **LITELLM_HEADERS})
        assert answer.status_code == 200, answer.text
        if stream:
            assert sse_payloads(answer.text), answer.text
        record = await record_of(client, gateway, answer)
    assert len(strict.received) == 1
    assert not sent_fields(strict) & GATEWAY_ONLY, sent_fields(strict)
    assert record["status"] == "success"
    assert set(record["tags"]) >= {"plain-tag", "body-tag", "litellm-tag", "header-one", "header-two"}
    assert record["metadata"]["trace"] == "t-1"
    assert record["metadata"]["cache"] == {"no-cache": True, "ttl": 60} and record["metadata"]["caching"] is False


async def test_transcription_form_fields_are_interpreted_not_forwarded(strict):
    form = {"model": "gpt", "num_retries": "1", "timeout": "30", "fallbacks": "backup, third", "tags": "a,b",
            "drop_params": "true", "caching": "false", "response_format": "json"}
    async with client_and_gateway(config_for(strict)) as (client, gateway):
        answer = await client.post("/v1/audio/transcriptions", data=form, files={"file": ("a.wav", b"RIFF0000")},
                                   headers={**AUTH, "x-litellm-tags": "c"})
        assert answer.status_code == 200, answer.text
        record = await record_of(client, gateway, answer)
    assert answer.json()["text"].startswith("transcribed")
    assert set(strict.received[0].json["fields"]) == {"model", "response_format"}
    assert record["tags"] == ["a", "b", "c"]


async def test_parameters_a_pre_call_hook_sets_are_interpreted_too(strict):
    config = config_for(strict, hooks={"callbacks": ["litellm_param_hooks:handler"]})
    async with client_and_gateway(config) as (client, gateway):
        sent = await client.post("/v1/chat/completions", json=chat("gpt", tags=["client"]), headers=AUTH)
        mocked = await client.post("/v1/chat/completions", json=chat("gpt", "mock me"), headers=AUTH)
        assert sent.status_code == 200 and mocked.status_code == 200, (sent.text, mocked.text)
        record = await record_of(client, gateway, sent)
    assert len(strict.received) == 1 and not sent_fields(strict) & GATEWAY_ONLY
    assert mocked.json()["choices"][0]["message"]["content"] == "mocked by a hook"
    assert record["tags"] == ["client", "from-hook"] and record["metadata"]["hooked"] is True


# --- mock_response ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "model", "stream"), [c for c in CASES if c[0] not in (
    "/v1/embeddings", "/v1/moderations")])
async def test_mock_response_answers_without_the_upstream(strict, path, body, model, stream):
    request = {"model": model, **body, "mock_response": "a canned reply"}
    if stream:
        request["stream"] = True
    async with client_and_gateway(config_for(strict)) as (client, gateway):
        answer = await client.post(path, json=request, headers=AUTH)
        assert answer.status_code == 200, answer.text
        record = await record_of(client, gateway, answer)
    assert strict.received == []
    text = answer.text if stream else orjson.dumps(answer.json()).decode()
    assert "canned" in text and "reply" in text
    if stream:
        assert sse_payloads(answer.text)
    else:
        assert "a canned reply" in text
    assert answer.headers["x-gateway-model-group"] == model
    assert "x-gateway-model-id" in answer.headers
    assert record["metadata"]["mock_response"] is True and record["status"] == "success"
    assert record["completion_tokens"] == 3


async def test_mock_response_as_a_message_and_on_embeddings(strict):
    async with client_and_gateway(config_for(strict)) as (client, gateway):
        message = await client.post("/v1/chat/completions", headers=AUTH, json=chat(
            "gpt", mock_response={"role": "assistant", "content": "from a message"}))
        embedded = await client.post("/v1/embeddings", headers=AUTH,
                                     json={"model": "gpt", "input": "x", "mock_response": "ignored"})
        record = await record_of(client, gateway, message)
    assert message.json()["choices"][0]["message"]["content"] == "from a message"
    assert embedded.status_code == 200 and embedded.json()["data"][0]["embedding"]
    assert strict.received == []
    assert record["cost"] == pytest.approx(3 * 2e-6 + record["prompt_tokens"] * 1e-6)  # priced as LiteLLM does


# --- routing options ----------------------------------------------------------------------------------


async def test_request_fallbacks_replace_the_routers(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=500)
    config = config_for(upstream, num_retries=0, fallbacks={"gpt": ["third"]})
    async with client_and_gateway(config) as (client, _):
        answer = await client.post("/v1/chat/completions", json=chat("gpt", fallbacks=["backup"]), headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-gateway-attempted-fallbacks"] == "1"
    assert [r.model for r in upstream.received] == ["gpt-4o-mini", "backup"]


async def test_request_fallbacks_must_be_models_the_key_may_use_and_served(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        refused = await client.post("/v1/chat/completions", json=chat("gpt", fallbacks=["backup"]),
                                    headers={"authorization": f"Bearer {KEY}"})
        unknown = await client.post("/v1/chat/completions", json=chat("gpt", fallbacks=["nowhere"]), headers=AUTH)
        on_messages = await client.post("/v1/messages", json={"model": "gpt", **ANTHROPIC_BODY, "fallbacks": [3]},
                                        headers=AUTH)
    assert refused.status_code == 403 and refused.json()["error"]["param"] == "fallbacks"
    assert "'backup'" in refused.json()["error"]["message"]
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "fallbacks"
    assert on_messages.status_code == 400 and on_messages.json()["type"] == "error"
    assert "fallbacks[0]" in on_messages.json()["error"]["message"]
    assert upstream.received == []


async def test_request_context_window_fallbacks(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=400, content="This model's maximum context length is 8 tokens")
    async with client_and_gateway(config_for(upstream)) as (client, _):
        answer = await client.post("/v1/chat/completions", headers=AUTH,
                                   json=chat("gpt", context_window_fallbacks=["third"]))
        without = await client.post("/v1/chat/completions", headers=AUTH, json=chat("gpt"))
    assert answer.status_code == 200 and answer.headers["x-gateway-attempted-fallbacks"] == "1"
    assert [r.model for r in upstream.received] == ["gpt-4o-mini", "third", "gpt-4o-mini"]
    assert without.status_code == 400


async def test_mock_testing_flags_fail_the_requested_group_without_calling_it(strict):
    async with client_and_gateway(config_for(strict)) as (client, _):
        failed_over = await client.post("/v1/chat/completions", headers=AUTH, json=chat(
            "gpt", mock_testing_fallbacks=True, fallbacks=["backup"]))
        widened = await client.post("/v1/chat/completions", headers=AUTH, json=chat(
            "gpt", mock_testing_context_fallbacks=True, context_window_fallbacks=["third"]))
        alone = await client.post("/v1/chat/completions", headers=AUTH, json=chat("gpt", mock_testing_fallbacks=True))
    assert failed_over.status_code == 200 and failed_over.headers["x-gateway-attempted-fallbacks"] == "1"
    assert widened.status_code == 200 and widened.headers["x-gateway-attempted-fallbacks"] == "1"
    assert alone.status_code == 502 and "mock_testing_fallbacks" in alone.json()["error"]["message"]
    assert [r.model for r in strict.received] == ["backup", "third"]


@pytest.mark.parametrize(("body", "headers", "attempts"), [
    ({"num_retries": 0}, {}, 1),
    ({}, {"x-litellm-num-retries": "1"}, 2),
    ({}, {"x-gateway-num-retries": "3", "x-litellm-num-retries": "0"}, 4),  # our spelling first
    ({"num_retries": 0}, {"x-litellm-num-retries": "3"}, 1),  # the body wins
])
async def test_num_retries_from_body_and_headers(upstream, body, headers, attempts):
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=500)
    async with client_and_gateway(config_for(upstream, num_retries=2)) as (client, _):
        answer = await client.post("/v1/chat/completions", json=chat("gpt", **body), headers={**AUTH, **headers})
    assert answer.status_code == 502, answer.text
    assert len(upstream.received) == attempts
    assert answer.headers["x-gateway-attempted-retries"] == str(attempts - 1)


@pytest.mark.parametrize(("body", "headers"), [
    ({"timeout": 0.5}, {}),
    ({}, {"x-litellm-timeout": "0.5"}),
    ({}, {"x-gateway-timeout": "0.5"}),
    ({"timeout": 600}, {}),  # asks for more than the router's 1 s: gets the router's
])
async def test_timeout_shortens_the_whole_request_never_lengthens_it(upstream, body, headers):
    upstream.behaviors["gpt-4o-mini"] = Behavior(delay_s=10)
    async with client_and_gateway(config_for(upstream, timeout_s=1.0, num_retries=0)) as (client, _):
        started = trio.current_time()
        answer = await client.post("/v1/chat/completions", json=chat("gpt", **body), headers={**AUTH, **headers})
        elapsed = trio.current_time() - started
    assert answer.status_code == 504, answer.text
    assert elapsed < 5


async def test_stream_timeout_header_bounds_the_first_chunk(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(first_byte_delay_s=10)
    async with client_and_gateway(config_for(upstream, num_retries=0)) as (client, _):
        started = trio.current_time()
        answer = await client.post("/v1/chat/completions", json=chat("gpt", stream=True),
                                   headers={**AUTH, "x-litellm-stream-timeout": "0.3"})
        elapsed = trio.current_time() - started
    assert answer.status_code == 504, answer.text
    assert elapsed < 5


# --- bad values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "param"), [
    ("num_retries", "2", "num_retries"),
    ("num_retries", -1, "num_retries"),
    ("num_retries", True, "num_retries"),
    ("timeout", 0, "timeout"),
    ("timeout", "30", "timeout"),
    ("stream_timeout", -1, "stream_timeout"),
    ("fallbacks", "backup", "fallbacks"),
    ("fallbacks", [""], "fallbacks[0]"),
    ("fallbacks", [{"model": "backup", "api_key": "x"}], "fallbacks[0]"),
    ("context_window_fallbacks", [1], "context_window_fallbacks[0]"),
    ("mock_response", 5, "mock_response"),
    ("cache", "no-cache", "cache"),
    ("caching", "yes", "caching"),
    ("drop_params", "true", "drop_params"),
    ("mock_testing_fallbacks", "yes", "mock_testing_fallbacks"),
    ("litellm_metadata", ["x"], "litellm_metadata"),
    ("litellm_metadata", {"tags": "x"}, "litellm_metadata.tags"),
    ("user_config", {"model_list": []}, "user_config"),
])
async def test_a_bad_value_is_a_400_naming_the_field(upstream, field, value, param):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        answer = await client.post("/v1/chat/completions", json=chat("gpt", **{field: value}), headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert upstream.received == []


@pytest.mark.parametrize("header", ["x-litellm-timeout", "x-gateway-stream-timeout", "x-litellm-num-retries"])
async def test_a_bad_header_is_a_400_naming_it(upstream, header):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        answer = await client.post("/v1/chat/completions", json=chat("gpt"), headers={**AUTH, header: "soon"})
        anthropic = await client.post("/v1/messages", json={"model": "claude", **ANTHROPIC_BODY},
                                      headers={**AUTH, header: "-1"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == header
    assert anthropic.status_code == 400 and header in anthropic.json()["error"]["message"]
    assert upstream.received == []
