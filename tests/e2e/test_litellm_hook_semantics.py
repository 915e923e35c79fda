"""LiteLLM's hook and guardrail semantics through the real gateway (SPEC §6-7, issue 13).

Guardrails written as hook methods run only the methods of their configured mode;
`async_moderation_hook` runs during the call, concurrently with the upstream request, and its
raise cancels that request; a raising `async_post_call_success_hook` rejects the answer; a
pre-call hook's new `model` reroutes the call within what the key may use; and
`x-gateway-applied-guardrails` names only what ran.
"""

from __future__ import annotations

from typing import Any

import litellm_style_guardrails as lg
import orjson
import pytest
import trio
from harness import chat, client_and_gateway, eventually, make_config, sse_payloads

from gateway_trio.testing import Behavior

MASTER = "sk-master-litellm-semantics-0123"
KEY = "sk-test-key-litellm-semantics-0123456789"
NARROW = "sk-test-key-litellm-semantics-narrow-0123"
TRACER = "litellm_style_guardrails:ModeTracer"


def bearer(key: str = MASTER) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def guardrail(name: str, mode: Any, cls: str = TRACER, **extra: Any) -> dict[str, Any]:
    return {"name": name, "guardrail": cls, "mode": mode, "default_on": True, **extra}


def config_for(upstream, guardrails=(), hooks=None, keys=(), **router: Any):
    base = f"{upstream.base_url}/v1"
    models = [
        {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": base},
        {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": base, "info": {"id": "gpt-second"}},
        {"name": "other-group", "model": "openai/gpt-4o", "api_base": base},
    ]
    return make_config(
        server={"master_key": MASTER},
        models=models,
        guardrails=list(guardrails),
        hooks=hooks or {},
        keys=list(keys),
        router={"num_retries": 0, "allowed_fails": 1, **router},
    )


@pytest.fixture(autouse=True)
def fresh_runs():
    lg.RUNS.clear()
    yield
    lg.RUNS.clear()
    lg.Moderator.upstream = None


async def record_of(client, gateway, response) -> dict[str, Any]:
    """The call's one spend record."""
    call_id = response.headers["x-gateway-call-id"]
    await eventually(lambda: gateway.spend._accepted >= 1)
    await gateway.spend.flush()
    records = (await client.get("/spend/logs", params={"call_id": call_id}, headers=bearer())).json()
    assert len(records) == 1, records
    return records[0]


def runs_of(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["name"], r["mode"], r["status"]) for r in record["guardrail_information"]]


def content_of(text: str) -> str:
    chunks = [orjson.loads(p) for p in sse_payloads(text) if p != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def never_punished(gateway) -> bool:
    """No deployment was counted a failure, let alone cooled down."""
    return all(
        not load.recent_failures and load.cooled_until <= trio.current_time() for load in gateway.router.loads.values()
    )


# --- guardrails written as hook methods: their mode's method only ---------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_three_instances_of_one_class_each_run_only_their_modes_method(upstream, stream):
    rules = [guardrail("g-pre", "pre_call"), guardrail("g-during", "during_call"), guardrail("g-post", "post_call")]
    async with client_and_gateway(config_for(upstream, rules)) as (client, gateway):
        response = await client.post(
            "/v1/chat/completions", json=chat("gpt", "plain words", stream=stream), headers=bearer()
        )
        record = await record_of(client, gateway, response)
    assert response.status_code == 200
    post = "async_post_call_streaming_iterator_hook" if stream else "async_post_call_success_hook"
    assert sorted(lg.RUNS) == sorted(
        [("g-pre", "async_pre_call_hook"), ("g-during", "async_moderation_hook"), ("g-post", post)]
    )
    assert response.headers["x-gateway-applied-guardrails"] == "g-pre,g-during,g-post"
    assert runs_of(record) == [
        ("g-pre", "pre_call", "success"),
        ("g-during", "during_call", "success"),
        ("g-post", "post_call", "success"),
    ]
    if stream:
        assert content_of(response.text) == "plain words" and sse_payloads(response.text)[-1] == "[DONE]"


async def test_a_mode_list_runs_the_methods_of_each_mode_it_names(upstream):
    rules = [guardrail("g-both", ["pre_call", "post_call"])]
    async with client_and_gateway(config_for(upstream, rules)) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer())
        record = await record_of(client, gateway, response)
    assert lg.RUNS == [("g-both", "async_pre_call_hook"), ("g-both", "async_post_call_success_hook")]
    assert runs_of(record) == [("g-both", "pre_call", "success"), ("g-both", "post_call", "success")]


@pytest.mark.parametrize(
    ("text", "mode", "status", "message"),
    [
        ("reject-pre please", "pre_call", 403, "pre-call says no"),
        ("reject-during please", "during_call", 400, "moderation says no"),
        ("reject-post please", "post_call", 400, "post-call says no"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_raise_in_the_modes_method_blocks_streamed_or_not(upstream, text, mode, status, message, stream):
    rules = [guardrail("g", mode)]
    async with client_and_gateway(config_for(upstream, rules)) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt", text, stream=stream), headers=bearer())
        record = await record_of(client, gateway, response)
        assert never_punished(gateway)
    if stream and mode == "post_call":  # the stream had begun: it ends with an error event, no [DONE]
        assert response.status_code == 200
        last = orjson.loads(sse_payloads(response.text)[-1])
        assert message in last["error"]["message"]
    else:
        assert response.status_code == status
        assert message in response.json()["error"]["message"]
    assert record["status"] == "failure"
    assert runs_of(record) == [("g", mode, "blocked")]
    assert response.headers["x-gateway-applied-guardrails"] == "g"
    if mode == "pre_call":
        assert upstream.received == []  # rejected before the upstream was called


async def test_a_blocked_answer_is_anthropic_shaped_on_messages(upstream):
    rules = [guardrail("g", "post_call")]
    body = {"model": "gpt", "max_tokens": 50, "messages": [{"role": "user", "content": "reject-post now"}]}
    async with client_and_gateway(config_for(upstream, rules)) as (client, _):
        response = await client.post("/v1/messages", json=body, headers=bearer())
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and "post-call says no" in error["error"]["message"]


@pytest.mark.parametrize("text", ["fine words", "reject-post words"])
async def test_a_success_hook_only_guardrail_checks_the_assembled_stream(upstream, text):
    upstream.default = Behavior(chunks=4)
    rules = [guardrail("checker", "post_call", cls="litellm_style_guardrails:AnswerChecker")]
    async with client_and_gateway(config_for(upstream, rules)) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt", text, stream=True), headers=bearer())
        record = await record_of(client, gateway, response)
    assert lg.RUNS == [("checker", "async_post_call_success_hook")]
    last = sse_payloads(response.text)[-1]
    if "reject" in text:
        assert "the assembled answer says no" in orjson.loads(last)["error"]["message"]
        assert runs_of(record) == [("checker", "post_call", "blocked")] and record["status"] == "failure"
    else:
        assert last == "[DONE]" and content_of(response.text).startswith(text)
        assert runs_of(record) == [("checker", "post_call", "success")] and record["status"] == "success"


# --- x-gateway-applied-guardrails: only what ran ----------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_applied_guardrails_name_only_what_ran(upstream, stream):
    rules = [
        guardrail("ran", "pre_call"),
        guardrail("declined", "pre_call", cls="litellm_style_guardrails:Declining"),
        guardrail("declined-post", "post_call", cls="litellm_style_guardrails:Declining"),
        guardrail("nothing-to-run", "during_call", cls="litellm_style_guardrails:PreCallOnly"),
        guardrail("not-default", "pre_call", default_on=False),
    ]
    async with client_and_gateway(config_for(upstream, rules)) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt", stream=stream), headers=bearer())
        record = await record_of(client, gateway, response)
    assert response.status_code == 200
    assert lg.RUNS == [("ran", "async_pre_call_hook")]
    # On a stream too, though the header leaves before the post-call guardrails run: it asks them.
    assert response.headers["x-gateway-applied-guardrails"] == "ran"
    runs = [
        ("ran", "pre_call", "success"),
        ("declined", "pre_call", "not_run"),
        ("declined-post", "post_call", "not_run"),
    ]
    assert runs_of(record) == runs  # the record says what declined


async def test_no_header_when_nothing_ran(upstream):
    rules = [guardrail("declined", "pre_call", cls="litellm_style_guardrails:Declining")]
    async with client_and_gateway(config_for(upstream, rules)) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer())
    assert response.status_code == 200
    assert "x-gateway-applied-guardrails" not in response.headers


# --- async_moderation_hook of plain callbacks --------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_a_callbacks_moderation_hook_runs_during_the_upstream_call(upstream, stream):
    moderator = lg.Moderator()
    lg.Moderator.upstream = upstream  # it returns only once the upstream has the request
    async with client_and_gateway(config_for(upstream), hooks=[moderator]) as (client, _):
        response = await client.post(
            "/v1/chat/completions", json=chat("gpt", "moderate me", stream=stream), headers=bearer()
        )
    assert response.status_code == 200
    assert [s["text"] for s in moderator.seen] == ["moderate me"]
    assert moderator.seen[0]["call_type"] == "completion" and moderator.seen[0]["user"].api_key
    # It got a copy: emptying its messages changed nothing the upstream received.
    assert upstream.received[0].json["messages"] == [{"role": "user", "content": "moderate me"}]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_moderation_hooks_raise_rejects_and_cancels_the_upstream_call(upstream, stream):
    upstream.default = Behavior(delay_s=5)
    lg.Moderator.upstream = upstream
    async with client_and_gateway(config_for(upstream), hooks=[lg.Moderator()]) as (client, gateway):
        responses = [
            await client.post(
                "/v1/chat/completions", json=chat("gpt", "reject-during", stream=stream), headers=bearer()
            )
            for _ in range(3)
        ]
        record = await record_of(client, gateway, responses[0])
        for received in upstream.received:
            await upstream.wait_for(lambda r=received: r.closed_at is not None, timeout=10)
        assert never_punished(gateway)  # 3 rejections, allowed_fails = 1: nobody cooled down
    assert [r.status_code for r in responses] == [403, 403, 403]
    assert "moderation says no" in responses[0].json()["error"]["message"]
    assert all(r.disconnected_early for r in upstream.received)  # the upstream calls were cancelled
    assert record["status"] == "failure"
    assert lg.RUNS.count(("Moderator", "async_moderation_hook")) == 3  # once per call


# --- async_post_call_success_hook raises: the answer is rejected -----------------------------


async def test_a_raising_success_hook_rejects_every_answer(upstream):
    async with client_and_gateway(config_for(upstream), hooks=[lg.PostCallRejecter()]) as (client, gateway):
        responses = []

        async def one() -> None:
            responses.append(
                await client.post("/v1/chat/completions", json=chat("gpt", "reject-post"), headers=bearer())
            )

        async with trio.open_nursery() as nursery:
            for _ in range(16):
                nursery.start_soon(one)
        fine = await client.post("/v1/chat/completions", json=chat("gpt", "all good"), headers=bearer())
        record = await record_of(client, gateway, responses[0])
        assert never_punished(gateway)
        await gateway.spend.flush()
        records = (await client.get("/spend/logs", params={"limit": 100}, headers=bearer())).json()
    assert [r.status_code for r in responses] == [400] * 16
    error = responses[0].json()["error"]
    assert error["message"] == "the answer is not allowed" and set(error) == {"message", "type", "param", "code"}
    assert "reject-post" not in responses[0].text  # the rejected answer never left
    assert fine.status_code == 200
    assert record["status"] == "failure" and "the answer is not allowed" in record["error"]
    assert record["completion_tokens"] > 0  # the upstream did answer: its tokens are counted
    assert len(records) == 17 and sorted(r["status"] for r in records) == ["failure"] * 16 + ["success"]


async def test_a_success_hooks_http_exception_keeps_its_status_on_both_wire_shapes(upstream):
    body = {"model": "gpt", "max_tokens": 50, "messages": [{"role": "user", "content": "reject-http"}]}
    async with client_and_gateway(config_for(upstream), hooks=[lg.PostCallRejecter()]) as (client, _):
        openai_style = await client.post("/v1/chat/completions", json=chat("gpt", "reject-http"), headers=bearer())
        anthropic_style = await client.post("/v1/messages", json=body, headers=bearer())
    assert openai_style.status_code == 422 == anthropic_style.status_code
    assert openai_style.json()["error"]["message"] == "unprocessable answer"
    assert anthropic_style.json()["type"] == "error"
    assert anthropic_style.json()["error"]["message"] == "unprocessable answer"


async def test_success_hooks_do_not_run_on_streams(upstream):
    """As in LiteLLM: a stream's post-call hooks are the streaming ones (guardrails aside)."""
    async with client_and_gateway(config_for(upstream), hooks=[lg.PostCallRejecter()]) as (client, _):
        response = await client.post(
            "/v1/chat/completions", json=chat("gpt", "reject-post", stream=True), headers=bearer()
        )
    assert response.status_code == 200 and sse_payloads(response.text)[-1] == "[DONE]"
    assert lg.RUNS == []


# --- async_pre_call_hook reroutes the call ---------------------------------------------------


@pytest.mark.parametrize("text", ["reroute-return", "reroute-inplace"])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_pre_call_hook_reroutes_to_the_model_it_sets(upstream, text, stream):
    keys = [{"key": KEY, "models": ["gpt", "other-group"]}]
    async with client_and_gateway(config_for(upstream, keys=keys), hooks=[lg.Rerouter()]) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt", text, stream=stream), headers=bearer(KEY))
        record = await record_of(client, gateway, response)
    assert response.status_code == 200
    assert upstream.received[0].model == "gpt-4o"  # other-group's deployment, not gpt's
    assert response.headers["x-gateway-model-group"] == "other-group"
    assert record["model_group"] == "other-group"


async def test_a_reroute_the_key_may_not_use_is_403(upstream):
    keys = [{"key": NARROW, "models": ["gpt"]}]
    async with client_and_gateway(config_for(upstream, keys=keys), hooks=[lg.Rerouter()]) as (client, gateway):
        refused = await client.post("/v1/chat/completions", json=chat("gpt", "reroute-return"), headers=bearer(NARROW))
        record = await record_of(client, gateway, refused)
        allowed = await client.post("/v1/chat/completions", json=chat("gpt", "stay"), headers=bearer(NARROW))
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert "other-group" in error["message"] and "gpt" in error["message"]
    assert record["status"] == "failure"
    assert allowed.status_code == 200
    assert [r.model for r in upstream.received] == ["gpt-4o-mini"]  # only the allowed call went out


async def test_a_rerouted_call_is_held_to_the_limits_of_the_group_it_goes_to(upstream):
    keys = [{"key": KEY, "models": ["gpt", "other-group"], "model_rpm_limit": {"other-group": 1}}]
    async with client_and_gateway(config_for(upstream, keys=keys), hooks=[lg.Rerouter()]) as (client, gateway):
        first = await client.post("/v1/chat/completions", json=chat("gpt", "reroute-return"), headers=bearer(KEY))
        second = await client.post("/v1/chat/completions", json=chat("gpt", "reroute-return"), headers=bearer(KEY))
        staying = await client.post("/v1/chat/completions", json=chat("gpt", "stay"), headers=bearer(KEY))
        record = await record_of(client, gateway, second)
    assert first.status_code == 200
    assert second.status_code == 429, second.text  # other-group's one call a minute is taken
    assert second.json()["error"]["code"] == "rate_limit_exceeded"
    assert record["status"] == "failure"
    assert staying.status_code == 200  # gpt itself has no such limit
    assert [r.model for r in upstream.received] == ["gpt-4o", "gpt-4o-mini"]


async def test_the_master_key_is_rerouted_too(upstream):
    async with client_and_gateway(config_for(upstream), hooks=[lg.Rerouter()]) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt", "reroute-return"), headers=bearer())
    assert response.status_code == 200 and response.headers["x-gateway-model-group"] == "other-group"


# --- model-level: merged after routing, on the deployment that names them ---------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_a_deployments_hook_method_guardrails_run_only_on_its_calls(upstream, stream):
    base = f"{upstream.base_url}/v1"
    models = [
        {"name": "guarded", "model": "openai/guarded-model", "api_base": base, "guardrails": ["m-pre", "m-during"]},
        {"name": "open", "model": "openai/open-model", "api_base": base},
    ]
    rules = [guardrail("m-pre", "pre_call", default_on=False), guardrail("m-during", "during_call", default_on=False)]
    config = make_config(server={"master_key": MASTER}, models=models, guardrails=rules, router={"num_retries": 0})
    async with client_and_gateway(config) as (client, gateway):
        guarded = await client.post("/v1/chat/completions", json=chat("guarded", stream=stream), headers=bearer())
        record = await record_of(client, gateway, guarded)
        unguarded = await client.post("/v1/chat/completions", json=chat("open", stream=stream), headers=bearer())
        blocked = await client.post(
            "/v1/chat/completions", json=chat("guarded", "reject-during", stream=stream), headers=bearer()
        )
    assert guarded.status_code == 200 == unguarded.status_code
    assert guarded.headers["x-gateway-applied-guardrails"] == "m-pre,m-during"
    assert "x-gateway-applied-guardrails" not in unguarded.headers
    assert runs_of(record) == [("m-pre", "pre_call", "success"), ("m-during", "during_call", "success")]
    assert blocked.status_code == 400 and "moderation says no" in blocked.json()["error"]["message"]
    assert lg.RUNS == [("m-pre", "async_pre_call_hook"), ("m-during", "async_moderation_hook")] * 2


@pytest.mark.parametrize("text", ["calm words", "reject-post words"])
async def test_stream_hooks_of_a_guardrail_see_anthropic_events_on_messages(upstream, text):
    rules = [guardrail("g-post", "post_call")]
    body = {"model": "gpt", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": text}]}
    async with client_and_gateway(config_for(upstream, rules)) as (client, gateway):
        response = await client.post("/v1/messages", json=body, headers=bearer())
        record = await record_of(client, gateway, response)
    assert lg.RUNS == [("g-post", "async_post_call_streaming_iterator_hook")]
    events = [orjson.loads(p) for p in sse_payloads(response.text)]
    if "reject" in text:
        assert events[-1]["type"] == "error" and "post-call says no" in events[-1]["error"]["message"]
        assert runs_of(record) == [("g-post", "post_call", "blocked")]
    else:
        assert events[-1]["type"] == "message_stop"
        assert runs_of(record) == [("g-post", "post_call", "success")] and record["status"] == "success"
