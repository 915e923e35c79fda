"""Guardrails end to end (SPEC §7): model-level ones on every route, streaming and not."""

import orjson
import pytest
from harness import chat, client_and_gateway, eventually, make_config, sse_payloads

from gateway_trio.testing import Behavior

SECRET_TEXT = "the launch code is SECRET-1234 ok"


def guardrail(name, kind="regex", mode="post_call", **params):
    extra = {k: params.pop(k) for k in ("default_on", "fail_open", "timeout_s") if k in params}
    return {"name": name, "guardrail": kind, "mode": mode, "params": params, **extra}


def models(upstream, guardrails=("no-secrets",)):
    return [
        {"name": "guarded", "model": "openai/guarded-model", "api_base": f"{upstream.base_url}/v1",
         "guardrails": list(guardrails)},
        {"name": "claude-guarded", "model": "anthropic/claude-guarded", "api_base": upstream.base_url,
         "api_key": "sk-ant-x", "guardrails": list(guardrails)},
        {"name": "open", "model": "openai/open-model", "api_base": f"{upstream.base_url}/v1"},
    ]


def config_for(upstream, guardrails, model_guardrails=("no-secrets",)):
    return make_config(models=models(upstream, model_guardrails), guardrails=guardrails,
                       router={"num_retries": 0})


def content_of(text):
    chunks = [orjson.loads(p) for p in sse_payloads(text) if p != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


async def spend_for(client, gateway, call_id):
    await eventually(lambda: gateway.spend._accepted >= 1)
    await gateway.spend.flush()
    records = (await client.get("/spend/logs", params={"call_id": call_id})).json()
    assert len(records) == 1
    return records[0]


@pytest.mark.parametrize("model", ["guarded", "claude-guarded"])
async def test_model_level_post_call_guardrail_blocks_streams_on_both_provider_styles(upstream, model):
    upstream.default = Behavior(content=SECRET_TEXT)
    config = config_for(upstream, [guardrail("no-secrets", patterns=["SECRET-[0-9]+"])])
    async with client_and_gateway(config) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat(model, stream=True))
        record = await spend_for(client, gateway, response.headers["x-gateway-call-id"])
    payloads = sse_payloads(response.text)
    assert payloads[-1] != "[DONE]"
    assert orjson.loads(payloads[-1])["error"]["type"] == "guardrail_blocked"
    assert response.headers["x-gateway-applied-guardrails"] == "no-secrets"
    assert record["status"] == "failure"
    runs = record["guardrail_information"]
    assert [(r["name"], r["mode"], r["status"]) for r in runs] == [("no-secrets", "post_call", "blocked")]
    assert runs[0]["duration_ms"] >= 0


@pytest.mark.parametrize("model", ["guarded", "claude-guarded"])
async def test_model_level_post_call_guardrail_blocks_non_streaming(upstream, model):
    upstream.default = Behavior(content=SECRET_TEXT)
    config = config_for(upstream, [guardrail("no-secrets", patterns=["SECRET-[0-9]+"])])
    async with client_and_gateway(config) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat(model))
        record = await spend_for(client, gateway, response.headers["x-gateway-call-id"])
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "guardrail_blocked"
    assert "SECRET-1234" not in response.text
    assert record["guardrail_information"][0]["status"] == "blocked"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_deployment_without_the_guardrail_is_not_guarded(upstream, stream):
    upstream.default = Behavior(content=SECRET_TEXT)
    config = config_for(upstream, [guardrail("no-secrets", patterns=["SECRET-[0-9]+"])])
    async with client_and_gateway(config) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("open", stream=stream))
    assert response.status_code == 200
    assert "SECRET-1234" in response.text
    assert "x-gateway-applied-guardrails" not in response.headers


async def test_buffer_mode_never_lets_blocked_text_out(upstream):
    upstream.default = Behavior(content="fine words then SECRET-1234 and more words after it", chunks=12)
    rule = guardrail("no-secrets", patterns=["SECRET-[0-9]+"], stream_mode="buffer", buffer_max_chars=4096)
    async with client_and_gateway(config_for(upstream, [rule])) as (client, _):
        async with client.stream("POST", "/v1/chat/completions", json=chat("guarded", stream=True)) as response:
            received = (await response.aread()).decode()
    assert "SECRET" not in received
    assert "guardrail_blocked" in received
    assert "[DONE]" not in received


async def test_buffer_mode_masks_streamed_pii(upstream):
    upstream.default = Behavior(content="write to jane.doe@example.com or call +1 415 555 0100 today", chunks=8)
    rule = guardrail("pii", kind="pii", stream_mode="buffer")
    async with client_and_gateway(config_for(upstream, [rule], model_guardrails=("pii",))) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("guarded", stream=True))
    text = content_of(response.text)
    assert "jane.doe@example.com" not in response.text and "555 0100" not in response.text
    assert "[EMAIL]" in text and "[PHONE]" in text
    assert sse_payloads(response.text)[-1] == "[DONE]"


@pytest.mark.parametrize("route, body", [
    ("/v1/responses", {"model": "guarded", "input": "hi", "stream": True}),
    ("/v1/messages", {"model": "guarded", "max_tokens": 50, "stream": True,
                      "messages": [{"role": "user", "content": "hi"}]}),
])
async def test_buffer_mode_masking_reaches_the_events_that_repeat_the_whole_text(upstream, route, body):
    upstream.default = Behavior(content="write to jane.doe@example.com or call +1 415 555 0100 today", chunks=8)
    rule = guardrail("pii", kind="pii", stream_mode="buffer")
    async with client_and_gateway(config_for(upstream, [rule], model_guardrails=("pii",))) as (client, _):
        response = await client.post(route, json=body)
    assert response.status_code == 200
    assert "[EMAIL]" in response.text and "[PHONE]" in response.text
    assert "jane.doe@example.com" not in response.text and "555 0100" not in response.text


async def test_end_mode_lets_chunks_through_then_ends_with_an_error(upstream):
    upstream.default = Behavior(content=SECRET_TEXT, chunks=6)
    rule = guardrail("no-secrets", patterns=["SECRET-[0-9]+"], stream_mode="end")
    async with client_and_gateway(config_for(upstream, [rule])) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("guarded", stream=True))
    assert "SECRET" in content_of(response.text)  # end mode checks after the fact
    assert "guardrail_blocked" in sse_payloads(response.text)[-1]


async def test_sample_mode_stops_the_stream_early(upstream):
    text = "SECRET-1 " + " ".join(f"w{i}" for i in range(60))
    upstream.default = Behavior(content=text, chunks=60, chunk_delay_s=0.01)
    rule = guardrail("no-secrets", patterns=["SECRET-[0-9]+"], stream_mode="sample", sample_every=5)
    async with client_and_gateway(config_for(upstream, [rule])) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("guarded", stream=True))
        record = upstream.received[0]
        await upstream.wait_for(lambda: record.closed_at is not None, timeout=10)
    streamed = content_of(response.text)
    assert "guardrail_blocked" in sse_payloads(response.text)[-1]
    assert "w50" not in streamed  # cut within a sample, not at the end
    assert record.disconnected_early  # the upstream call was cancelled


async def test_pre_call_request_guardrail_and_pii_masking_of_requests(upstream):
    rules = [guardrail("no-keys", mode="pre_call", default_on=True, patterns=["sk-[A-Za-z0-9]{20,}"]),
             guardrail("pii", kind="pii", mode="pre_call", default_on=True)]
    async with client_and_gateway(config_for(upstream, rules, model_guardrails=())) as (client, _):
        leaked = await client.post("/v1/chat/completions", json=chat("open", "my key sk-abcdefghijklmnopqrstuvwx"))
        masked = await client.post("/v1/chat/completions", json=chat("open", "mail bob@example.org please"))
    assert leaked.status_code == 400 and "sk-abcdefghij" not in leaked.text
    assert masked.status_code == 200
    assert upstream.received[-1].json["messages"][0]["content"] == "mail [EMAIL] please"
    assert masked.headers["x-gateway-applied-guardrails"] == "no-keys,pii"


async def test_request_named_guardrails_and_unknown_names(upstream):
    upstream.default = Behavior(content=SECRET_TEXT)
    rule = guardrail("no-secrets", patterns=["SECRET-[0-9]+"])
    async with client_and_gateway(config_for(upstream, [rule], model_guardrails=())) as (client, _):
        asked = await client.post("/v1/chat/completions", json=chat("open", guardrails=["no-secrets"]))
        unknown = await client.post("/v1/chat/completions", json=chat("open", guardrails=["nope"]))
    assert asked.status_code == 400 and asked.json()["error"]["type"] == "guardrail_blocked"
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "guardrails"


async def test_during_call_block_cancels_the_upstream_call(upstream):
    upstream.default = Behavior(delay_s=5)
    rule = {"name": "slow-block", "guardrail": "stage_guardrails:SlowBlocker", "mode": "during_call"}
    async with client_and_gateway(config_for(upstream, [rule], model_guardrails=("slow-block",))) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("guarded"))
        record = upstream.received[0]
        await upstream.wait_for(lambda: record.closed_at is not None, timeout=10)
    assert response.status_code == 400
    assert record.disconnected_early


@pytest.mark.parametrize(("kind", "fail_open", "status"), [
    ("stage_guardrails:Exploding", False, 400), ("stage_guardrails:Exploding", True, 200),
    ("stage_guardrails:Sleepy", False, 400), ("stage_guardrails:Sleepy", True, 200),
])
async def test_errors_and_timeouts_fail_closed_unless_fail_open(upstream, kind, fail_open, status):
    rule = {"name": "flaky", "guardrail": kind, "mode": "pre_call", "fail_open": fail_open, "timeout_s": 0.3}
    async with client_and_gateway(config_for(upstream, [rule], model_guardrails=("flaky",))) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("guarded"))
        record = await spend_for(client, gateway, response.headers["x-gateway-call-id"])
    assert response.status_code == status
    assert record["guardrail_information"][0]["status"] == "failed"


async def test_guardrails_list_and_apply(upstream):
    rules = [guardrail("no-secrets", patterns=["SECRET-[0-9]+"]),
             guardrail("pii", kind="pii", mode=["pre_call", "post_call"], default_on=True),
             {"name": "custom", "guardrail": "stage_guardrails:Exploding", "mode": "pre_call",
              "params": {"api_key": "sk-hidden-param-value"}}]
    async with client_and_gateway(config_for(upstream, rules)) as (client, _):
        listed = (await client.get("/guardrails/list")).json()["guardrails"]
        masked = await client.post("/guardrails/apply_guardrail", json={"guardrail_name": "pii", "text": "mail a@b.io"})
        blocked = await client.post("/guardrails/apply_guardrail", json={"guardrail_name": "no-secrets", "text": "SECRET-9"})
        missing = await client.post("/guardrails/apply_guardrail", json={"guardrail_name": "nope", "text": "x"})
    by_name = {g["guardrail_name"]: g for g in listed}
    assert by_name["pii"]["default_on"] is True and by_name["pii"]["mode"] == ["pre_call", "post_call"]
    assert by_name["pii"]["type"] == "builtin" and by_name["custom"]["type"] == "custom"
    assert "sk-hidden-param-value" not in str(listed)
    assert masked.json()["response_text"] == "mail [EMAIL]"
    assert blocked.status_code == 400
    assert missing.status_code == 404


async def test_logging_only_masks_what_hooks_log_not_what_the_client_gets(upstream):
    import hook_classes as hc

    recorder = hc.Recorder()
    rule = guardrail("pii-logs", kind="pii", mode="logging_only", default_on=True)
    async with client_and_gateway(config_for(upstream, [rule], model_guardrails=()), hooks=[recorder]) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("open", "reach me at zed@example.com"))
        await eventually(lambda: recorder.named("async_log_success_event"))
    assert response.json()["choices"][0]["message"]["content"] == "reach me at zed@example.com"
    kwargs, response_obj, _, _ = recorder.named("async_log_success_event")[0]
    assert kwargs["messages"][0]["content"] == "reach me at [EMAIL]"
    assert response_obj.choices[0].message.content == "reach me at [EMAIL]"
    assert upstream.received[0].json["messages"][0]["content"] == "reach me at zed@example.com"


@pytest.mark.parametrize("stream", [False, True])
async def test_guardrails_written_as_hook_methods_run_only_where_active(upstream, stream):
    upstream.default = Behavior(content="a bad word here", chunks=4)
    rule = {"name": "redact", "guardrail": "stage_guardrails:RedactingStreamGuardrail", "mode": "post_call"}
    async with client_and_gateway(config_for(upstream, [rule], model_guardrails=("redact",))) as (client, _):
        guarded = await client.post("/v1/chat/completions", json=chat("guarded", stream=stream))
        unguarded = await client.post("/v1/chat/completions", json=chat("open", stream=stream))
    read = content_of if stream else (lambda text: orjson.loads(text)["choices"][0]["message"]["content"])
    assert read(guarded.text) == "a *** word here"
    assert read(unguarded.text) == "a bad word here"
