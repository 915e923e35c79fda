"""The guardrail stage alone, without a gateway or a socket: which guardrails run on a call and
in what order, what a verdict, an error or a timeout does, what each run records, and how a
stream's post-call guardrails hold, mask or stop its chunks in each stream mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import trio
from call_factory import chat_call

from gateway_trio.calls import Call
from gateway_trio.config import ConfigError, GuardrailConfig, ModelConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest, GuardrailBlocked
from gateway_trio.guardrails import CustomGuardrail
from gateway_trio.guardrails.base import blocked
from gateway_trio.guardrails.stage import Guardrail, GuardrailStage, configure


class Word(CustomGuardrail):
    """Blocks texts holding `block`, masks `mask` as ***, and keeps every text it was shown."""

    def __init__(self, block: str = "forbidden", mask: str = "secret", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.block, self.mask, self.seen = block, mask, []

    async def apply_guardrail(self, inputs, request_data, input_type):
        self.seen.append(list(inputs["texts"]))
        if any(self.block in text for text in inputs["texts"]):
            raise blocked(self.guardrail_name, "a forbidden word")
        return {"texts": [text.replace(self.mask, "***") for text in inputs["texts"]]}


class Broken(CustomGuardrail):
    async def apply_guardrail(self, inputs, request_data, input_type):
        raise RuntimeError("a bug in the guardrail")


class Slow(CustomGuardrail):
    async def apply_guardrail(self, inputs, request_data, input_type):
        await trio.sleep(60)
        return inputs


class Unwilling(CustomGuardrail):
    def should_run_guardrail(self, data, event_type):
        return False


def guardrail(name: str, impl: type[CustomGuardrail] = Word, *modes: str, **options: Any) -> Guardrail:
    """A configured guardrail as `configure` makes one, its implementation told its modes."""
    modes = modes or ("pre_call",)
    settings = {"default_on": False, "fail_open": False, "timeout_s": 5.0, "builtin": False, **options}
    return Guardrail(name, impl(guardrail_name=name, event_hook=list(modes)), modes, **settings)


def chunk(text: str) -> bytes:
    choice = {"index": 0, "delta": {"content": text}}
    return orjson.dumps({"id": "c", "object": "chat.completion.chunk", "choices": [choice]})


async def batches_of(*pieces: str, per_batch: int = 1) -> AsyncIterator[list[bytes]]:
    payloads = [chunk(piece) for piece in pieces]
    for start in range(0, len(payloads), per_batch):
        yield payloads[start:start + per_batch]


async def streamed(stage: GuardrailStage, call: Call, *pieces: str, per_batch: int = 1) -> tuple[list[str], Any]:
    guard = stage.stream_guard(call)
    assert guard is not None
    out = [payload async for batch in guard.filter(batches_of(*pieces, per_batch=per_batch)) for payload in batch]
    return ["".join(orjson.loads(p)["choices"][0]["delta"].get("content") or "" for p in out)], guard.error


# --- which run -----------------------------------------------------------------------------


async def test_default_on_first_then_the_request_s_then_the_deployment_s_each_once():
    stage = GuardrailStage([guardrail(n, default_on=n in ("d1", "d2")) for n in ("d1", "d2", "r", "dep", "idle")])
    model = ModelConfig(name="m", model="openai/m", api_base="http://x", guardrails=["dep", "r"])
    call = chat_call(requested_guardrails=["r", "d1"])
    assert stage.active_names(call) == ["d1", "d2", "r"]
    call.deployment = Deployment.from_config(model)  # routed: the deployment's guardrails join, after the others
    assert stage.active_names(call) == ["d1", "d2", "r", "dep"]


async def test_a_guardrail_runs_only_in_its_modes():
    stage = GuardrailStage([guardrail("pre", Word, "pre_call", default_on=True),
                            guardrail("post", Word, "post_call", default_on=True)])
    assert [g.name for g in stage.active(chat_call(), "post_call")] == ["post"]


async def test_an_unknown_requested_guardrail_is_a_bad_request_naming_it():
    stage = GuardrailStage([guardrail("known")])
    with pytest.raises(BadRequest, match="unknown guardrail\\(s\\): nope"):
        stage.check_requested(chat_call(requested_guardrails=["known", "nope"]))


def test_stream_modes_are_read_from_params_and_checked():
    config = GuardrailConfig(name="w", guardrail="regex", mode="post_call",
                             params={"patterns": ["x"], "stream_mode": "sample", "sample_every": 3})
    configured = configure(config)
    assert (configured.stream_mode, configured.sample_every, configured.builtin) == ("sample", 3, True)
    with pytest.raises(ConfigError, match="stream_mode must be one of end, buffer, sample"):
        configure(config.model_copy(update={"params": {"patterns": ["x"], "stream_mode": "whenever"}}))


# --- one run -------------------------------------------------------------------------------


async def test_a_request_is_masked_in_a_new_body_and_the_run_recorded():
    stage = GuardrailStage([guardrail("words", default_on=True)])
    call = chat_call("my secret plan")
    masked = await stage.check_body(call, "pre_call", call.body, response=False)
    assert masked["messages"][0]["content"] == "my *** plan"
    assert call.body["messages"][0]["content"] == "my secret plan"  # the body handed in is not written into
    [run] = call.guardrail_runs
    assert (run.name, run.mode, run.status, run.detail) == ("words", "pre_call", "success", None)


async def test_a_block_is_raised_and_recorded_with_its_reason():
    stage = GuardrailStage([guardrail("words", default_on=True)])
    call = chat_call("a forbidden thing")
    with pytest.raises(GuardrailBlocked, match="blocked by guardrail 'words'"):
        await stage.check_body(call, "pre_call", call.body, response=False)
    reason = "blocked by guardrail 'words': a forbidden word"
    assert [(r.status, r.detail) for r in call.guardrail_runs] == [("blocked", reason)]


async def test_a_retried_attempt_does_not_check_the_same_request_twice():
    stage = GuardrailStage([guardrail("words", default_on=True)])
    words = stage.by_name["words"].impl
    call = chat_call("hello")
    for _attempt in range(2):
        await stage.check_body(call, "pre_call", call.body, response=False)
    assert words.seen == [["hello"]] and len(call.guardrail_runs) == 1


@pytest.mark.parametrize(("fail_open", "outcome"), [(False, "blocks"), (True, "passes")])
async def test_a_broken_guardrail_blocks_unless_fail_open(fail_open, outcome):
    stage = GuardrailStage([guardrail("broken", Broken, fail_open=fail_open)])
    call = chat_call()
    run = stage.run(call, stage.by_name["broken"], "pre_call", ["hi"], call.body, "request")
    if outcome == "blocks":
        with pytest.raises(GuardrailBlocked, match="the guardrail failed \\(fail closed\\)"):
            await run
    else:
        assert await run == ["hi"]
    assert [(r.status, r.detail) for r in call.guardrail_runs] == [("failed", "RuntimeError: a bug in the guardrail")]


async def test_a_guardrail_past_its_timeout_blocks_and_the_run_lasts_the_timeout(autojump_clock):
    stage = GuardrailStage([guardrail("slow", Slow, timeout_s=2.0)])
    call = chat_call()
    with pytest.raises(GuardrailBlocked, match="timed out \\(fail closed\\)"):
        await stage.run(call, stage.by_name["slow"], "pre_call", ["hi"], call.body, "request")
    [run] = call.guardrail_runs
    assert (run.status, run.detail, run.duration_ms) == ("failed", "timed out after 2 s", pytest.approx(2000.0))


async def test_a_guardrail_that_declines_is_recorded_as_not_run_and_changes_nothing():
    stage = GuardrailStage([guardrail("no", Unwilling)])
    call = chat_call()
    assert await stage.run(call, stage.by_name["no"], "pre_call", ["hi"], call.body, "request") == ["hi"]
    assert [(r.status, r.duration_ms) for r in call.guardrail_runs] == [("not_run", 0.0)]


# --- streams -------------------------------------------------------------------------------


async def test_without_post_call_guardrails_a_stream_is_not_guarded():
    assert GuardrailStage([guardrail("pre")]).stream_guard(chat_call(stream=True)) is None


async def test_end_mode_passes_chunks_at_once_and_checks_the_whole_text_at_the_end():
    stage = GuardrailStage([guardrail("end", Word, "post_call", default_on=True)])
    words = stage.by_name["end"].impl
    text, error = await streamed(stage, chat_call(stream=True), "for", "bid", "den")
    assert text == ["forbidden"]  # already sent: `end` can only end the stream with an error
    assert words.seen == [["forbidden"]] and isinstance(error, GuardrailBlocked)


async def test_buffer_mode_never_lets_blocked_text_out():
    stage = GuardrailStage([guardrail("buf", Word, "post_call", default_on=True, stream_mode="buffer",
                                      buffer_max_chars=6)])
    text, error = await streamed(stage, chat_call(stream=True), "safe ", "words ", "for", "bidden")
    assert text == ["safe words "] and isinstance(error, GuardrailBlocked)


async def test_buffer_mode_masks_held_chunks_across_their_boundaries():
    stage = GuardrailStage([guardrail("buf", Word, "post_call", default_on=True, stream_mode="buffer",
                                      buffer_max_chars=1000)])
    text, error = await streamed(stage, chat_call(stream=True), "the sec", "ret is out")
    assert text == ["the *** is out"] and error is None


async def test_sample_mode_checks_the_text_so_far_every_n_chunks():
    stage = GuardrailStage([guardrail("sample", Word, "post_call", default_on=True, stream_mode="sample",
                                      sample_every=2)])
    words = stage.by_name["sample"].impl
    text, error = await streamed(stage, chat_call(stream=True), "a", "b", "c", "d", "e")
    assert error is None and text == ["abcde"]
    assert words.seen == [["ab"], ["abcd"], ["abcde"]]  # every second chunk, then the whole at the end
