"""Every LLM route through the one pipeline: hooks, guardrails, headers and one spend record
on each, streaming and not, success and failure."""

import orjson
import pytest
from harness import chat, client_and_gateway, eventually, gateway_client, make_config, sse_payloads
from route_witness import Witness

from gateway_trio.testing import Behavior

MASTER = "sk-master-routes-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}

ROUTES = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hello there"}]}, True),
    "completions": ("/v1/completions", {"prompt": "hello there"}, True),
    "embeddings": ("/v1/embeddings", {"input": "hello there"}, False),
    "moderations": ("/v1/moderations", {"input": "hello there"}, False),
    "responses": ("/v1/responses", {"input": "hello there"}, True),
    "messages": ("/v1/messages", {"max_tokens": 64, "messages": [{"role": "user", "content": "hello there"}]}, True),
    "transcriptions": ("/v1/audio/transcriptions", None, False),
    "images": ("/v1/images/generations", {"prompt": "hello there"}, False),
}
CASES = [(route, stream) for route, (_, _, streams) in ROUTES.items() for stream in ((False, True) if streams else (False,))]


def config_for(upstream, **router):
    models = [
        {"name": "m", "model": "openai/route-model", "api_base": f"{upstream.base_url}/v1", "guardrails": ["watch"]},
        {"name": "claude", "model": "anthropic/claude-route", "api_base": upstream.base_url, "api_key": "sk-ant-r",
         "guardrails": ["watch"]},
    ]
    guardrails = [{"name": "watch", "guardrail": "route_witness:WatchingGuardrail", "mode": ["pre_call", "post_call"]}]
    pass_through = [{"path": "/v1/custom-embed", "target": f"{upstream.base_url}/v1/embeddings",
                     "headers": {"content-type": "application/json"}}]
    return make_config(models=models, guardrails=guardrails, pass_through=pass_through,
                       server={"master_key": MASTER}, router={"num_retries": 0, **router})


async def send(client, route, model="m", stream=False, headers=AUTH):
    path, extra, _ = ROUTES[route]
    if route == "transcriptions":
        files = {"file": ("clip.wav", b"RIFF" + b"\0" * 2000, "audio/wav")}
        return await client.post(path, data={"model": model}, files=files, headers=headers)
    body = {"model": model, **extra}
    if stream:
        body["stream"] = True
    return await client.post(path, json=body, headers=headers)


async def records(client, gateway, count):
    await eventually(lambda: gateway.spend._accepted >= count)
    await gateway.spend.flush()
    return (await client.get("/spend/logs", headers=AUTH)).json()


@pytest.mark.parametrize(("route", "stream"), CASES)
async def test_every_route_runs_hooks_guardrails_headers_and_one_record(upstream, route, stream):
    witness = Witness()
    async with client_and_gateway(config_for(upstream), hooks=[witness]) as (client, gateway):
        ok = await send(client, route, stream=stream)
        upstream.default = Behavior(status=500)
        failed = await send(client, route, stream=stream)
        logged = await records(client, gateway, 2)
        await eventually(lambda: witness.successes and witness.failures)
    assert ok.status_code == 200, ok.text
    assert failed.status_code == 502, failed.text
    for response, outcome in ((ok, "success"), (failed, "failure")):
        assert response.headers["x-witness"] == outcome
        assert response.headers["x-witness-provider"] == "openai"
        assert response.headers["x-gateway-model-group"] == "m"
        assert response.headers["x-gateway-applied-guardrails"] == "watch"
    if stream:
        assert ok.headers["content-type"].startswith("text/event-stream")
    assert sorted(r["status"] for r in logged) == ["failure", "success"]
    assert {r["call_id"] for r in logged} == {ok.headers["x-gateway-call-id"], failed.headers["x-gateway-call-id"]}
    assert all(r["guardrail_information"] for r in logged)
    assert len(witness.successes) == 1 and len(witness.failures) == 1


async def test_anthropic_deployments_refuse_embeddings_clearly(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        response = await send(client, "embeddings", model="claude")
    assert response.status_code == 400
    assert "embeddings" in response.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_messages_route_to_anthropic_directly_and_to_openai_by_translation(upstream, stream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        direct = await send(client, "messages", model="claude", stream=stream, headers={"x-api-key": MASTER})
        translated = await send(client, "messages", model="m", stream=stream, headers={"x-api-key": MASTER})
    paths = [r.path for r in upstream.received]
    assert paths == ["/v1/messages", "/v1/chat/completions"]
    for response in (direct, translated):
        assert response.status_code == 200
        if stream:
            events = [line[len("event: "):] for line in response.text.split("\n") if line.startswith("event: ")]
            assert events[0] == "message_start" and events[-1] == "message_stop"
            deltas = [orjson.loads(p) for p in sse_payloads(response.text) if '"text_delta"' in p]
            assert "".join(d["delta"]["text"] for d in deltas) == "hello there"
        else:
            body = response.json()
            assert body["type"] == "message" and body["content"][0]["text"] == "hello there"


async def test_messages_route_errors_are_anthropic_shaped(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        unauthorised = await send(client, "messages", headers={"x-api-key": "wrong"})
        unknown = await send(client, "messages", model="nope", headers={"x-api-key": MASTER})
    assert unauthorised.status_code == 401
    assert unauthorised.json()["type"] == "error"
    assert unauthorised.json()["error"]["type"] == "authentication_error"
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("stream", [False, True])
async def test_response_ids_name_their_deployment_and_route_follow_ups_back(upstream, stream):
    models = [{"name": "r", "model": f"openai/resp-{name}", "api_base": f"{upstream.base_url}/v1"} for name in "abcd"]
    config = make_config(models=models, server={"master_key": MASTER})
    async with client_and_gateway(config) as (client, _):
        first = await client.post("/v1/responses", json={"model": "r", "input": "hi", "stream": stream}, headers=AUTH)
        if stream:
            completed = [orjson.loads(p) for p in sse_payloads(first.text) if '"response.completed"' in p][0]
            response_id = completed["response"]["id"]
            created = [orjson.loads(p) for p in sse_payloads(first.text) if '"response.created"' in p][0]
            assert created["response"]["id"] == response_id
        else:
            response_id = first.json()["id"]
        assert response_id.startswith("resp_")
        upstream_first = upstream.received[0]
        for _ in range(6):
            follow = await client.post("/v1/responses", json={"model": "r", "input": "more", "previous_response_id": response_id},
                                       headers=AUTH)
            assert follow.status_code == 200
            sent = upstream.received[-1]
            assert sent.model == upstream_first.model  # the same deployment every time
            assert sent.json["previous_response_id"] != response_id  # the upstream's own id restored
            assert not sent.json["previous_response_id"].startswith("resp_") or len(sent.json["previous_response_id"]) < len(response_id)


async def test_transcription_needs_a_file(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        missing = await client.post("/v1/audio/transcriptions", data={"model": "m"}, headers=AUTH)
        text = await client.post("/v1/audio/transcriptions", data={"model": "m", "response_format": "text"},
                                 files={"file": ("a.wav", b"abc", "audio/wav")}, headers=AUTH)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    sent = upstream.received[-1]
    assert sent.json["fields"]["model"] == "route-model" and sent.json["file_size"] == 3


async def test_transcription_size_limit(upstream):
    config = config_for(upstream)
    config = config.model_copy(update={"server": config.server.model_copy(update={"max_request_mb": 0.01})})
    async with client_and_gateway(config) as (client, _):
        response = await client.post("/v1/audio/transcriptions", data={"model": "m"},
                                     files={"file": ("big.wav", b"x" * 50_000, "audio/wav")}, headers=AUTH)
    assert response.status_code == 413


async def test_pass_through_forwards_and_records(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        response = await client.post("/v1/custom-embed?trace=1", json={"model": "emb", "input": "x"},
                                     headers={**AUTH, "x-custom": "yes"})
        unauthorised = await client.post("/v1/custom-embed", json={"model": "emb", "input": "x"})
        logged = await records(client, gateway, 1)
    assert response.status_code == 200 and response.json()["data"]
    sent = upstream.received[0]
    assert sent.path == "/v1/embeddings" and sent.query == "trace=1"
    assert "authorization" not in sent.headers  # gateway credentials never leave
    assert "x-custom" not in sent.headers  # forward_headers is off for this route
    assert unauthorised.status_code == 401
    assert logged[0]["call_type"] == "pass_through_endpoint" and logged[0]["model_group"] == "/v1/custom-embed"


async def test_pass_through_forward_headers(upstream):
    config = make_config(pass_through=[{"path": "/relay", "target": f"{upstream.base_url}/v1/chat/completions",
                                        "forward_headers": True}], server={"master_key": MASTER})
    async with client_and_gateway(config) as (client, _):
        body = {"model": "x", "messages": [{"role": "user", "content": "a b"}], "stream": True}
        response = await client.post("/relay", json=body, headers={**AUTH, "x-custom": "yes"})
    assert sse_payloads(response.text)[-1] == "[DONE]"
    sent = upstream.received[0]
    assert sent.headers["x-custom"] == "yes" and "authorization" not in sent.headers


def blocking_config(upstream, mode):
    models = [{"name": "m", "model": "openai/route-model", "api_base": f"{upstream.base_url}/v1", "guardrails": ["no-secrets"]}]
    guardrails = [{"name": "no-secrets", "guardrail": "regex", "mode": mode, "params": {"patterns": ["SECRET-[0-9]+"]}}]
    return make_config(models=models, guardrails=guardrails, server={"master_key": MASTER}, router={"num_retries": 0})


def with_secret(route, body):
    secret = "tell me SECRET-42"
    if route == "messages":
        return {**body, "messages": [{"role": "user", "content": secret}]}
    if route == "chat":
        return {**body, "messages": [{"role": "user", "content": secret}]}
    key = "prompt" if route in ("completions", "images") else "input"
    return {**body, key: secret}


@pytest.mark.parametrize(("route", "stream"), [c for c in CASES if c[0] != "transcriptions"])
async def test_model_level_pre_call_guardrail_blocks_on_every_route(upstream, route, stream):
    path, extra, _ = ROUTES[route]
    body = with_secret(route, {"model": "m", **extra, **({"stream": True} if stream else {})})
    async with client_and_gateway(blocking_config(upstream, "pre_call")) as (client, _):
        response = await client.post(path, json=body, headers=AUTH)
    assert response.status_code == 400
    assert "guardrail" in response.text and "SECRET-42" not in response.text
    assert response.headers["x-gateway-applied-guardrails"] == "no-secrets"
    assert not upstream.received


@pytest.mark.parametrize(("route", "stream"), [c for c in CASES if c[0] in ("chat", "completions", "responses", "messages", "images")])
async def test_model_level_post_call_guardrail_blocks_answers_on_every_route(upstream, route, stream):
    upstream.default = Behavior(content="the answer is SECRET-7 indeed")
    async with client_and_gateway(blocking_config(upstream, "post_call")) as (client, gateway):
        response = await send(client, route, stream=stream)
        logged = await records(client, gateway, 1)
    if stream:
        tail = response.text.strip().split("\n")[-1]
        assert "guardrail" in tail
        assert "[DONE]" not in response.text and "message_stop" not in response.text
        assert "response.completed" not in response.text
    else:
        assert response.status_code == 400 and "SECRET-7" not in response.text
    assert logged[0]["status"] == "failure"
    assert logged[0]["guardrail_information"][0]["status"] == "blocked"


async def test_litellm_headers_repeat_the_gateway_headers_under_litellms_names(upstream):
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1",
               "info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}]
    on = make_config(models=models, server={"litellm_headers": True})
    off = make_config(models=models)
    async with gateway_client(on) as client:
        answer = await client.post("/v1/chat/completions", json=chat("gpt"))
        streamed = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
        ready = (await client.get("/health/readiness")).json()
    async with gateway_client(off) as client:
        plain = await client.post("/v1/chat/completions", json=chat("gpt"))
    for response in (answer, streamed):
        for ours, theirs in [("call-id", "call-id"), ("model-id", "model-id"), ("model-group", "model-group"),
                             ("attempted-retries", "attempted-retries"), ("overhead-ms", "overhead-duration-ms")]:
            assert response.headers[f"x-litellm-{theirs}"] == response.headers[f"x-gateway-{ours}"]
        assert float(response.headers["x-litellm-response-duration-ms"]) >= 0
    assert answer.headers["x-litellm-response-cost"] == answer.headers["x-gateway-response-cost"]
    assert not any(name.startswith("x-litellm-") for name in plain.headers)
    assert ready["db"] == "connected" and ready["status"] == "healthy"
