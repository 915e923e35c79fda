"""Every provider through the real gateway: Azure and Anthropic against the mock upstream,
and the built-in mock provider of the embedded default config."""

import orjson
import pytest
from harness import chat, gateway_client, make_config, sse_payloads

from gateway_trio.config import load_config


def anthropic_config(upstream):
    return make_config(models=[{
        "name": "claude", "model": "anthropic/claude-3-5-sonnet", "api_base": upstream.base_url,
        "api_key": "sk-ant-upstream-secret",
    }])


def azure_config(upstream):
    return make_config(models=[{
        "name": "az", "model": "azure/my-gpt-deployment", "api_base": upstream.base_url,
        "api_key": "azure-upstream-secret", "api_version": "2024-06-01",
    }])


def content_of(chunks):
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def test_anthropic_non_streaming_is_translated_both_ways(upstream):
    body = chat("claude", "translate me")
    body["messages"].insert(0, {"role": "system", "content": "be brief"})
    async with gateway_client(anthropic_config(upstream)) as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "translate me"
    assert answer["usage"]["prompt_tokens"] > 0 and answer["usage"]["completion_tokens"] == 2
    sent = upstream.received[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-upstream-secret"
    assert sent.json["system"] == "be brief"
    assert sent.json["messages"] == [{"role": "user", "content": "translate me"}]
    assert response.headers["x-gateway-provider"] == "anthropic"


@pytest.mark.parametrize("include_usage", [True, False])
async def test_anthropic_stream_becomes_chat_completion_chunks(upstream, include_usage):
    request = chat("claude", "one two three", stream=True)
    if include_usage:
        request["stream_options"] = {"include_usage": True}
    async with gateway_client(anthropic_config(upstream)) as client:
        response = await client.post("/v1/chat/completions", json=request)
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert content_of(chunks) == "one two three"
    assert any(c["choices"] and c["choices"][0]["finish_reason"] == "stop" for c in chunks)
    usage = [c["usage"] for c in chunks if not c["choices"]]
    assert (usage[0]["completion_tokens"] == 3) if include_usage else not usage
    assert "stream_options" not in upstream.received[0].json


async def test_azure_uses_deployment_url_api_version_and_api_key(upstream):
    async with gateway_client(azure_config(upstream)) as client:
        plain = await client.post("/v1/chat/completions", json=chat("az", "hi azure"))
        streamed = await client.post("/v1/chat/completions", json=chat("az", "hi azure", stream=True))
    assert plain.json()["choices"][0]["message"]["content"] == "hi azure"
    assert content_of([orjson.loads(p) for p in sse_payloads(streamed.text)[:-1]]) == "hi azure"
    sent = upstream.received[0]
    assert sent.path == "/openai/deployments/my-gpt-deployment/chat/completions"
    assert sent.params["api-version"] == "2024-06-01"
    assert sent.headers["api-key"] == "azure-upstream-secret"
    assert "authorization" not in sent.headers
    assert plain.headers["x-gateway-model-api-base"] == upstream.base_url


async def test_embedded_default_config_answers_with_no_network():
    config = load_config()
    config = config.model_copy(update={"database": config.database.model_copy(update={"url": "sqlite:///:memory:"})})
    async with gateway_client(config) as client:
        plain = await client.post("/v1/chat/completions", json=chat("mock-gpt", "echo this"))
        fixed = await client.post("/v1/chat/completions", json=chat("mock-fixed", "anything"))
        streamed = await client.post("/v1/chat/completions", json=chat("fast", "stream this back", stream=True))
    assert plain.json()["choices"][0]["message"]["content"] == "echo this"
    assert fixed.json()["choices"][0]["message"]["content"].startswith("This is a canned answer")
    assert content_of([orjson.loads(p) for p in sse_payloads(streamed.text)[:-1]]) == "stream this back"
    assert plain.headers["x-gateway-provider"] == "mock"
    assert "x-gateway-model-api-base" not in plain.headers
