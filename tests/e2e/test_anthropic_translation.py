"""The Anthropic translation through the real gateway, against the mock upstream's Anthropic
wire format: parameters Anthropic cannot honour (refused, or dropped with `drop_params` and
noted), structured output, extended thinking, tools with tool_choice "none", `metadata.user_id`
and `anthropic-beta` on both routes, and `/v1/messages/count_tokens`."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import orjson
import pydantic
import pytest
import trio
from harness import chat, client_and_gateway, eventually, make_config, running_gateway, sse_payloads

from gateway_trio.testing import Behavior

MASTER = "sk-master-anthropic-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}
KEY = "sk-virtual-anthropic-0123456789abcdef"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "born": {"type": "integer"}}}
ADA = '{"name": "Ada", "born": 1815}'


def config_for(upstream: Any, *, router: dict[str, Any] | None = None, claudes: int = 1, **extra: Any):
    models = [
        {
            "name": "claude",
            "model": "anthropic/claude-sonnet-4",
            "api_base": upstream.base_url,
            "api_key": "sk-ant-upstream-secret",
        }
        for _ in range(claudes)
    ]
    models.append({"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"})
    if claudes > 1:  # distinct deployments of one group
        for index, model in enumerate(models[:claudes]):
            model["info"] = {"id": f"claude-{index}"}
    return make_config(
        models=models, server={"master_key": MASTER}, router={"retry_backoff_s": 0, **(router or {})}, **extra
    )


async def spend_records(client: Any, gateway: Any, count: int) -> list[dict[str, Any]]:
    await eventually(lambda: gateway.spend._accepted >= count)
    await gateway.spend.flush()
    response = await client.get("/spend/logs", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def chunks_of(text: str) -> list[dict[str, Any]]:
    payloads = sse_payloads(text)
    assert payloads[-1] == "[DONE]", payloads[-3:]
    return [orjson.loads(p) for p in payloads[:-1]]


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


# --- parameters Anthropic cannot honour --------------------------------------------------


async def test_an_unhonoured_parameter_is_a_400_naming_it_before_anything_is_sent(upstream):
    config = config_for(upstream, claudes=2, router={"allowed_fails": 1, "cooldown_s": 600})
    async with client_and_gateway(config) as (client, gateway):
        refused = [
            await client.post("/v1/chat/completions", json=chat("claude", seed=7, logprobs=True), headers=AUTH)
            for _ in range(4)
        ]
        snapshot = await gateway.router.snapshot()
        ok = await client.post("/v1/chat/completions", json=chat("claude", n=1, presence_penalty=0), headers=AUTH)
        records = await spend_records(client, gateway, 5)
    for response in refused:
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] == "seed" and error["code"] == "unsupported_parameter"
        assert "'seed', 'logprobs'" in error["message"] and "anthropic" in error["message"]
        assert "drop_params" in error["message"]
    # The caller's error: nothing reached the upstream and no deployment cooled down.
    assert [r.path for r in upstream.received] == ["/v1/messages"]
    assert not any(load.cooling_down for load in snapshot.loads)
    assert ok.status_code == 200  # OpenAI's defaults ask for nothing Anthropic lacks
    assert len(records) == 5 and sorted(r["status"] for r in records) == ["failure"] * 4 + ["success"]


async def test_router_drop_params_drops_them_and_the_spend_record_says_so(upstream):
    async with client_and_gateway(config_for(upstream, router={"drop_params": True})) as (client, gateway):
        response = await client.post(
            "/v1/chat/completions", json=chat("claude", seed=7, frequency_penalty=0.5), headers=AUTH
        )
        records = await spend_records(client, gateway, 1)
    assert response.status_code == 200, response.text
    sent = upstream.received[0].json
    assert "seed" not in sent and "frequency_penalty" not in sent
    assert records[0]["metadata"]["dropped_params"] == ["seed", "frequency_penalty"]


async def test_the_body_drop_params_decides_for_its_call(upstream):
    async with client_and_gateway(config_for(upstream, router={"drop_params": True})) as (client, _):
        kept = await client.post("/v1/chat/completions", json=chat("claude", seed=1, drop_params=False), headers=AUTH)
    assert kept.status_code == 400 and kept.json()["error"]["param"] == "seed"
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        dropped = await client.post("/v1/chat/completions", json=chat("claude", seed=1, drop_params=True), headers=AUTH)
        records = await spend_records(client, gateway, 1)
    assert dropped.status_code == 200
    assert "drop_params" not in upstream.received[-1].json and "seed" not in upstream.received[-1].json
    assert records[0]["metadata"]["dropped_params"] == ["seed"]


async def test_messages_fields_a_chat_upstream_lacks_are_refused_or_dropped(upstream):
    body = {"model": "gpt", "max_tokens": 50, "top_k": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with client_and_gateway(config_for(upstream)) as (client, _):
        refused = await client.post("/v1/messages", json=body, headers=AUTH)
        dropped = await client.post("/v1/messages", json={**body, "drop_params": True}, headers=AUTH)
    assert refused.status_code == 400
    assert refused.json()["type"] == "error" and "'top_k'" in refused.json()["error"]["message"]
    assert "openai" in refused.json()["error"]["message"]
    assert dropped.status_code == 200 and "top_k" not in upstream.received[-1].json


# --- structured output -------------------------------------------------------------------


def person_format() -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}


@pytest.mark.parametrize("stream", [False, True])
async def test_response_format_json_schema_answers_with_the_json_as_content(upstream, stream):
    upstream.behaviors["claude-sonnet-4"] = Behavior(content=ADA)
    body = chat("claude", "who is Ada?", response_format=person_format(), stream=stream)
    async with client_and_gateway(config_for(upstream)) as (client, _):
        response = await client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    sent = upstream.received[0].json
    assert sent["tools"][0]["name"] == "json_tool_call" and sent["tools"][0]["input_schema"] == SCHEMA
    assert sent["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
    if stream:
        chunks = chunks_of(response.text)
        content = "".join(d.get("content") or "" for d in deltas(chunks))
        assert not any(d.get("tool_calls") for d in deltas(chunks))
        reasons = [
            c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
        ]
    else:
        choice = response.json()["choices"][0]
        content, reasons = choice["message"]["content"], [choice["finish_reason"]]
        assert "tool_calls" not in choice["message"]
    assert orjson.loads(content) == orjson.loads(ADA)
    assert reasons == ["stop"]


# --- extended thinking -------------------------------------------------------------------


async def test_reasoning_effort_thinks_and_answers_with_reasoning_content(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        response = await client.post(
            "/v1/chat/completions", json=chat("claude", "2+2?", reasoning_effort="medium"), headers=AUTH
        )
        streamed = await client.post(
            "/v1/chat/completions", json=chat("claude", "2+2?", reasoning_effort="medium", stream=True), headers=AUTH
        )
    assert response.status_code == 200, response.text
    assert upstream.received[0].json["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    message = response.json()["choices"][0]["message"]
    assert message["content"] == "2+2?"
    assert message["reasoning_content"] == "The user wrote: 2+2?"
    [block] = message["thinking_blocks"]
    assert block["type"] == "thinking" and block["signature"].startswith("mock-sig-")
    got = deltas(chunks_of(streamed.text))
    assert "".join(d.get("reasoning_content") or "" for d in got) == "The user wrote: 2+2?"
    assert [b for d in got for b in d.get("thinking_blocks") or ()] == [block]
    assert "".join(d.get("content") or "" for d in got) == "2+2?"


async def test_thinking_blocks_sent_back_with_a_tool_call_reach_anthropic_signed(upstream):
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    block = {"type": "thinking", "thinking": "Use the tool.", "signature": "sig-1"}
    messages = [
        {"role": "user", "content": "2+2?"},
        {
            "role": "assistant",
            "content": None,
            "thinking_blocks": [block],
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "add", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "4"},
    ]
    body = {
        "model": "claude",
        "messages": messages,
        "tools": tools,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    async with client_and_gateway(config_for(upstream)) as (client, _):
        response = await client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert upstream.received[0].json["messages"][1]["content"][0] == block


# --- tools with tool_choice "none" ---------------------------------------------------------


async def test_tool_choice_none_keeps_the_tools_a_tool_history_needs(upstream):
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "user", "content": "2+2?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "add", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "4"},
        {"role": "user", "content": "and now?"},
    ]
    body = {"model": "claude", "messages": messages, "tools": tools, "tool_choice": "none"}
    async with client_and_gateway(config_for(upstream)) as (client, _):
        response = await client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200, response.text  # the mock, like Anthropic, refuses tool blocks without tools
    sent = upstream.received[0].json
    assert [t["name"] for t in sent["tools"]] == ["add"] and sent["tool_choice"] == {"type": "none"}


# --- metadata.user_id / user, anthropic-beta ------------------------------------------------


async def test_user_ids_and_anthropic_beta_reach_the_upstream_on_both_routes(upstream):
    beta = {**AUTH, "anthropic-beta": "output-128k-2025-02-19"}
    messages_body = {
        "model": "claude",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "user-7"},
    }
    async with client_and_gateway(config_for(upstream)) as (client, _):
        passed = await client.post("/v1/messages", json=messages_body, headers=beta)
        translated = await client.post("/v1/messages", json={**messages_body, "model": "gpt"}, headers=beta)
        from_chat = await client.post("/v1/chat/completions", json=chat("claude", user="user-8"), headers=beta)
    assert passed.status_code == translated.status_code == from_chat.status_code == 200
    to_anthropic, to_openai, chat_to_anthropic = upstream.received
    assert to_anthropic.json["metadata"] == {"user_id": "user-7"}
    assert to_anthropic.headers["anthropic-beta"] == "output-128k-2025-02-19"
    assert to_openai.json["user"] == "user-7" and "metadata" not in to_openai.json
    assert "anthropic-beta" not in to_openai.headers  # only Anthropic reads it
    assert chat_to_anthropic.json["metadata"] == {"user_id": "user-8"}
    assert chat_to_anthropic.headers["anthropic-beta"] == "output-128k-2025-02-19"


# --- /v1/messages/count_tokens -------------------------------------------------------------


COUNT_BODY = {
    "model": "claude",
    "max_tokens": 100,
    "system": "be brief",
    "messages": [{"role": "user", "content": "one two three four"}],
    "tools": [{"name": "add", "input_schema": {"type": "object"}}],
}


async def test_count_tokens_is_counted_by_anthropic_and_estimated_elsewhere(upstream):
    keys = [{"key": KEY, "models": ["gpt"]}]
    async with client_and_gateway(config_for(upstream, keys=keys)) as (client, gateway):
        counted = await client.post("/v1/messages/count_tokens", json=COUNT_BODY, headers={"x-api-key": MASTER})
        estimated = await client.post(
            "/messages/count_tokens", json={**COUNT_BODY, "model": "gpt"}, headers={"x-api-key": KEY}
        )
        forbidden = await client.post("/v1/messages/count_tokens", json=COUNT_BODY, headers={"x-api-key": KEY})
        unknown = await client.post("/v1/messages/count_tokens", json={**COUNT_BODY, "model": "nope"}, headers=AUTH)
        records = await spend_records(client, gateway, 4)
    assert counted.status_code == 200, counted.text
    [sent] = upstream.received  # the estimate sent nothing anywhere
    assert sent.path == "/v1/messages/count_tokens" and sent.headers["x-api-key"] == "sk-ant-upstream-secret"
    assert "max_tokens" not in sent.json and sent.json["model"] == "claude-sonnet-4"
    assert counted.json() == {"input_tokens": 6 + 2}  # the mock's count: prompt words, tool words
    assert counted.headers["x-gateway-provider"] == "anthropic"
    assert estimated.status_code == 200 and list(estimated.json()) == ["input_tokens"]
    assert estimated.json()["input_tokens"] > 0 and estimated.headers["x-gateway-provider"] == "openai"
    assert forbidden.status_code == 403 and forbidden.json()["type"] == "error"
    assert unknown.status_code == 404
    done = [r for r in records if r["status"] == "success"]
    assert len(done) == 2 and {r["call_type"] for r in records} == {"count_tokens"}
    assert all(r["prompt_tokens"] == 0 and not r["cost"] for r in done)  # a count uses no tokens


# --- the official SDKs ----------------------------------------------------------------------


async def test_sdks_parse_structured_output_and_count_tokens(upstream):
    class Person(pydantic.BaseModel):
        name: str
        born: int

    upstream.behaviors["claude-sonnet-4"] = Behavior(content=ADA)
    async with running_gateway(config_for(upstream)) as base_url:
        chat_client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=MASTER, max_retries=0)
        claude_client = anthropic.Anthropic(base_url=base_url, api_key=MASTER, max_retries=0)
        messages = [{"role": "user", "content": "who is Ada?"}]
        parsed = await trio.to_thread.run_sync(
            lambda: chat_client.chat.completions.parse(model="claude", messages=messages, response_format=Person)
        )
        counted = await trio.to_thread.run_sync(
            lambda: claude_client.messages.count_tokens(
                model="claude", messages=messages, extra_headers={"anthropic-beta": "token-counting-2024-11-01"}
            )
        )
    assert parsed.choices[0].message.parsed == Person(name="Ada", born=1815)
    assert counted.input_tokens == 3
    assert upstream.received[-1].headers["anthropic-beta"] == "token-counting-2024-11-01"


async def test_legacy_completions_fields_anthropic_lacks_are_refused_too(upstream):
    body = {"model": "claude", "prompt": "say hi", "max_tokens": 5, "echo": True, "best_of": 1}
    async with client_and_gateway(config_for(upstream)) as (client, _):
        refused = await client.post("/v1/completions", json=body, headers=AUTH)
        plain = await client.post("/v1/completions", json={**body, "echo": False}, headers=AUTH)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "echo"
    assert plain.status_code == 200 and plain.json()["choices"][0]["text"] == "say hi"
    assert len(upstream.received) == 1
