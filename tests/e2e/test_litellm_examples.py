"""LiteLLM's own example hooks run against the real gateway with only their imports changed (SPEC §6).

`litellm_examples` holds LiteLLM's documented `custom_callbacks.py` handler and
`custom_guardrail.py` guardrail, loaded by name from the config as a LiteLLM proxy config names
them.  What they read must be there in LiteLLM's shapes: the response object (attribute and item
access, LiteLLM's classes), the kwargs (`user`, `api_call_start_time`,
`litellm_params.proxy_server_request`, `standard_logging_object`) and the exceptions
(`status_code`, LiteLLM's class names).  The last test runs `litellm.completion_cost` on the
objects hooks receive, when litellm is installed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import litellm_examples as examples
import orjson
import pytest
from harness import chat, client_and_gateway, eventually, make_config

from gateway_trio import hooks
from gateway_trio.hooks import CustomLogger
from gateway_trio.testing import Behavior

MASTER = "sk-master-litellm-examples-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}

# StandardLoggingPayload's fields (SPEC §6) and the type LiteLLM gives each.
PAYLOAD_TYPES: dict[str, Any] = {
    "id": str,
    "trace_id": str,
    "call_type": str,
    "status": str,
    "response_cost": float,
    "prompt_tokens": int,
    "completion_tokens": int,
    "total_tokens": int,
    "startTime": float,
    "endTime": float,
    "completionStartTime": float,
    "model": str,
    "model_id": str,
    "model_group": str,
    "api_base": str,
    "custom_llm_provider": str,
    "metadata": dict,
    "cache_hit": bool,
    "request_tags": list,
    "end_user": (str, type(None)),
    "error_str": (str, type(None)),
    "messages": (list, str, dict, type(None)),
    "response": (dict, type(None)),
    "model_parameters": dict,
    "hidden_params": dict,
}
METADATA_FIELDS = (
    "user_api_key_hash",
    "user_api_key_alias",
    "user_api_key_team_id",
    "user_api_key_user_id",
    "user_api_key_team_alias",
    "user_api_key_end_user_id",
    "spend_logs_metadata",
    "requester_ip_address",
    "requester_metadata",
    "applied_guardrails",
)


def config_for(upstream, *, callbacks=("litellm_examples:proxy_handler_instance",), guardrails=()):
    models = [
        {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"},
        {"name": "busy", "model": "openai/busy-model", "api_base": f"{upstream.base_url}/v1"},
        {
            "name": "emb",
            "model": "openai/text-embedding-3-small",
            "api_base": f"{upstream.base_url}/v1",
            "info": {"mode": "embedding"},
        },
        {
            "name": "claude",
            "model": "anthropic/claude-3-5-haiku-latest",
            "api_base": upstream.base_url,
            "api_key": "sk-ant-examples",
        },
    ]
    return make_config(
        models=models,
        router={"num_retries": 0},
        server={"master_key": MASTER},
        hooks={"callbacks": list(callbacks)},
        guardrails=list(guardrails),
    )


def seen(name: str) -> list[dict[str, Any]]:
    return [what for event, what in examples.proxy_handler_instance.seen if event == name]


@pytest.fixture(autouse=True)
def fresh_examples():
    examples.proxy_handler_instance.seen.clear()
    examples.WatchedCustomGuardrail.outcomes.clear()


async def test_the_custom_callbacks_example_reads_a_success_as_on_litellm(upstream):
    body = chat(
        "gpt", "log me", user="end-user-7", temperature=0.2, metadata={"tags": ["team-a"], "purpose": "example"}
    )
    async with client_and_gateway(config_for(upstream)) as (client, _):
        answer = await client.post("/v1/chat/completions", json=body, headers={**AUTH, "x-trace": "t1"})
        assert answer.status_code == 200, answer.text
        await eventually(lambda: seen("On Async Success") and seen("On Success") and seen("Pre-API Call"))
    (logged,) = seen("On Async Success")
    assert logged["model"] == "gpt-4o-mini" and logged["messages"] == body["messages"]
    assert logged["user"] == "end-user-7"
    metadata = logged["metadata"]
    assert metadata["user_api_key_hash"] and metadata["purpose"] == "example" and metadata["tags"] == ["team-a"]
    assert metadata["headers"]["x-trace"] == "t1" and "authorization" not in metadata["headers"]
    # The HTTP request as the gateway took it, without credentials.
    request = logged["proxy_server_request"]
    assert request["method"] == "POST" and request["url"].endswith("/v1/chat/completions")
    assert request["url"].startswith("http://127.0.0.1:")
    assert request["body"]["messages"] == body["messages"] and request["body"]["user"] == "end-user-7"
    assert request["headers"]["x-trace"] == "t1" and "authorization" not in request["headers"]
    assert MASTER not in repr(logged["metadata"]) + repr(request) + repr(logged["standard_logging_object"])
    assert isinstance(logged["api_call_start_time"], datetime)
    assert logged["start_time"] <= logged["api_call_start_time"] <= logged["end_time"]
    # The response object: LiteLLM's ModelResponse, item and attribute access alike.
    client_body = answer.json()
    assert logged["content"] == "log me" == client_body["choices"][0]["message"]["content"]
    assert logged["response_model"] == client_body["model"]
    assert logged["usage"]["total_tokens"] == logged["total_tokens"] == client_body["usage"]["total_tokens"]
    assert isinstance(logged["response_obj"], hooks.ModelResponse) and dict(logged["response_obj"]) == client_body
    assert logged["response_cost"] > 0 and logged["cost_line"].startswith("Model gpt-4o-mini Cost: $")
    # The standard logging object: LiteLLM's field names and types, beside the spend record's own.
    payload = logged["standard_logging_object"]
    for field, kind in PAYLOAD_TYPES.items():
        assert isinstance(payload[field], kind), (field, payload[field])
    assert payload["id"] == answer.headers["x-gateway-call-id"] == payload["call_id"]
    assert payload["status"] == "success" and payload["call_type"] == "completion"
    assert (
        payload["model"] == "gpt-4o-mini"
        and payload["model_group"] == "gpt"
        and payload["custom_llm_provider"] == "openai"
    )
    assert payload["prompt_tokens"] + payload["completion_tokens"] == payload["total_tokens"] == logged["total_tokens"]
    assert payload["startTime"] <= payload["completionStartTime"] <= payload["endTime"]
    assert payload["response_cost"] == logged["response_cost"] and payload["cache_hit"] is False
    assert payload["request_tags"] == ["team-a"] and payload["end_user"] == "end-user-7"
    assert payload["messages"] == body["messages"] and payload["response"] == client_body
    assert payload["model_parameters"]["temperature"] == 0.2 and "messages" not in payload["model_parameters"]
    assert payload["error_str"] is None and payload["hidden_params"]["model_id"] == payload["model_id"]
    for field in METADATA_FIELDS:
        assert field in payload["metadata"], field
    assert payload["metadata"]["user_api_key_hash"] == metadata["user_api_key_hash"]
    assert payload["metadata"]["user_api_key_end_user_id"] == "end-user-7"
    assert payload["cost"] == payload["response_cost"] and payload["key_alias"] is None  # the record's own
    (pre,) = seen("Pre-API Call")
    assert pre["model"] == "gpt-4o-mini" and pre["kwargs"]["user"] == "end-user-7"
    assert isinstance(pre["kwargs"]["api_call_start_time"], datetime)


async def test_the_custom_callbacks_example_reads_a_failure_as_on_litellm(upstream):
    upstream.behaviors["busy-model"] = Behavior(status=429, retry_after=7, content="slow down")
    async with client_and_gateway(config_for(upstream)) as (client, _):
        answer = await client.post("/v1/chat/completions", json=chat("busy", "x", user="u-9"), headers=AUTH)
        assert answer.status_code == 429
        await eventually(lambda: seen("On Async Failure") and seen("On Failure"))
    (failure,) = seen("On Async Failure")
    exception = failure["exception"]
    assert isinstance(exception, hooks.RateLimitError) and type(exception).__name__ == "RateLimitError"
    assert failure["status_code"] == exception.status_code == 429
    assert exception.llm_provider == "openai" and exception.model == "busy-model"
    assert "slow down" in exception.message and failure["traceback"]
    assert failure["user"] == "u-9" and failure["response_obj"] is None
    payload = failure["standard_logging_object"]
    assert payload["status"] == "failure" and payload["record_status"] == "failure"
    assert payload["error_str"] and "slow down" in payload["error_str"]
    assert payload["error_information"]["error_class"] == "RateLimitError"
    assert payload["error_information"]["error_code"] == "429" and payload["response"] is None
    (hooked,) = seen("Post-Call Failure")
    assert hooked["class"] == "RateLimitError" and hooked["status_code"] == 429 and hooked["is_rate_limit"]
    assert answer.headers["retry-after"] == "7"  # handed to the hook and back: the client's answer is unchanged
    assert answer.json()["error"]["type"] == "rate_limit_error"


GUARDRAIL = {
    "name": "custom-post-guard",
    "guardrail": "litellm_examples:WatchedCustomGuardrail",
    "mode": "post_call",
    "default_on": True,
}


async def test_the_custom_guardrail_example_reads_the_response_object(upstream):
    async with client_and_gateway(config_for(upstream, callbacks=(), guardrails=[GUARDRAIL])) as (client, _):
        fine = await client.post("/v1/chat/completions", json=chat("gpt", "tea please"), headers=AUTH)
        assert fine.status_code == 200 and fine.json()["choices"][0]["message"]["content"] == "tea please"
        await client.post("/v1/chat/completions", json=chat("gpt", "a coffee please"), headers=AUTH)
    # `isinstance(response, litellm.ModelResponse)` and `isinstance(choice, litellm.Choices)` held, and
    # `choice.message.content` was the answer: the docs' check ran to its verdict both times.
    assert examples.WatchedCustomGuardrail.outcomes == [
        ("passed", "ModelResponse"),
        ("raised", "Guardrail failed Coffee Detected"),
    ]


class Captures(CustomLogger):
    """What the logging and post-call hooks are handed, per route."""

    def __init__(self) -> None:
        self.logged: list[Any] = []
        self.post_call: list[Any] = []

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.logged.append((kwargs, response_obj))

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        self.post_call.append(response)


ROUTES = [
    ("/v1/chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}, "ModelResponse"),
    ("/v1/completions", {"model": "gpt", "prompt": "hi"}, "TextCompletionResponse"),
    ("/v1/embeddings", {"model": "emb", "input": "hi"}, "EmbeddingResponse"),
    ("/v1/responses", {"model": "gpt", "input": "hi"}, "ResponsesAPIResponse"),
    (
        "/v1/messages",
        {"model": "claude", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]},
        "AnthropicMessagesResponse",
    ),
    ("/v1/moderations", {"model": "gpt", "input": "hi"}, "OpenAIModerationResponse"),
]


@pytest.mark.parametrize(("path", "body", "cls"), ROUTES, ids=[cls for _, _, cls in ROUTES])
async def test_every_route_hands_hooks_its_native_litellm_object(upstream, path, body, cls):
    hook = Captures()
    async with client_and_gateway(config_for(upstream, callbacks=()), hooks=[hook]) as (client, _):
        answer = await client.post(path, json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text
        await eventually(lambda: hook.logged)
    (kwargs, response_obj), (post_call,) = hook.logged[0], hook.post_call
    for obj in (response_obj, post_call):
        assert type(obj).__name__ == cls and isinstance(obj, getattr(hooks, cls)) and isinstance(obj, dict)
        assert orjson.loads(orjson.dumps(obj)) == answer.json() == obj.model_dump()
        assert obj._hidden_params["model_group"] == body["model"]
    assert kwargs["standard_logging_object"]["response"] == answer.json()


async def test_litellm_completion_cost_prices_the_objects_hooks_receive(upstream):
    litellm = pytest.importorskip("litellm")
    hook = Captures()
    async with client_and_gateway(config_for(upstream, callbacks=()), hooks=[hook]) as (client, _):
        answer = await client.post("/v1/chat/completions", json=chat("gpt", "price me"), headers=AUTH)
        assert answer.status_code == 200
        await eventually(lambda: hook.logged)
    (kwargs, response_obj), (post_call,) = hook.logged[0], hook.post_call
    for obj in (response_obj, post_call):
        cost = litellm.completion_cost(completion_response=obj)
        assert cost > 0
        assert cost == pytest.approx(kwargs["response_cost"], rel=0.5)  # same model, both price tables


async def test_objects_are_built_only_for_hooks_that_read_them(upstream, monkeypatch):
    from gateway_trio.hooks.views import LiteLLMResponse

    built: list[str] = []
    original = LiteLLMResponse.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(LiteLLMResponse, "__init__", counting)
    async with client_and_gateway(config_for(upstream, callbacks=())) as (client, _):
        for stream in (False, True):
            answer = await client.post("/v1/chat/completions", json=chat("gpt", stream=stream), headers=AUTH)
            assert answer.status_code == 200
    assert built == []  # no hook: no object, streamed or not
    async with client_and_gateway(config_for(upstream, callbacks=()), hooks=[LogsOnly()]) as (client, _):
        answer = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
        assert answer.status_code == 200
        await eventually(lambda: built)
    assert built == ["ModelResponse"]  # one, for the logging hook, off the request path


class LogsOnly(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        pass


class RaisesLiteLLMErrors(CustomLogger):
    """A pre-call hook that refuses as LiteLLM hooks do: by raising LiteLLM's exceptions."""

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        text = str(data.get("messages") or data.get("input"))
        if "slow" in text:
            raise hooks.RateLimitError("hook says slow down", "openai", data["model"])
        if "broke" in text:
            raise hooks.BudgetExceededError(current_cost=2.0, max_budget=1.0)
        return data


async def test_a_hook_raising_a_litellm_exception_answers_with_its_status_and_type(upstream):
    async with client_and_gateway(config_for(upstream, callbacks=()), hooks=[RaisesLiteLLMErrors()]) as (client, _):
        slow = await client.post("/v1/chat/completions", json=chat("gpt", "go slow"), headers=AUTH)
        broke = await client.post("/v1/chat/completions", json=chat("gpt", "I am broke"), headers=AUTH)
        anthropic = await client.post(
            "/v1/messages",
            headers=AUTH,
            json={"model": "claude", "max_tokens": 8, "messages": [{"role": "user", "content": "go slow"}]},
        )
        fine = await client.post("/v1/chat/completions", json=chat("gpt", "fine"), headers=AUTH)
    assert slow.status_code == 429 and slow.json()["error"]["type"] == "rate_limit_error"
    assert slow.json()["error"]["message"] == "hook says slow down"
    assert broke.status_code == 429 and broke.json()["error"]["code"] == "budget_exceeded"
    assert anthropic.status_code == 429 and anthropic.json()["error"]["type"] == "rate_limit_error"
    assert fine.status_code == 200
