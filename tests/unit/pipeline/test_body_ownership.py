"""A body handed to another task is never written into afterwards: masking makes a new one."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import orjson
import trio
from guardrail_classes import MaskingDuringCall
from harness import make_config

from gateway_trio.apis.chat import CHAT
from gateway_trio.apis.slots import read
from gateway_trio.calls import Call
from gateway_trio.gateway import Gateway
from gateway_trio.guardrails.stage import with_texts

REPLY = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


async def test_a_during_call_guardrail_does_not_change_the_body_the_upstream_holds() -> None:
    """The first attempt fails after the guardrail masked, concurrently; the retry must send the
    body as the client sent it, and the body the first attempt's task held must be unchanged."""
    masked = MaskingDuringCall.masked = trio.Event()  # set once it has masked (while the upstream call runs)
    received: list[dict[str, Any]] = []

    async def upstream(request: httpx.Request) -> httpx.Response:
        received.append(orjson.loads(request.content))
        if len(received) == 1:
            with trio.fail_after(10):
                await masked.wait()  # the guardrail runs while this attempt is under way
            return httpx.Response(500, json={"error": {"message": "try again"}})
        return httpx.Response(200, json=REPLY)

    config = make_config(
        models=[{"name": "gpt", "model": "openai/gpt-4o", "api_base": "http://upstream.test/v1", "api_key": "sk-x"}],
        guardrails=[{"name": "mask", "guardrail": "guardrail_classes:MaskingDuringCall", "mode": "during_call",
                     "default_on": True}],
        router={"num_retries": 1, "retry_backoff_s": 0},
    )
    ids = [d.id for d in Gateway(config).deployments]
    gateway = Gateway(config, transports={i: httpx.MockTransport(upstream) for i in ids})
    held: list[tuple[Any, Any]] = []  # (the body object handed over, a copy of it at hand-off)
    for provider in gateway.deployment_actors.values():
        dispatch = provider.dispatch

        async def recording(message: Any, dispatch: Any = dispatch) -> None:
            held.append((message.body, copy.deepcopy(message.body)))
            await dispatch(message)

        provider.dispatch = recording  # type: ignore[method-assign]
    sent = {"model": "gpt", "messages": [{"role": "user", "content": "my SECRET plan"}]}
    call = Call(CHAT, "gpt", copy.deepcopy(sent))
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run)
        answer = await gateway.pipeline.serve(call)
        nursery.cancel_scope.cancel()
    assert answer.status == 200 and masked.is_set()
    assert len(received) == 2
    assert received[1]["messages"] == sent["messages"]  # the retry sent what the client sent
    for body, at_hand_off in held:
        assert body == at_hand_off  # nobody wrote into a body another task held
    assert call.body == sent


def test_masking_copies_only_what_changes() -> None:
    body = {"model": "m", "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "a SECRET"}]}
    before = copy.deepcopy(body)
    slots = CHAT.request_slots(body)
    new = with_texts(body, slots, ["be nice", "a [MASKED]"])
    assert body == before  # the original is untouched
    assert new["messages"][1]["content"] == "a [MASKED]"
    assert new is not body and new["messages"] is not body["messages"]
    assert new["messages"][0] is body["messages"][0]  # unchanged parts are shared, not copied
    assert with_texts(body, slots, read(slots)) is body  # nothing masked: no copy at all


def test_masking_a_list_of_text_parts_copies_the_list() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "x SECRET"}, {"type": "image_url"}]}]}
    before = copy.deepcopy(body)
    new = with_texts(body, CHAT.request_slots(body), ["x [MASKED]"])
    assert body == before
    parts = new["messages"][0]["content"]
    assert parts[0]["text"] == "x [MASKED]" and parts[1] is body["messages"][0]["content"][1]
