"""Turns: first stretches first, otherwise in arrival order; taken back after the lease; never held
across a wait."""

from __future__ import annotations

from typing import Any

import trio
from harness import chat, client_and_gateway, make_config

from gateway_trio.runtime import turns
from gateway_trio.frontend.intake import reading_bodies
from gateway_trio.runtime.turns import FIRST_IN_A_ROW, Turn, Turnstile, taking_turns
from gateway_trio.testing import Behavior


async def test_turns_go_in_arrival_order(autojump_clock):
    turnstile = Turnstile(slots=1)
    served: list[int] = []

    async def call(number: int) -> None:
        turn = Turn(turnstile)
        await turn.take()
        served.append(number)
        await trio.sleep(0.1)  # a stretch of work
        turn.give_back()

    async with trio.open_nursery() as nursery:
        for number in range(6):
            nursery.start_soon(call, number)
            await trio.sleep(0.01)  # arrive in this order
    assert served == list(range(6))


async def order_served(waiters: list[tuple[str, bool]]) -> list[str]:
    """Who gets the one slot, when `waiters` (name, first stretch?) queue up behind a holder."""
    turnstile, served = Turnstile(slots=1), []
    holder = Turn(turnstile)
    await holder.take()

    async def call(name: str, first: bool) -> None:
        turn = Turn(turnstile)
        await turn.take(first=first)
        served.append(name)
        await trio.sleep(0.1)
        turn.give_back()

    async with trio.open_nursery() as nursery:
        for name, first in waiters:
            nursery.start_soon(call, name, first)
            await trio.sleep(0.01)
        holder.give_back()
    return served


async def test_a_first_stretch_goes_ahead_of_later_ones(autojump_clock):
    served = await order_served([("later-1", False), ("later-2", False), ("first-1", True), ("first-2", True)])
    assert served == ["first-1", "first-2", "later-1", "later-2"]


async def test_new_calls_cannot_starve_the_later_stretches(autojump_clock):
    firsts = [(f"first-{n}", True) for n in range(1, FIRST_IN_A_ROW + 3)]
    served = await order_served([("later", False), *firsts])
    assert served == [name for name, _ in firsts[:FIRST_IN_A_ROW]] + ["later"] + [name for name, _ in firsts[FIRST_IN_A_ROW:]]


async def test_a_waiter_cancelled_in_the_queue_takes_no_slot_with_it(autojump_clock):
    turnstile = Turnstile(slots=1)
    holder, quitter, next_one = Turn(turnstile), Turn(turnstile), Turn(turnstile)
    await holder.take()
    with trio.move_on_after(0.1):
        await quitter.take(first=True)  # the client left while it waited
    holder.give_back()
    with trio.fail_after(0.1):
        await next_one.take()  # the slot is free again, not lost to the one that left
    assert next_one.held and not quitter.held


async def test_a_turn_held_past_its_lease_is_taken_back(autojump_clock):
    turnstile = Turnstile(slots=1, lease_s=1.0)
    stuck, next_one = Turn(turnstile), Turn(turnstile)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(turnstile.run)
        await stuck.take()
        began = trio.current_time()
        await next_one.take()
        assert trio.current_time() - began >= 1.0
        assert turnstile.overruns == 1 and not stuck.held
        stuck.give_back()  # late: must not free a second slot
        third = Turn(turnstile)
        with trio.move_on_after(0.5) as waiting:
            await third.take()
        assert waiting.cancelled_caught  # next_one still holds the only slot
        next_one.give_back()
        await third.take()
        nursery.cancel_scope.cancel()


class Recorder:
    """An ASGI app that notes whether its request held a turn, and what body it read."""

    def __init__(self) -> None:
        self.held_at_start: bool | None = None
        self.held_after_body_sent: bool | None = None
        self.body = b""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.held_at_start = turns._current.get().held
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        self.held_after_body_sent = turns._current.get().held


def body_messages(*parts: bytes) -> Any:
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}
    return receive


async def sent(message: dict[str, Any]) -> None:
    pass


def turned(app: Any, turnstile: Turnstile, max_request_mb: float = 1.0) -> Any:
    """The two middlewares as the app stacks them: the body is read, then the turns begin."""
    return reading_bodies(taking_turns(app, turnstile), max_request_mb=max_request_mb, body_timeout_s=5)


async def test_the_middleware_reads_the_body_before_the_turn_and_gives_it_back_to_write():
    turnstile, app = Turnstile(), Recorder()
    await turned(app, turnstile)({"type": "http", "headers": []}, body_messages(b"ab", b"cd"), sent)
    assert app.body == b"abcd" and app.held_at_start is True and app.held_after_body_sent is False
    assert not turnstile._holders


async def test_a_body_over_the_limit_is_refused_without_a_turn():
    turnstile, app, replies = Turnstile(slots=1), Recorder(), []

    async def record(message: dict[str, Any]) -> None:
        replies.append(message)

    await turned(app, turnstile, max_request_mb=3 / (1024 * 1024))(
        {"type": "http", "headers": []}, body_messages(b"ab", b"cd", b"ef"), record
    )
    assert replies[0]["status"] == 413 and app.held_at_start is None
    assert turnstile._free == 1 and not turnstile._holders


class SlowPreCall:
    """A hook that waits on 'the network' longer than a turn's lease."""

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        await trio.sleep(1.3)
        return data


async def test_every_stretch_ends_and_no_wait_holds_a_turn(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(chunks=4)
    config = make_config(models=[{"name": "gpt", "model": "openai/gpt-4o-mini",
                                  "api_base": upstream.base_url + "/v1"}])
    async with client_and_gateway(config, hooks=[SlowPreCall()]) as (client, gateway):
        statuses: list[int] = []

        async def post(body: dict[str, Any]) -> None:
            statuses.append((await client.post("/v1/chat/completions", json=body)).status_code)

        async with trio.open_nursery() as nursery:
            for stream in (False, True, False, True):
                nursery.start_soon(post, chat("gpt", stream=stream))
            nursery.start_soon(post, chat("nope"))
            nursery.start_soon(client.get, "/v1/models")
        assert sorted(statuses) == [200, 200, 200, 200, 404]
        assert gateway.turnstile.overruns == 0  # the 1.3 s hook ran off-turn (lease: 1 s)
        assert not gateway.turnstile._holders


async def test_the_middleware_takes_a_request_s_first_turn_ahead_of_later_stretches(autojump_clock):
    turnstile, app, served = Turnstile(slots=1), Recorder(), []
    holder = Turn(turnstile)
    await holder.take()

    async def later_stretch() -> None:
        turn = Turn(turnstile)
        await turn.take()
        served.append("later")
        turn.give_back()

    async def request() -> None:
        await turned(app, turnstile)({"type": "http", "headers": []}, body_messages(b"{}"), sent)
        served.append("request")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(later_stretch)
        await trio.sleep(0.01)
        nursery.start_soon(request)
        await trio.sleep(0.01)
        holder.give_back()
    assert served == ["request", "later"]
