"""Hooks are called with keyword arguments, as LiteLLM calls them (SPEC §6).

A hook written `def method(self, **kwargs)` must receive every event, with LiteLLM's names;
hooks whose parameters carry other names keep being called positionally.
"""

import pytest
from guardrail_classes import KwargsGuardrail
from harness import chat, client_and_gateway, eventually, make_config, sse_payloads

from gateway_trio.hooks import CustomLogger
from gateway_trio.hooks.inline import bind, calling_form
from gateway_trio.testing import Behavior

MASTER = "sk-master-kwargs-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}

# What LiteLLM passes to each method, by name.
EXPECTED = {
    "log_pre_api_call": {"model", "messages", "kwargs"},
    "async_log_pre_api_call": {"model", "messages", "kwargs"},
    "log_post_api_call": {"kwargs", "response_obj", "start_time", "end_time"},
    "log_success_event": {"kwargs", "response_obj", "start_time", "end_time"},
    "log_failure_event": {"kwargs", "response_obj", "start_time", "end_time"},
    "async_log_success_event": {"kwargs", "response_obj", "start_time", "end_time"},
    "async_log_failure_event": {"kwargs", "response_obj", "start_time", "end_time"},
    "async_pre_call_hook": {"user_api_key_dict", "cache", "data", "call_type"},
    "async_post_call_success_hook": {"data", "user_api_key_dict", "response"},
    "async_post_call_failure_hook": {"request_data", "original_exception", "user_api_key_dict", "traceback_str"},
    "async_post_call_streaming_hook": {"user_api_key_dict", "response"},
    "async_post_call_streaming_iterator_hook": {"user_api_key_dict", "response", "request_data"},
    "async_post_call_response_headers_hook": {"data", "user_api_key_dict", "response", "request_headers",
                                              "call_info", "litellm_call_info"},
}


class KwargsOnly(CustomLogger):
    """Every method takes only `**kwargs`: it sees what it is given, by name."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def note(self, method, kwargs):
        self.seen.append((method, kwargs))

    def named(self, method):
        return [kwargs for name, kwargs in self.seen if name == method]

    def log_pre_api_call(self, **kwargs):
        self.note("log_pre_api_call", kwargs)

    async def async_log_pre_api_call(self, **kwargs):
        self.note("async_log_pre_api_call", kwargs)

    def log_post_api_call(self, **kwargs):
        self.note("log_post_api_call", kwargs)

    def log_success_event(self, **kwargs):
        self.note("log_success_event", kwargs)

    def log_failure_event(self, **kwargs):
        self.note("log_failure_event", kwargs)

    async def async_log_success_event(self, **kwargs):
        self.note("async_log_success_event", kwargs)

    async def async_log_failure_event(self, **kwargs):
        self.note("async_log_failure_event", kwargs)

    async def async_pre_call_hook(self, **kwargs):
        self.note("async_pre_call_hook", kwargs)

    async def async_post_call_success_hook(self, **kwargs):
        self.note("async_post_call_success_hook", kwargs)

    async def async_post_call_failure_hook(self, **kwargs):
        self.note("async_post_call_failure_hook", kwargs)

    async def async_post_call_streaming_hook(self, **kwargs):
        self.note("async_post_call_streaming_hook", kwargs)

    async def async_post_call_streaming_iterator_hook(self, **kwargs):
        self.note("async_post_call_streaming_iterator_hook", kwargs)
        async for chunk in kwargs["response"]:
            yield chunk

    async def async_post_call_response_headers_hook(self, **kwargs):
        self.note("async_post_call_response_headers_hook", kwargs)
        return {"x-kwargs-hook": "seen"}


def config_for(upstream, guardrails=()):
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1",
             "guardrails": [g["name"] for g in guardrails]}
    return make_config(models=[model], router={"num_retries": 0}, guardrails=list(guardrails),
                       server={"master_key": MASTER})


def assert_names(hook, methods):
    for method in methods:
        calls = hook.named(method)
        assert calls, f"{method} was never called"
        for kwargs in calls:
            assert set(kwargs) == EXPECTED[method], method


LOGGED = ("log_pre_api_call", "async_log_pre_api_call", "log_post_api_call")


async def test_a_kwargs_only_hook_gets_every_event_of_a_chat_call(upstream):
    hook = KwargsOnly()
    async with client_and_gateway(config_for(upstream), hooks=[hook]) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt", "by name"), headers=AUTH)
        assert response.status_code == 200
        await eventually(lambda: hook.named("log_success_event") and hook.named("async_log_success_event"))
    assert response.json()["choices"][0]["message"]["content"] == "by name"
    assert response.headers["x-kwargs-hook"] == "seen"
    assert_names(hook, ("async_pre_call_hook", "async_post_call_success_hook", "async_post_call_response_headers_hook",
                        "log_success_event", "async_log_success_event", *LOGGED))
    pre = hook.named("async_pre_call_hook")[0]
    assert pre["data"]["messages"][-1]["content"] == "by name" and pre["call_type"] == "completion"
    assert pre["user_api_key_dict"].api_key and MASTER not in repr(pre["user_api_key_dict"])
    success = hook.named("async_post_call_success_hook")[0]
    assert success["response"].choices[0].message.content == "by name"
    headers = hook.named("async_post_call_response_headers_hook")[0]
    assert headers["call_info"]["model_group"] == "gpt" and headers["litellm_call_info"] == headers["call_info"]
    logged = hook.named("async_log_success_event")[0]
    assert logged["kwargs"]["litellm_call_id"] == response.headers["x-gateway-call-id"]
    assert logged["response_obj"].choices[0].message.content == "by name"
    assert logged["start_time"] <= logged["end_time"]
    assert hook.named("log_pre_api_call")[0]["model"] == "gpt-4o-mini"


async def test_a_kwargs_only_hook_gets_every_event_of_a_stream(upstream):
    upstream.default = Behavior(content="one two three", chunks=3)
    hook = KwargsOnly()
    async with client_and_gateway(config_for(upstream), hooks=[hook]) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt", stream=True), headers=AUTH)
        assert response.status_code == 200
        await eventually(lambda: hook.named("log_success_event") and hook.named("async_log_success_event"))
    assert sse_payloads(response.text)[-1] == "[DONE]"
    assert_names(hook, ("async_pre_call_hook", "async_post_call_streaming_iterator_hook",
                        "async_post_call_streaming_hook", "async_post_call_response_headers_hook",
                        "log_success_event", "async_log_success_event", *LOGGED))
    chunks = hook.named("async_post_call_streaming_hook")
    assert len(chunks) >= 3
    assert "".join(c["response"].choices[0].delta.get("content") or "" for c in chunks if c["response"].choices) == "one two three"
    assert hook.named("async_post_call_streaming_iterator_hook")[0]["request_data"]["stream"] is True


async def test_a_kwargs_only_hook_gets_every_event_of_a_failure(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=503)
    hook = KwargsOnly()
    async with client_and_gateway(config_for(upstream), hooks=[hook]) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
        assert response.status_code == 502
        await eventually(lambda: hook.named("log_failure_event") and hook.named("async_log_failure_event"))
    assert_names(hook, ("async_pre_call_hook", "async_post_call_failure_hook", "async_post_call_response_headers_hook",
                        "log_failure_event", "async_log_failure_event", *LOGGED))
    failure = hook.named("async_post_call_failure_hook")[0]
    assert failure["original_exception"].status == 502
    assert failure["request_data"]["model"] == "gpt" and isinstance(failure["traceback_str"], str)
    assert hook.named("async_post_call_response_headers_hook")[0]["response"] is None
    assert hook.named("async_log_failure_event")[0]["response_obj"] is None


async def test_guardrail_methods_are_called_by_name(upstream):
    KwargsGuardrail.calls.clear()
    rule = {"name": "by-name", "guardrail": "guardrail_classes:KwargsGuardrail", "mode": "pre_call"}
    async with client_and_gateway(config_for(upstream, [rule])) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
    assert response.status_code == 200
    assert KwargsGuardrail.calls == [("should_run_guardrail", {"data", "event_type"}),
                                     ("apply_guardrail", {"inputs", "request_data", "input_type"})]


# --- the calling form, worked out once per class and method --------------------------------

class Positional(CustomLogger):
    """Parameters with other names than LiteLLM's: called positionally, as before."""

    def log_success_event(self, kw, resp, began, ended):
        return kw, resp, began, ended

    async def async_post_call_failure_hook(self, data, error, user, tb):
        return data, error, user, tb


class OldLiteLLM(CustomLogger):
    """Older LiteLLM signatures that lack an argument the gateway has."""

    async def async_post_call_failure_hook(self, original_exception, user_api_key_dict):
        return original_exception, user_api_key_dict

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response):
        return {"old": str(data)}


FAILURE = {"request_data": {"m": 1}, "original_exception": ValueError("x"), "user_api_key_dict": "u", "traceback_str": "tb"}


async def test_other_parameter_names_are_called_positionally():
    hook = Positional()
    assert bind(hook, "log_success_event", kwargs=1, response_obj=2, start_time=3, end_time=4)() == (1, 2, 3, 4)
    assert await bind(hook, "async_post_call_failure_hook", **FAILURE)() == ({"m": 1}, FAILURE["original_exception"], "u", "tb")


async def test_older_signatures_get_only_what_they_name():
    hook = OldLiteLLM()
    assert await bind(hook, "async_post_call_failure_hook", **FAILURE)() == (FAILURE["original_exception"], "u")
    headers = bind(hook, "async_post_call_response_headers_hook", data={"a": 1}, user_api_key_dict="u",
                   response=None, request_headers={}, call_info={})
    assert await headers() == {"old": "{'a': 1}"}


def test_the_form_is_worked_out_once_per_class_and_method():
    first = calling_form(KwargsOnly, "async_pre_call_hook")
    before = calling_form.cache_info()
    for _ in range(5):
        assert calling_form(type(KwargsOnly()), "async_pre_call_hook") is first
    after = calling_form.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 5


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_every_hook_method_has_litellm_names(method):
    form = calling_form(KwargsOnly, method)
    assert form.keywords is not None
    assert {name for name, _ in form.keywords} == EXPECTED[method]
