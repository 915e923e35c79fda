"""Azure OpenAI: OpenAI's format behind a deployment URL, an api-version and an `api-key` header."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from gateway_trio.adapters import PROVIDERS
from gateway_trio.adapters.azure import AzureAdapter
from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment

AZURE_KEY = "0123456789abcdef0123456789abcdef"

COMPLETION = b"""{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},
"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hi!","refusal":null,"role":"assistant"}}],
"created":1741570000,"id":"chatcmpl-AzUre","model":"gpt-4o-2024-08-06","object":"chat.completion",
"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}],
"system_fingerprint":"fp_65792305e4","usage":{"completion_tokens":3,"prompt_tokens":8,"total_tokens":11}}"""

STREAM = (
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}\n\n'
    b'data: {"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0}],"created":1741570000,"id":"chatcmpl-AzUre","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","usage":null}\n\n'
    b'data: {"choices":[{"delta":{"content":"Hi!"},"finish_reason":null,"index":0}],"created":1741570000,"id":"chatcmpl-AzUre","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","usage":null}\n\n'
    b'data: {"choices":[{"delta":{},"finish_reason":"stop","index":0}],"created":1741570000,"id":"chatcmpl-AzUre","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","usage":null}\n\n'
    b'data: {"choices":[],"created":1741570000,"id":"chatcmpl-AzUre","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","usage":{"completion_tokens":1,"prompt_tokens":8,"total_tokens":9}}\n\n'
    b"data: [DONE]\n\n"
)


def deployment(**overrides: Any) -> Deployment:
    fields = {
        "name": "gpt-4o",
        "model": "azure/my-gpt4o",
        "api_base": "https://contoso.openai.azure.com/",
        "api_key": AZURE_KEY,
        **overrides,
    }
    return Deployment.from_config(ModelConfig(**fields))


async def sent_request(dep: Deployment, stream: bool) -> httpx.Request:
    req = AzureAdapter().chat_request(dep, {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}, dep.model, stream)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=COMPLETION)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await client.send(httpx.Request(req.method, req.url, headers=req.headers, content=req.content))
    return seen[0]


async def test_url_headers_and_body() -> None:
    seen = await sent_request(deployment(headers={"x-ms-client-request-id": "abc"}), stream=True)
    assert str(seen.url) == (
        "https://contoso.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    )
    assert seen.headers["api-key"] == AZURE_KEY
    assert "authorization" not in seen.headers
    assert seen.headers["x-ms-client-request-id"] == "abc"
    body = orjson.loads(seen.content)
    assert body["model"] == "my-gpt4o"
    assert body["stream_options"] == {"include_usage": True}


async def test_configured_api_version_and_no_key() -> None:
    seen = await sent_request(deployment(api_version="2025-01-01-preview", api_key=None), stream=False)
    assert seen.url.params["api-version"] == "2025-01-01-preview"
    assert "api-key" not in seen.headers


def test_answers_are_read_as_openai() -> None:
    adapter = PROVIDERS["azure"]
    assert isinstance(adapter, AzureAdapter)
    assert adapter.chat_response(COMPLETION, "my-gpt4o")["usage"]["total_tokens"] == 11
    decoder = adapter.chat_stream("my-gpt4o")
    chunks = [c for i in range(len(STREAM)) for c in decoder.feed(STREAM[i : i + 1])]
    # Azure's leading prompt-filter chunk has neither choices nor usage: it is passed on.
    assert [orjson.loads(c)["choices"][0]["delta"].get("content") for c in chunks[1:]] == ["", "Hi!", None]
    assert decoder.usage == {"completion_tokens": 1, "prompt_tokens": 8, "total_tokens": 9}
    assert decoder.usage_chunk is not None and decoder.done


def test_error_message_hides_the_key() -> None:
    payload = orjson.dumps(
        {"error": {"code": "401", "message": f"Access denied due to invalid subscription key {AZURE_KEY}."}}
    )
    message = AzureAdapter().error_message(401, payload)
    assert AZURE_KEY not in message and message.startswith("Access denied")
