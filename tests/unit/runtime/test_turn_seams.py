"""Turns are given back and taken again through one context manager, `off_turn`, at the seams."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from harness import make_config

import gateway_trio
from gateway_trio.apis.chat import CHAT
from gateway_trio.calls import Call
from gateway_trio.gateway import Gateway
from gateway_trio.runtime import turns
from gateway_trio.runtime.turns import Turn, Turnstile, off_turn

PACKAGE = Path(gateway_trio.__file__).parent


async def holding_a_turn(slots: int = 1) -> tuple[Turnstile, Turn]:
    turnstile = Turnstile(slots=slots)
    turn = Turn(turnstile)
    turns._current.set(turn)  # this test's task is the request
    await turn.take(first=True)
    return turnstile, turn


async def test_a_region_gives_the_turn_back_and_takes_it_again(autojump_clock: Any) -> None:
    turnstile, turn = await holding_a_turn()
    other = Turn(turnstile)
    async with off_turn():
        assert not turn.held
        await other.take()  # the slot is free for another call while this one waits
        assert other.held

        async def later() -> None:
            await trio.sleep(1)
            other.give_back()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
    assert turn.held  # taken again on the way out (once the other gave it back)


async def test_nested_regions_take_the_turn_again_only_at_the_outermost(autojump_clock: Any) -> None:
    _, turn = await holding_a_turn()
    async with off_turn():
        async with off_turn():  # a guardrail run while a stream waits for its next batch
            pass
        assert not turn.held  # still waiting in the outer region
    assert turn.held


async def test_a_region_left_by_an_error_does_not_take_the_turn_again(autojump_clock: Any) -> None:
    _, turn = await holding_a_turn()
    with pytest.raises(RuntimeError):
        async with off_turn():
            raise RuntimeError("the wait failed")
    assert not turn.held and turn.away == 0


async def test_outside_a_request_a_region_does_nothing(autojump_clock: Any) -> None:
    turns._current.set(None)
    async with off_turn():
        pass


async def test_the_dispatch_seam_waits_for_the_upstream_off_the_turn() -> None:
    seen: list[bool] = []
    turn_box: list[Turn] = []

    async def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(turn_box[0].held)
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]})

    hooked: list[bool] = []

    class Hook:
        async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: Any, call_type: Any) -> Any:
            hooked.append(turn_box[0].held)
            return data

    from gateway_trio.hooks import CustomLogger

    class PreCall(Hook, CustomLogger):
        pass

    config = make_config(models=[{"name": "gpt", "model": "openai/gpt-4o", "api_base": "http://up.test/v1"}])
    ids = [d.id for d in Gateway(config).deployments]
    gateway = Gateway(config, transports={i: httpx.MockTransport(upstream) for i in ids}, hooks=[PreCall()])
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run)
        _, turn = await holding_a_turn(slots=8)
        turn_box.append(turn)
        answer = await gateway.pipeline.serve(Call(CHAT, "gpt", {"model": "gpt", "messages": []}))
        assert answer.status == 200
        assert turn.held  # taken again to turn the answer into the response
        nursery.cancel_scope.cancel()
    assert hooked == [False] and seen == [False]  # user code and the upstream wait: off the turn


def test_no_module_gives_back_or_takes_turns_but_through_the_context_manager() -> None:
    bare = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "runtime" / "turns.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr in ("give_back", "take_again", "take")
                    and isinstance(node.value, ast.Name) and node.value.id in ("turns", "turn")):
                bare.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert bare == []
