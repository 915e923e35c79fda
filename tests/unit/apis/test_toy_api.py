"""A new client API is one `Api` object: this test adds one, `/v1/echo`, and nothing else.

Its body is `{"model", "text"}`; it is served by the adapters' chat methods (its `upstream_body`
turns the text into a chat request); its answers are chat's.  With no change outside this
file, hooks, guardrails (request and answer, streamed or not), the gateway's headers and the
spend record all work for it, under its own call type.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from harness import client_and_gateway, eventually, make_config, sse_payloads

from gateway_trio import apis
from gateway_trio.apis.base import Api
from gateway_trio.apis.chat import ChatAssembler
from gateway_trio.apis.checks import require_field
from gateway_trio.apis.slots import Slot
from gateway_trio.calls import Call
from gateway_trio.guardrails import CustomGuardrail
from gateway_trio.hooks import CustomLogger

MASTER = "sk-master-toy-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}


class EchoApi(Api):
    def parse(self, content: Any) -> Call:
        require_field(content, "text", (str,), "a string")
        return super().parse(content)

    def upstream_body(self, call: Call) -> Any:
        return {"messages": [{"role": "user", "content": call.body["text"]}],
                **({"stream": True} if call.stream else {})}

    def request_slots(self, body: Any) -> list[Slot]:
        return [(body, "text")] if isinstance(body.get("text"), str) else []

    def response_slots(self, body: Any) -> list[Slot]:
        return [(choice["message"], "content") for choice in body.get("choices") or ()]

    def chunk_slots(self, chunk: Any) -> list[Slot]:
        choices = chunk.get("choices") or ()
        return [(c["delta"], "content") for c in choices if isinstance(c["delta"].get("content"), str)]

    def assembler(self) -> ChatAssembler:
        return ChatAssembler()


ECHO = EchoApi("echo", "echo", ("/v1/echo", "/echo"), adapter_method="chat")


class Masker(CustomGuardrail):
    """Masks `secret` in what the client sends, and notes every text it is shown."""

    seen: list[tuple[str, list[str]]] = []

    async def apply_guardrail(self, inputs, request_data, input_type):
        Masker.seen.append((input_type, list(inputs["texts"])))
        return {"texts": [text.replace("secret", "[masked]") for text in inputs["texts"]]}


class Watcher(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.pre_call: list[str] = []
        self.logged: list[tuple[dict[str, Any], Any]] = []

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        self.pre_call.append(call_type)
        return None

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None,
                                                    call_info=None):
        return {"x-toy-hook": "seen"}

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.logged.append((kwargs, response_obj))


@pytest.fixture
def echo_api(monkeypatch):
    monkeypatch.setattr(apis, "APIS", [*apis.APIS, ECHO])
    Masker.seen = []


def config_for(upstream):
    models = [{"name": "m", "model": "openai/toy-model", "api_base": f"{upstream.base_url}/v1", "guardrails": ["mask"]}]
    guardrails = [{"name": "mask", "guardrail": f"{__name__}:Masker", "mode": ["pre_call", "post_call"]}]
    return make_config(models=models, guardrails=guardrails, server={"master_key": MASTER}, router={"num_retries": 0})


def answer_text(response, stream: bool) -> str:
    if not stream:
        return response.json()["choices"][0]["message"]["content"]
    chunks = [orjson.loads(p) for p in sse_payloads(response.text) if p != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


@pytest.mark.parametrize("stream", [False, True])
async def test_a_toy_api_gets_hooks_guardrails_headers_and_spend(upstream, echo_api, stream):
    watcher = Watcher()
    async with client_and_gateway(config_for(upstream), hooks=[watcher]) as (client, gateway):
        response = await client.post("/v1/echo", json={"model": "m", "text": "my secret word", "stream": stream},
                                     headers=AUTH)
        assert response.status_code == 200, response.text
        refused = await client.post("/echo", json={"model": "m"}, headers=AUTH)
        await eventually(lambda: watcher.logged)
        await eventually(lambda: gateway.spend._accepted >= 1)
        await gateway.spend.flush()
        records = (await client.get("/spend/logs", headers=AUTH)).json()

    # The request went upstream as the API's upstream_body made it, masked by the guardrail.
    sent = upstream.received[0].json
    assert sent["messages"] == [{"role": "user", "content": "my [masked] word"}]
    assert answer_text(response, stream) and "secret" not in answer_text(response, stream)
    assert ("request", ["my secret word"]) in Masker.seen
    assert any(kind == "response" and "[masked]" in "".join(texts) for kind, texts in Masker.seen)
    # Headers: the gateway's, the guardrails applied, and the hook's own.
    assert response.headers["x-gateway-model-group"] == "m"
    assert response.headers["x-gateway-applied-guardrails"] == "mask"
    assert response.headers["x-toy-hook"] == "seen"
    # Hooks and spend know it under its own call type.
    assert watcher.pre_call == ["echo"]
    kwargs, response_obj = watcher.logged[0]
    assert kwargs["call_type"] == "echo" and kwargs["standard_logging_object"]["stream"] is stream
    assert response_obj.choices[0].message.content == answer_text(response, stream)
    # Its own checks refuse a body without `text`, in its wire's error shape.
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "text"
    (record,) = [r for r in records if r["call_id"] == response.headers["x-gateway-call-id"]]
    assert record["call_type"] == "echo" and record["status"] == "success" and record["stream"] is stream
