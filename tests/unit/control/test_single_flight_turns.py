"""Callers waiting for another call's key lookup give their CPU turns back meanwhile.

The lookup comes back from the database needing a turn (`runtime/turns`); callers that kept
theirs while waiting for it would hold it off until the turnstile's lease took one back: every
30 s, when a busy key's cache entry expired, all its calls stalled for a second.
"""

from __future__ import annotations

from typing import Any

import trio

from gateway_trio.auth import Authenticator
from gateway_trio.control.estimate import PriceBook
from gateway_trio.control.plane import ControlPlane
from gateway_trio.runtime import turns
from gateway_trio.runtime.turns import Turn, Turnstile, off_turn

LEASE_S = 1.0
CALLERS = 6
SLOTS = 2  # fewer turns than callers: the waiters could hold them all


async def test_callers_waiting_on_a_load_leave_their_turns_to_it(autojump_clock: Any) -> None:
    plane = ControlPlane(Authenticator(None), PriceBook({}))
    turnstile = Turnstile(slots=SLOTS, lease_s=LEASE_S)
    loads: list[float] = []
    finished: list[float] = []

    async def load() -> None:
        loads.append(trio.current_time())
        async with off_turn():  # the database read, in a worker thread
            await trio.sleep(0.01)
        return None

    async def caller() -> None:
        turn = Turn(turnstile)
        turns._current.set(turn)  # this task is a request
        await turn.take(first=True)
        await plane._single_flight(("key", "token"), load, plane.keys, "token")
        finished.append(trio.current_time())
        turn.give_back()

    async with trio.open_nursery() as nursery:
        await nursery.start(turnstile.run)
        async with trio.open_nursery() as callers:
            for _ in range(CALLERS):
                callers.start_soon(caller)
        nursery.cancel_scope.cancel()

    assert len(loads) == 1  # one lookup for them all
    assert len(finished) == CALLERS
    assert max(finished) < LEASE_S / 2  # nobody waited for a lease to run out
    assert turnstile.overruns == 0
