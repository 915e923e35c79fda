"""The hook API end to end: in-line hooks, logging hooks, plain functions, user actors."""

import threading

import hook_classes as hc
import orjson
import pytest
from harness import chat, client_and_gateway, eventually, make_config, sse_payloads

from gateway_trio.hooks.inline import headers_hook_form
from gateway_trio.testing import Behavior

MASTER = "sk-master-hooks-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}


def config_for(upstream, hooks=None, **router):
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1",
             "api_key": "sk-upstream-hooks-secret"}
    return make_config(models=[model], router={"retry_backoff_s": 0, **router}, hooks=hooks or {},
                       server={"master_key": MASTER})


def content_of(text):
    chunks = [orjson.loads(p) for p in sse_payloads(text) if p != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


@pytest.mark.parametrize("stream", [False, True])
async def test_headers_hook_every_form_on_success_and_failure(upstream, stream):
    hooks = [hc.CallInfoHeaders(), hc.LiteLLMCallInfoHeaders(), hc.KwargsHeaders(), hc.OldHeaders()]
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=400, fail_times=1)
    headers = {**AUTH, "x-request-id": "req-42"}
    async with client_and_gateway(config_for(upstream), hooks=hooks) as (client, gateway):
        failed = await client.post("/v1/chat/completions", json=chat("gpt", stream=stream), headers=headers)
        ok = await client.post("/v1/chat/completions", json=chat("gpt", stream=stream), headers=headers)
    assert failed.status_code == 400 and ok.status_code == 200
    model_id = ok.headers["x-gateway-model-id"]
    for response, outcome in ((failed, "failure"), (ok, "success")):
        assert response.headers["x-hook-new"] == "1"
        assert response.headers["x-hook-group"] == "gpt"
        assert response.headers["x-hook-provider"] == "openai"
        assert response.headers["x-hook-outcome"] == outcome
        assert response.headers["x-hook-saw-auth"] == "False"  # credentials removed
        assert response.headers["x-hook-litellm"] == model_id
        assert response.headers["x-hook-kwargs"] == f"{upstream.base_url}/v1"
        assert response.headers["x-hook-old"] == "req-42"
        assert response.headers["x-hook-order"] == "old"  # merged in order: later wins


def test_headers_hook_signature_is_checked_once_per_class():
    assert headers_hook_form(hc.CallInfoHeaders) == "call_info"
    assert headers_hook_form(hc.LiteLLMCallInfoHeaders) == "litellm_call_info"
    assert headers_hook_form(hc.KwargsHeaders) == "kwargs"
    assert headers_hook_form(hc.OldHeaders) == "none"
    before = headers_hook_form.cache_info()
    for _ in range(5):
        headers_hook_form(type(hc.OldHeaders()))
    after = headers_hook_form.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 5


async def test_pre_call_hook_edits_refuses_and_rejects(upstream):
    async with client_and_gateway(config_for(upstream), hooks=[hc.PreCallEditor()]) as (client, _):
        edited = await client.post("/v1/chat/completions", json=chat("gpt", "hello"), headers=AUTH)
        refused = await client.post("/v1/chat/completions", json=chat("gpt", "refuse me"), headers=AUTH)
        refused_stream = await client.post("/v1/chat/completions", json=chat("gpt", "refuse me", stream=True), headers=AUTH)
        rejected = await client.post("/v1/chat/completions", json=chat("gpt", "reject me"), headers=AUTH)
    assert edited.json()["choices"][0]["message"]["content"] == "hello (edited)"
    assert refused.status_code == 200
    assert refused.json()["choices"][0]["message"]["content"] == "I cannot help with that."
    assert content_of(refused_stream.text) == "I cannot help with that."
    assert sse_payloads(refused_stream.text)[-1] == "[DONE]"
    assert rejected.status_code == 403
    assert rejected.json()["error"]["message"] == "rejected by policy"
    assert len(upstream.received) == 1  # only the edited call went upstream
    assert upstream.received[0].json["messages"][-1]["content"] == "hello (edited)"


async def test_success_hook_replaces_the_response_and_adds_headers(upstream):
    async with client_and_gateway(config_for(upstream), hooks=[hc.SuccessRewriter()]) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt", "make me loud"), headers=AUTH)
    assert response.json()["choices"][0]["message"]["content"] == "MAKE ME LOUD"
    assert response.headers["x-rewritten"] == "yes"


async def test_failure_hook_replaces_the_client_facing_error(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=500)
    async with client_and_gateway(config_for(upstream, num_retries=0), hooks=[hc.FailureReplacer()]) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "replaced: InternalServerError"  # LiteLLM's name for a 500
    assert "x-gateway-call-id" in response.headers


async def test_streaming_hooks_edit_drop_and_add_chunks(upstream):
    upstream.default = Behavior(content="keep drop this", chunks=3)
    hooks = [hc.StreamEditor(), hc.ChunkUppercaser()]
    async with client_and_gateway(config_for(upstream), hooks=hooks) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt", stream=True), headers=AUTH)
    assert content_of(response.text) == "KEEP THIS [EDITED]"
    assert sse_payloads(response.text)[-1] == "[DONE]"


@pytest.mark.parametrize("stream", [False, True])
async def test_broken_hooks_never_break_or_delay_a_request(upstream, stream):
    config = config_for(upstream, hooks={"timeout_s": 0.2})
    async with client_and_gateway(config, hooks=[hc.Broken()]) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt", "still fine", stream=stream), headers=AUTH)
        assert response.status_code == 200
        text = content_of(response.text) if stream else response.json()["choices"][0]["message"]["content"]
        assert text == "still fine"
        await eventually(lambda: gateway.callbacks.failures)
        await eventually(lambda: sum(gateway.callbacks.failures.values()) >= 2)
    assert gateway.hooks.failures  # in-line failures are counted too
    assert response.elapsed.total_seconds() < 5


@pytest.mark.parametrize("stream", [False, True])
async def test_logging_hooks_get_litellm_kwargs(upstream, stream):
    recorder = hc.Recorder()
    body = chat("gpt", "log me", stream=stream, metadata={"tags": ["team-a"], "purpose": "test"})
    async with client_and_gateway(config_for(upstream), hooks=[recorder]) as (client, _):
        response = await client.post("/v1/chat/completions", json=body, headers={**AUTH, "x-trace": "t1"})
        assert response.status_code == 200
        await eventually(lambda: recorder.named("async_log_success_event") and recorder.named("log_success_event"))
        await eventually(lambda: recorder.named("log_pre_api_call"))
    kwargs, response_obj, start, end = recorder.named("async_log_success_event")[0]
    assert kwargs["model"] == "gpt-4o-mini"
    assert kwargs["messages"] == [{"role": "user", "content": "log me"}]
    assert kwargs["call_type"] == "completion"
    assert kwargs["stream"] is stream
    assert kwargs["litellm_call_id"] == response.headers["x-gateway-call-id"]
    metadata = kwargs["litellm_params"]["metadata"]
    assert metadata["tags"] == ["team-a"] and metadata["purpose"] == "test"
    assert metadata["headers"]["x-trace"] == "t1" and "authorization" not in metadata["headers"]
    assert metadata["user_api_key_hash"] and MASTER not in str(kwargs)
    assert kwargs["response_cost"] > 0  # gpt-4o-mini is in the built-in price table
    assert kwargs["cache_hit"] is False
    assert start <= kwargs["completion_start_time"] <= end
    assert kwargs["standard_logging_object"]["call_id"] == kwargs["litellm_call_id"]
    assert kwargs["standard_logging_object"]["status"] == "success"
    assert response_obj.choices[0].message.content == "log me"
    assert response_obj.usage.completion_tokens == 2
    assert threading.main_thread().ident not in recorder.threads  # sync hooks ran off the event loop
    model, messages, pre_kwargs = recorder.named("log_pre_api_call")[0]
    assert model == "gpt-4o-mini" and pre_kwargs["litellm_call_id"] == kwargs["litellm_call_id"]


@pytest.mark.parametrize("stream", [False, True])
async def test_failure_logging_hooks_get_the_exception(upstream, stream):
    recorder = hc.Recorder()
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=503)
    async with client_and_gateway(config_for(upstream, num_retries=0), hooks=[recorder]) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt", stream=stream), headers=AUTH)
        assert response.status_code == 502
        await eventually(lambda: recorder.named("async_log_failure_event") and recorder.named("log_failure_event"))
    kwargs, response_obj, _, _ = recorder.named("async_log_failure_event")[0]
    assert response_obj is None
    assert "503" in str(kwargs["exception"]) or kwargs["exception"].upstream_status == 503
    assert kwargs["standard_logging_object"]["status"] == "failure"


async def test_plain_callback_functions_from_config(upstream):
    hc.received_by_functions.clear()
    hooks = {"input_callback": ["hook_classes:on_input"], "success_callback": ["hook_classes:on_success"],
             "failure_callback": ["hook_classes:on_failure"]}
    upstream.behaviors["bad"] = Behavior(status=500)
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"},
              {"name": "bad", "model": "openai/bad", "api_base": f"{upstream.base_url}/v1"}]
    config = make_config(models=models, hooks=hooks, router={"num_retries": 0})
    async with client_and_gateway(config) as (client, _):
        await client.post("/v1/chat/completions", json=chat("gpt"))
        await client.post("/v1/chat/completions", json=chat("bad"))
        await eventually(lambda: {kind for kind, _ in hc.received_by_functions} == {"input", "success", "failure"})
    success = [v for k, v in hc.received_by_functions if k == "success"][0]
    kwargs, completion_response, start, end = success
    assert completion_response["choices"][0]["message"]["content"] == "hello there"
    assert start <= end and kwargs["response_cost"] is not None


async def test_user_actors_get_typed_events_and_are_supervised(upstream):
    hc.actor_events.clear()
    hc.crashes["count"] = 0
    hooks = {"actors": ["hook_classes:collecting_actor", "hook_classes:crash_once_actor", "hook_classes:always_crashing_actor"]}
    upstream.default = Behavior(chunks=3)
    async with client_and_gateway(config_for(upstream, hooks=hooks)) as (client, gateway):
        await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
        await client.post("/v1/chat/completions", json=chat("gpt", stream=True), headers=AUTH)
        await eventually(lambda: sum(e.kind == "success" for e in hc.actor_events) >= 3)
        states = {actor.name: actor.state for actor in gateway.callbacks.actors}
        await eventually(lambda: states["hook_classes:always_crashing_actor"].stopped, timeout=20)
    kinds = {event.kind for event in hc.actor_events}
    assert {"pre_api_call", "success", "stream_chunk"} <= kinds
    success = next(e for e in hc.actor_events if e.kind == "success")
    assert success.payload["kwargs"]["standard_logging_object"]["status"] == "success"
    assert states["hook_classes:crash_once_actor"].restarts == 1
    assert not states["hook_classes:crash_once_actor"].stopped
    assert states["hook_classes:always_crashing_actor"].crashes > 5


async def test_hooks_named_in_the_config_are_loaded(upstream):
    hooks = {"callbacks": ["hook_classes:CallInfoHeaders"]}
    async with client_and_gateway(config_for(upstream, hooks=hooks)) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
    assert response.headers["x-hook-new"] == "1"
    assert type(gateway.hooks.hooks[0]).__name__ == "CallInfoHeaders"


async def test_metrics_count_calls_and_hook_failures(upstream):
    config = config_for(upstream, hooks={"timeout_s": 0.2})
    async with client_and_gateway(config, hooks=[hc.Broken()]) as (client, gateway):
        await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
        await eventually(lambda: sum(gateway.callbacks.failures.values()) >= 2)
        text = (await client.get("/metrics", headers=AUTH)).text
    assert 'gateway_calls_total{call_type="completion",status="success"} 1.0' in text
    assert 'gateway_hook_failures_total{hook="Broken.async_post_call_success_hook"} 1.0' in text
    assert "gateway_callback_events_dropped_total 0.0" in text
    assert 'gateway_deployment_in_flight{model_group="gpt"' in text
    assert MASTER not in text and "sk-upstream" not in text


async def test_pre_call_refusal_is_a_400_off_the_chat_routes(upstream):
    class RefuseAll(hc.CustomLogger):
        async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
            return f"no {call_type} today"

    async with client_and_gateway(config_for(upstream), hooks=[RefuseAll()]) as (client, _):
        response = await client.post("/v1/embeddings", json={"model": "gpt", "input": "x"}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "no embeddings today"
    assert not upstream.received


async def test_a_full_mailbox_drops_and_counts_events():
    import trio

    from gateway_trio.actors.callbacks import CallbackActor
    from gateway_trio.channels.events import HookEvent
    from gateway_trio.hooks.inline import HookSet

    actor = CallbackActor(HookSet([]), inbox_size=3)
    for _ in range(5):
        actor.post(HookEvent("stream_chunk", {"call_id": "c", "chunk": b"{}"}))
    assert actor.dropped == 2
    actor.close()
    actor.post(HookEvent("stream_chunk", {"call_id": "c", "chunk": b"{}"}))
    assert actor.dropped == 3
    await trio.lowlevel.checkpoint()
