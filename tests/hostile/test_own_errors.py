"""Our own errors never count against a deployment (issue 10, point 1).

Whatever fails on our side of the wire (a body we cannot send on, a hook's edit, an adapter's
translation, a decoder) is a 500 `internal_error`: not retried, not fallen back from, and it
never feeds `allowed_fails` or a cooldown.  Only what the upstream did (here: a reply that is
not JSON) stays the upstream's fault.  Every test runs with `allowed_fails = 1`, so a single
miscounted failure would cool the only deployment down and the next call would get a 503.
"""

import orjson
import pytest
from harness import chat, client_and_gateway, make_config, sse_payloads

from gateway_trio.adapters.openai import OpenAIAdapter, OpenAIStreamDecoder
from gateway_trio.deployment import Deployment
from gateway_trio.hooks import CustomLogger
from hostile.hostile_upstream import always, chat_chunk, chat_completion, json_reply, sse_stream

USAGE = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
ROUTER = {"allowed_fails": 1, "num_retries": 2, "retry_backoff_s": 0, "cooldown_s": 60}


def config_for(upstream):
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"}
    return make_config(models=[model], router=ROUTER)


def load_of(gateway):
    (deployment,) = [d for d in gateway.deployments if d.group == "gpt"]
    return gateway.router.loads[deployment.id]


def nested(depth: int) -> bytes:
    """A JSON value `depth` levels deep (680 bytes of it at 300 levels, as in the report)."""
    return b"[" * depth + b"]" * depth


# One body per JSON route, each carrying a field nested 300 deep (the body itself is level 1).
DEEP_BODIES = {
    "/v1/chat/completions": b'{"model":"gpt","messages":[{"role":"user","content":"hi"}],"deep":%s}',
    "/v1/completions": b'{"model":"gpt","prompt":"hi","deep":%s}',
    "/v1/embeddings": b'{"model":"gpt","input":"hi","deep":%s}',
    "/v1/responses": b'{"model":"gpt","input":"hi","deep":%s}',
    "/v1/messages": b'{"model":"gpt","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"deep":%s}',
}


@pytest.mark.parametrize("route", DEEP_BODIES)
async def test_json_nested_deeper_than_we_can_send_is_a_400_and_the_group_still_serves(hostile, route):
    upstream = await hostile(always(json_reply(chat_completion(USAGE))))
    body = DEEP_BODIES[route] % nested(299)
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        refused = [await client.post(route, content=body, headers={"content-type": "application/json"})
                   for _ in range(2)]
        served = await client.post("/v1/chat/completions", json=chat("gpt"))
        load = load_of(gateway)
    for response in refused:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert "deeper than 128 levels" in error["message"]
    if route == "/v1/messages":
        assert refused[0].json()["type"] == "error"  # the Anthropic shape on the Anthropic route
    assert served.status_code == 200, served.text
    assert len(upstream.requests) == 1  # the refused ones never left the gateway
    assert load.cooled_until == 0 and not load.recent_failures


async def test_json_as_deep_as_allowed_is_sent_on(hostile):
    upstream = await hostile(always(json_reply(chat_completion(USAGE))))
    body = DEEP_BODIES["/v1/chat/completions"] % nested(127)  # 128 levels with the body
    async with client_and_gateway(config_for(upstream)) as (client, _):
        response = await client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert upstream.requests[0].json()["deep"] == orjson.loads(nested(127))


class LeavesAnUnencodableBody(CustomLogger):
    """A pre-call hook with a bug: it puts a set (no JSON type) into the body it hands on."""

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        return {**data, "seen": {"by", "a", "hook"}}


async def test_a_body_a_hook_left_unencodable_is_an_internal_error_that_cools_nothing(hostile):
    upstream = await hostile(always(json_reply(chat_completion(USAGE))))
    async with client_and_gateway(config_for(upstream), hooks=[LeavesAnUnencodableBody()]) as (client, gateway):
        answers = [await client.post("/v1/chat/completions", json=chat("gpt")) for _ in range(3)]
        load = load_of(gateway)
    for response in answers:  # never a 503: the deployment was not cooled down by the first
        assert response.status_code == 500, response.text
        assert response.json()["error"]["type"] == "internal_error"
        assert response.headers["x-gateway-attempted-retries"] == "0"
    assert upstream.requests == []
    assert load.cooled_until == 0 and not load.recent_failures and load.inflight == 0


async def test_a_bug_translating_a_reply_is_not_retried_and_cools_nothing(hostile, monkeypatch):
    def broken(self, payload, model):
        raise KeyError("choices")  # as a translation bug would

    upstream = await hostile(always(json_reply(chat_completion(USAGE))))
    monkeypatch.setattr(OpenAIAdapter, "chat_response", broken)
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        first = await client.post("/v1/chat/completions", json=chat("gpt"))
        assert len(upstream.requests) == 1  # num_retries = 2, yet no second attempt
        second = await client.post("/v1/chat/completions", json=chat("gpt"))
        load = load_of(gateway)
    for response in (first, second):
        assert response.status_code == 500, response.text
        body = response.json()["error"]
        assert body["type"] == "internal_error" and "KeyError" in body["message"]
        assert "choices" not in body["message"]  # the exception's own text stays in the log
    assert len(upstream.requests) == 2  # the second call still reached the deployment
    assert load.cooled_until == 0 and not load.recent_failures and load.inflight == 0


async def test_a_decoder_bug_mid_stream_ends_it_with_an_internal_error_and_cools_nothing(hostile, monkeypatch):
    feed_into = OpenAIStreamDecoder.feed_into

    def breaks_on_boom(self, data, out):
        feed_into(self, data, out)
        if any(b"boom" in payload for payload in out):
            raise RuntimeError("decoder bug")

    upstream = await hostile(sse_stream([chat_chunk("hello"), chat_chunk("boom"), chat_chunk(finish="stop"),
                                         chat_chunk(usage=USAGE)]))
    monkeypatch.setattr(OpenAIStreamDecoder, "feed_into", breaks_on_boom)
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        cut = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
        monkeypatch.setattr(OpenAIStreamDecoder, "feed_into", feed_into)
        whole = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
        load = load_of(gateway)
    payloads = sse_payloads(cut.text)
    assert payloads[-1] != "[DONE]"
    assert orjson.loads(payloads[-1])["error"]["type"] == "internal_error"
    assert whole.status_code == 200 and sse_payloads(whole.text)[-1] == "[DONE]"
    assert load.cooled_until == 0 and not load.recent_failures


async def test_a_reply_that_is_not_json_stays_the_upstreams_fault(hostile):
    """The other side of the line: a malformed reply is the upstream's, a 502 that counts."""
    upstream = await hostile(always(json_reply(b"{not json")))
    # Two deployments: a group's only one is cooled down only at volume (router.py).
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1", "info": {"id": i}}
              for i in ("one", "two")]
    config = make_config(models=models, router={**ROUTER, "num_retries": 0})
    async with client_and_gateway(config) as (client, gateway):
        first = await client.post("/v1/chat/completions", json=chat("gpt"))
        second = await client.post("/v1/chat/completions", json=chat("gpt"))
        cooled = await client.post("/v1/chat/completions", json=chat("gpt"))
    assert first.status_code == 502 and first.json()["error"]["type"] == "upstream_error"
    assert second.status_code == 502 and cooled.status_code == 503
    for model in config.models:
        assert gateway.router.loads[Deployment.from_config(model).id].cooled_until > 0


async def test_a_fault_of_ours_before_dispatch_is_an_internal_error_that_frees_its_pick(hostile, monkeypatch):
    def broken(self, call):
        raise RuntimeError("a bug before the dispatch")

    upstream = await hostile(always(json_reply(chat_completion(USAGE))))
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        monkeypatch.setattr(type(gateway.callbacks), "pre_api_call", broken)
        failed = await client.post("/v1/chat/completions", json=chat("gpt"))
        monkeypatch.undo()
        served = await client.post("/v1/chat/completions", json=chat("gpt"))
        load = load_of(gateway)
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "internal_error"
    assert failed.headers["x-gateway-model-group"] == "gpt"  # answered by the pipeline, not a bare 500
    assert served.status_code == 200
    assert load.inflight == 0 and load.cooled_until == 0 and not load.recent_failures


async def test_a_reply_nested_deeper_than_we_can_send_on_is_a_502_not_a_crash(hostile):
    deep = b'{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,' \
           b'"message":{"role":"assistant","content":"hi","deep":%s},"finish_reason":"stop"}]}' % nested(300)
    upstream = await hostile(always(json_reply(deep)))
    config = make_config(models=[{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"}],
                         router={**ROUTER, "num_retries": 0})
    async with client_and_gateway(config) as (client, _):
        response = await client.post("/v1/chat/completions", json=chat("gpt"))
    assert response.status_code == 502, response.text  # the upstream's fault, like any malformed reply
    assert "nested deeper" in response.json()["error"]["message"]
    assert response.headers["x-gateway-model-group"] == "gpt"


async def test_tool_arguments_nested_deeper_than_we_can_send_are_a_400_on_translation(hostile):
    upstream = await hostile(always(json_reply({"id": "m", "type": "message", "role": "assistant",
                                                "content": [{"type": "text", "text": "hi"}],
                                                "stop_reason": "end_turn",
                                                "usage": {"input_tokens": 1, "output_tokens": 1}})))
    model = {"name": "claude", "model": "anthropic/claude-3-5-sonnet", "api_base": upstream.base_url, "api_key": "k"}
    arguments = nested(200).decode()
    body = {"model": "claude", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "ok"},
    ]}
    async with client_and_gateway(make_config(models=[model], router=ROUTER)) as (client, _):
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "json_too_deep"
    assert upstream.requests == []
