"""Guardrails written as LiteLLM hook methods, in the stage alone; and `rejection`, the one rule
for what a hook that stops a call raised (SPEC §6-7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import trio
from call_factory import chat_call

from gateway_trio.errors import BadRequest, Forbidden, GatewayError, GuardrailBlocked, UpstreamTimeout, is_retryable
from gateway_trio.guardrails import CustomGuardrail
from gateway_trio.guardrails.stage import Guardrail, GuardrailStage
from gateway_trio.hooks import CustomLogger
from gateway_trio.hooks.inline import HookSet, rejection


class HTTPException(Exception):
    def __init__(self, status_code: int, detail: Any = None) -> None:
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


class PreOnly(CustomGuardrail):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        return {**data, "messages": [{"role": "user", "content": "rewritten"}]}


class SlowPre(CustomGuardrail):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        await trio.sleep(60)


class Censor(CustomGuardrail):
    """Stream hooks: the iterator raises on `stop`; the per-chunk hook upper-cases."""

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        async for chunk in response:
            if "stop" in (chunk.choices[0].delta.get("content") or ""):
                raise ValueError(f"{self.guardrail_name} stopped it")
            yield chunk

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        delta = response.choices[0].delta
        delta.content = (delta.get("content") or "").upper()
        return response


def hooked(name: str, impl: type[CustomGuardrail], *modes: str, **options: Any) -> Guardrail:
    settings = {"default_on": True, "fail_open": False, "timeout_s": 5.0, "builtin": False, **options}
    return Guardrail(name, impl(guardrail_name=name, event_hook=list(modes)), modes, **settings)


def chunk(text: str) -> bytes:
    return orjson.dumps(
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}
    )


async def batches_of(*pieces: str) -> AsyncIterator[list[bytes]]:
    for piece in pieces:
        yield [chunk(piece)]


# --- rejection: the client's error for a hook's raise ----------------------------------------


def test_rejection_keeps_a_gateway_error_and_an_http_status_else_is_a_400():
    own = GuardrailBlocked("no")
    assert rejection(own) is own
    forbidden = rejection(HTTPException(403, {"error": "policy"}))
    assert isinstance(forbidden, Forbidden) and forbidden.status == 403
    assert orjson.loads(forbidden.message) == {"error": "policy"}
    plain = rejection(RuntimeError("not allowed"))
    assert isinstance(plain, BadRequest) and (plain.status, plain.message) == (400, "not allowed")
    odd = rejection(HTTPException(299, "fine?"))
    assert odd.status == 400 and odd.message == "fine?"
    teapot = rejection(HTTPException(418, "short and stout"))
    assert type(teapot) is GatewayError and teapot.status == 418 and teapot.openai_body()["error"]["code"] == "418"
    assert rejection(ValueError()).message == "ValueError"


# --- which methods run ---------------------------------------------------------------------------


def test_a_hook_method_guardrail_runs_only_in_modes_it_has_a_method_for():
    pre = hooked("pre", PreOnly, "pre_call", "during_call")
    assert pre.runs_in("pre_call") and not pre.runs_in("during_call") and not pre.runs_in("post_call")
    censor = hooked("censor", Censor, "post_call")
    assert censor.runs_in("post_call", stream=True) and not censor.runs_in("post_call")  # no success hook


async def test_a_pre_call_hooks_dict_replaces_the_request_and_the_run_is_recorded():
    stage = GuardrailStage([hooked("pre", PreOnly, "pre_call")])
    call = chat_call("original")
    body = await stage.check_body(call, "pre_call", call.body, response=False)
    assert body["messages"] == [{"role": "user", "content": "rewritten"}]
    assert [(r.name, r.mode, r.status) for r in call.guardrail_runs] == [("pre", "pre_call", "success")]


@pytest.mark.parametrize(("fail_open", "blocks"), [(False, True), (True, False)])
async def test_a_hook_method_that_times_out_fails_closed_unless_fail_open(autojump_clock, fail_open, blocks):
    stage = GuardrailStage([hooked("slow", SlowPre, "pre_call", timeout_s=0.5, fail_open=fail_open)])
    call = chat_call()
    if blocks:
        with pytest.raises(GuardrailBlocked, match="timed out"):
            await stage.check_body(call, "pre_call", call.body, response=False)
    else:
        assert await stage.check_body(call, "pre_call", call.body, response=False) is call.body
    assert [(r.status, r.detail) for r in call.guardrail_runs] == [("failed", "timed out after 0.5 s")]


# --- streams -----------------------------------------------------------------------------------


async def test_stream_hooks_edit_chunks_and_a_raise_stops_the_stream_blamed_on_who_raised():
    inner, outer = hooked("inner", Censor, "post_call"), hooked("outer", Censor, "post_call")
    stage = GuardrailStage([inner, outer])
    call = chat_call(stream=True)
    guard = stage.stream_guard(call)
    assert guard is not None
    out = [p async for batch in guard.filter(batches_of("one ", "two ", "stop", "never")) for p in batch]
    texts = [orjson.loads(p)["choices"][0]["delta"]["content"] for p in out]
    assert texts == ["ONE ", "TWO "]
    assert isinstance(guard.error, GuardrailBlocked) and "inner stopped it" in guard.error.message
    runs = sorted((r.name, r.status) for r in call.guardrail_runs)
    assert runs == [("inner", "blocked"), ("outer", "success")]  # outer only passed inner's verdict on


# --- the plain callbacks' moderation hooks ------------------------------------------------------


class Hanging(CustomLogger):
    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        await trio.sleep(60)


class Rejecting(CustomLogger):
    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        raise UpstreamTimeout("an odd thing to raise")


async def test_a_moderation_hook_that_times_out_is_counted_and_the_call_goes_on(autojump_clock):
    hooks = HookSet([Hanging()], timeout_s=1.0)
    stage = GuardrailStage([])
    stage.attach(hooks)
    call = chat_call()
    assert stage.checks_during(call)
    await stage.check_during(call)
    assert hooks.failures["Hanging.async_moderation_hook"] == 1
    assert not stage.checks_during(call)  # once per call: a retry does not moderate again


async def test_moderation_hooks_run_at_once_and_the_first_raise_is_the_verdict(autojump_clock):
    hooks = HookSet([Hanging(), Rejecting()], timeout_s=30.0)
    assert [type(h) for h in hooks.moderators] == [Hanging, Rejecting]
    stage = GuardrailStage([])
    stage.attach(hooks)
    started = trio.current_time()
    with pytest.raises(GatewayError) as rejected:
        await stage.check_during(chat_call())
    assert trio.current_time() - started < 1  # not after the hanging one: they ran together
    # Its status and message, but never retried nor counted against the deployment.
    assert (rejected.value.status, rejected.value.message) == (504, "an odd thing to raise")
    assert not is_retryable(rejected.value)
    assert not hooks.failures  # the hanging one was cancelled by the verdict, not timed out


class SlowBlocker(CustomGuardrail):
    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        await trio.sleep(2)
        raise ValueError("too late")


async def test_a_during_guardrail_cut_off_by_anothers_verdict_is_recorded_as_cancelled(autojump_clock):
    stage = GuardrailStage([hooked("slow", SlowBlocker, "during_call")])
    stage.attach(HookSet([Rejecting()]))
    call = chat_call()
    with pytest.raises(GatewayError, match="an odd thing"):
        await stage.check_during(call)
    assert [(r.name, r.status, r.detail) for r in call.guardrail_runs] == [
        ("slow", "failed", "cancelled before its verdict")
    ]


class OldStyle(CustomLogger):
    """LiteLLM's older documented form: `async_moderation_hook(self, data)`."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    async def async_moderation_hook(self, data):
        self.seen.append(data)


async def test_an_old_style_moderation_hook_gets_only_data_a_copy_of_the_request():
    hook = OldStyle()
    stage = GuardrailStage([])
    stage.attach(HookSet([hook]))
    call = chat_call("check me")
    await stage.check_during(call)
    assert hook.seen == [call.body] and hook.seen[0] is not call.body
