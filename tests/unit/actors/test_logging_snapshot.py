"""Logging events carry a frozen snapshot of the call: what hooks see is the call at its end."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import trio

from gateway_trio.actors.callbacks import CallbackActor
from gateway_trio.apis.chat import CHAT
from gateway_trio.calls import Call
from gateway_trio.hooks import CustomLogger
from gateway_trio.hooks.inline import HookSet
from gateway_trio.spend.accounting import spend_record

REPLY = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}


class Recorder(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.pre: list[dict[str, Any]] = []
        self.success: list[dict[str, Any]] = []

    async def async_log_pre_api_call(self, model: str, messages: Any, kwargs: dict[str, Any]) -> None:
        self.pre.append(kwargs)

    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.success.append(kwargs)


def a_call() -> Call:
    return Call(CHAT, "gpt", {"model": "gpt", "messages": [{"role": "user", "content": "at the start"}]},
                model_group="gpt", metadata={"step": "finish"}, tags=["first"])


def change_everything(call: Call) -> None:
    """What later code (a retry, another hook) might do to the live call."""
    call.model_group = "another-group"
    call.body = {"model": "gpt", "messages": [{"role": "user", "content": "changed later"}]}
    call.metadata["step"] = "later"
    call.tags.append("later")
    call.requested_guardrails.append("later")


async def deliver(actor: CallbackActor) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await actor.drain(5)


async def test_a_success_hook_sees_the_call_as_it_was_at_its_end(autojump_clock: Any) -> None:
    recorder = Recorder()
    actor = CallbackActor(HookSet([recorder]))
    call = a_call()
    actor.finished(call, spend_record(call, "success", None), REPLY, None)
    change_everything(call)  # before the actor got to the event
    await deliver(actor)
    [kwargs] = recorder.success
    assert kwargs["model_group"] == "gpt"
    assert kwargs["messages"] == [{"role": "user", "content": "at the start"}]
    metadata = kwargs["litellm_params"]["metadata"]
    assert metadata["step"] == "finish" and metadata["tags"] == ["first"]


async def test_a_pre_api_call_hook_sees_the_call_as_it_was_when_dispatched(autojump_clock: Any) -> None:
    recorder = Recorder()
    actor = CallbackActor(HookSet([recorder]))
    call = a_call()
    actor.pre_api_call(call)
    change_everything(call)
    await deliver(actor)
    [kwargs] = recorder.pre
    assert kwargs["messages"] == [{"role": "user", "content": "at the start"}]
    assert kwargs["litellm_params"]["metadata"]["model_group"] == "gpt"


async def test_a_snapshot_cannot_be_changed() -> None:
    snapshot = a_call().snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.model_group = "other"  # type: ignore[misc]
    assert snapshot.tags == ("first",)
