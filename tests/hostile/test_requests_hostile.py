"""Hostile requests and replies at the edges of a call: what a client puts in `model` or a form,
what an upstream puts in a 200 or echoes back in an error.  Each is refused or reported cleanly,
never a 500, a path outside the deployment, an invented header or a leaked key."""

import orjson
import pytest
from harness import chat, client_and_gateway, eventually, make_config
from hook_classes import Recorder

from gateway_trio.hooks import CustomLogger
from hostile.hostile_upstream import LAST_CHUNK, always, chat_completion, chunk, head, json_reply, sse_event

MASTER = "sk-master-hostile-requests-0123"
AUTH = {"authorization": f"Bearer {MASTER}"}
# Matches none of the key-shaped patterns (no sk- prefix, under 32 characters, no ***, no
# "Bearer"): only redaction by value can keep it out.
PLAIN_KEY = "vllm-local-token-7"
HEADER_SECRET = "tenant-secret-42x"
FILE = {"file": ("clip.wav", b"RIFF" + b"\0" * 64, "audio/wav")}


def openai_model(upstream, name="gpt", **extra):
    return {"name": name, "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1", **extra}


def config_for(*models, **sections):
    return make_config(models=list(models), server={"master_key": MASTER}, router={"num_retries": 0}, **sections)


async def records(client, gateway, count):
    await eventually(lambda: gateway.spend._accepted >= count)
    await gateway.spend.flush()
    return (await client.get("/spend/logs", headers=AUTH)).json()


# --- model names ------------------------------------------------------------------------------

CONTROL_NAMES = ["gpt\n", "\x00", "gpt\r\nx-injected: 1", "gpt\x7f", "openai/gpt\n", "openai/\x00", "openai/a\x85b"]


@pytest.mark.parametrize("name", CONTROL_NAMES)
async def test_control_characters_in_model_are_a_400_naming_model(hostile, name):
    upstream = await hostile(always(json_reply(chat_completion())))
    wildcard = {"name": "openai/*", "model": "openai/*", "api_base": f"{upstream.base_url}/v1"}
    async with client_and_gateway(config_for(openai_model(upstream), wildcard)) as (client, gateway):
        answers = [
            await client.post("/v1/chat/completions", json=chat(name), headers=AUTH),
            await client.post("/v1/embeddings", json={"model": name, "input": "x"}, headers=AUTH),
            await client.post("/v1/messages", json={"model": name, "max_tokens": 8, "messages": [
                {"role": "user", "content": "hi"}]}, headers=AUTH),
            await client.post("/v1/audio/transcriptions", data={"model": name}, files=FILE, headers=AUTH),
        ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        body = answer.json()
        error = body["error"]
        assert (error.get("param") == "model") or body.get("type") == "error", body
        assert "model" in error["message"]
        assert "x-injected" not in answer.headers and "x-gateway-model-group" not in answer.headers
    assert upstream.requests == []


async def test_an_unknown_model_is_never_echoed_into_a_header(hostile):
    upstream = await hostile(always(json_reply(chat_completion())))
    async with client_and_gateway(config_for(openai_model(upstream))) as (client, gateway):
        unknown = await client.post("/v1/chat/completions", json=chat("no-such-model"), headers=AUTH)
        streamed = await client.post("/v1/chat/completions", json=chat("evil value; x=1", stream=True), headers=AUTH)
        known = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
        logged = await records(client, gateway, 3)
    for answer in (unknown, streamed):
        assert answer.status_code == 404
        assert "x-gateway-model-group" not in answer.headers
        assert not any("no-such-model" in v or "evil value" in v for v in answer.headers.values())
        assert answer.headers["x-gateway-call-id"]  # what is known is still there
    assert known.headers["x-gateway-model-group"] == "gpt"
    by_call = {r["call_id"]: r for r in logged}
    assert by_call[unknown.headers["x-gateway-call-id"]]["model_group"] is None
    assert by_call[known.headers["x-gateway-call-id"]]["model_group"] == "gpt"


class EchoingHeaders(CustomLogger):
    """A headers hook that copies a body field into a header, as hooks do with user ids."""

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None):
        return {"x-end-user": str(data.get("user")), "x-fine": "yes", "bad name": "x"}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_header_a_hook_fills_with_client_control_characters_is_dropped_not_a_500(hostile, stream):
    upstream = await hostile(always(json_reply(chat_completion())))
    async with client_and_gateway(config_for(openai_model(upstream)), hooks=[EchoingHeaders()]) as (client, _):
        body = chat("gpt", user="alice\r\nset-cookie: session=stolen", stream=stream)
        if stream:
            upstream.script = always(head(200, {"content-type": "text/event-stream"}, chunked=True)
                                     + chunk(b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n')
                                     + chunk(b"data: [DONE]\n\n") + LAST_CHUNK)
        answer = await client.post("/v1/chat/completions", json=body, headers=AUTH)
        plain = await client.post("/v1/chat/completions", json=chat("gpt", user="bob"), headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert "set-cookie" not in answer.headers and "x-end-user" not in answer.headers
    assert answer.headers["x-fine"] == "yes" and answer.headers["x-gateway-model-group"] == "gpt"
    assert plain.headers["x-end-user"] == "bob"


# --- malformed 200s ---------------------------------------------------------------------------

MALFORMED_CHAT = [
    chat_completion(choices=None),
    chat_completion(choices="hello"),
    chat_completion(choices=[None]),
    {k: v for k, v in chat_completion().items() if k != "choices"},
]


@pytest.mark.parametrize("reply", MALFORMED_CHAT, ids=["null", "string", "null-choice", "missing"])
@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions"])
async def test_a_200_without_a_choices_list_is_a_502(hostile, reply, route):
    upstream = await hostile(always(json_reply(reply)))
    body = chat("gpt") if route.endswith("chat/completions") else {"model": "gpt", "prompt": "hi"}
    async with client_and_gateway(config_for(openai_model(upstream))) as (client, gateway):
        answer = await client.post(route, json=body, headers=AUTH)
        logged = await records(client, gateway, 1)
    assert answer.status_code == 502, answer.text
    assert "malformed upstream reply" in answer.json()["error"]["message"]
    assert logged[0]["status"] == "failure"


ANTHROPIC_NO_CONTENT = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": None,
                        "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}}
RESPONSE_NO_OUTPUT = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt", "output": None,
                      "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}
OTHER_FORMATS = [
    ("/v1/embeddings", {"input": "x"}, "openai", {"object": "list", "data": None, "model": "e"}),
    ("/v1/moderations", {"input": "x"}, "openai", {"id": "modr", "model": "m", "results": None}),
    ("/v1/messages", {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}, "anthropic", ANTHROPIC_NO_CONTENT),
    ("/v1/responses", {"input": "hi"}, "openai", RESPONSE_NO_OUTPUT),
]


@pytest.mark.parametrize(("route", "extra", "provider", "reply"), OTHER_FORMATS, ids=[c[0] for c in OTHER_FORMATS])
async def test_every_format_s_key_field_null_is_a_502(hostile, route, extra, provider, reply):
    upstream = await hostile(always(json_reply(reply)))
    base = f"{upstream.base_url}/v1" if provider == "openai" else upstream.base_url
    model = {"name": "gpt", "model": f"{provider}/upstream-model", "api_base": base}
    async with client_and_gateway(config_for(model)) as (client, _):
        answer = await client.post(route, json={"model": "gpt", **extra}, headers=AUTH)
    assert answer.status_code == 502, answer.text
    assert "malformed upstream reply" in answer.text


# --- upstream URLs ----------------------------------------------------------------------------

ESCAPES = ["..", ".", "%2e%2e", "a/../../x", "a?api-version=1", "a#x", "a\\..\\b"]


@pytest.mark.parametrize("name", ESCAPES)
async def test_an_azure_wildcard_cannot_leave_its_deployments_path(hostile, name):
    upstream = await hostile(always(json_reply(chat_completion())))
    azure = {"name": "azure/*", "model": "azure/*", "api_base": upstream.base_url, "api_key": "azure-key-0123"}
    async with client_and_gateway(config_for(azure)) as (client, gateway):
        answers = [
            await client.post("/v1/chat/completions", json=chat(f"azure/{name}"), headers=AUTH),
            await client.post("/v1/audio/transcriptions", data={"model": f"azure/{name}"}, files=FILE, headers=AUTH),
        ]
        fine = await client.post("/v1/chat/completions", json=chat("azure/gpt-4o.mini_2"), headers=AUTH)
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == "model"
    assert fine.status_code == 200, fine.text
    assert [r.target.split("?")[0] for r in upstream.requests] == ["/openai/deployments/gpt-4o.mini_2/chat/completions"]
    # Our own refusal: the deployment stays healthy.
    assert gateway.router.loads[gateway.deployments[0].id].recent_failures == []


# --- client fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["api_base", "api_key", "base_url", "extra_headers"])
async def test_multipart_fields_cannot_redirect_the_upstream(hostile, field):
    upstream = await hostile(always(json_reply({"text": "heard"})))
    async with client_and_gateway(config_for(openai_model(upstream))) as (client, _):
        answer = await client.post("/v1/audio/transcriptions", data={"model": "gpt", field: "http://127.0.0.1:9/v1"},
                                   files=FILE, headers=AUTH)
        plain = await client.post("/v1/audio/transcriptions", data={"model": "gpt"}, files=FILE, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == field
    assert plain.status_code == 200
    assert len(upstream.requests) == 1 and field.encode() not in upstream.requests[0].body


# --- keys echoed back -------------------------------------------------------------------------


def echo_credentials(stream: bool):
    """An upstream that quotes the key it was sent (without its `Bearer`) and a secret header."""

    async def script(request, socket):
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        message = (f"Incorrect API key provided: {token}. Header x-tenant-key was {request.headers.get('x-tenant-key')}; "
                   f"quoted: '{token}'")
        if stream:
            event = orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}})
            await socket.send_all(head(200, {"content-type": "text/event-stream"}, chunked=True)
                                  + chunk(sse_event(event)) + LAST_CHUNK)
        else:
            await socket.send_all(json_reply({"error": {"message": message, "code": "invalid_api_key"}}, status=401))

    return script


@pytest.mark.parametrize("stream", [False, True])
async def test_a_provider_key_echoed_in_an_upstream_error_is_redacted_by_value(hostile, stream):
    upstream = await hostile(echo_credentials(stream))
    recorder = Recorder()
    model = openai_model(upstream, api_key=PLAIN_KEY, headers={"x-tenant-key": HEADER_SECRET})
    async with client_and_gateway(config_for(model), hooks=[recorder]) as (client, gateway):
        answer = await client.post("/v1/chat/completions", json=chat("gpt", stream=stream), headers=AUTH)
        logged = await records(client, gateway, 1)
        await eventually(lambda: recorder.named("async_log_failure_event"))
    assert upstream.requests[0].headers["authorization"] == f"Bearer {PLAIN_KEY}"  # it was really sent
    kwargs = recorder.named("async_log_failure_event")[0][0]
    seen = [answer.text, str(logged), str(kwargs.get("exception")), str(kwargs["standard_logging_object"])]
    for text in seen:
        assert PLAIN_KEY not in text and HEADER_SECRET not in text
    assert "Incorrect API key provided" in answer.text  # the rest of the message survives
    assert "<redacted>" in answer.text
