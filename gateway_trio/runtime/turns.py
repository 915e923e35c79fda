"""Turns: who may use the event loop's CPU next, so a burst of calls is served in order.

What a turn is.  The gateway is one trio thread; every call is a task on it.  Most of a
call's life is waiting (for the client's body, the upstream, a hook), and in between it does
short stretches of pure CPU work: turning the request into an upstream call, the answer into
the client's response, each batch of a stream's chunks into SSE frames.  A *turn* is the right
to run such a stretch; the `Turnstile` has a few of them (`SLOTS`) and hands them out in order.

Why calls take turns.  trio runs every ready task one step per batch.  When a thousand calls
arrive together (say, a thousand clients whose answers all came back after the same upstream
delay), each advances one step per batch: all of them reach the upstream at the end of the
burst, their answers come back together, and the burst never spreads out.  Every call then
waits for the whole burst, on every cycle, while the loop sits idle in between (measured: 58 %
of the ideal rate with the CPU 57 % busy).  With turns, calls go through a burst one after
another, so it spreads over the upstream's delay and each call waits only for those ahead.

The three seams.  A call holds its turn from the moment its body is in (`taking_turns`) and
gives it back wherever it waits on something outside the process, always through
`async with off_turn():` around the wait, which gives the turn back on the way in and takes it
again on the way out:
- dispatch: the wait for the upstream's first event (and the back-off before a retry);
- user code: a hook or a guardrail, whose waits are not ours to order;
- threads: work handed to a worker thread (the spend store).
Writing to the client's socket is the fourth wait, handled here by the middleware: each
response body write gives the turn back, and the stream's wait for its next batch (an
`off_turn` in the pipeline) takes it again.  Regions nest: inside an `off_turn` (a guardrail
run while a stream waits for its next batch) the inner one neither takes nor gives back
anything on exit; only the outermost takes the turn again.  A region left by an exception
(cancellation included) does not take the turn again: the call's next seam will, and a
cancelled call must not queue for CPU it will not use.

Order.  A call's first stretch goes ahead of the later stretches of calls under way, as a
scheduler favours the jobs about to wait on a device: it ends in the upstream's seconds-long
wait, which starts only when the stretch is done, while a later stretch ends the call.
Measured with a thousand streams against a 2 s upstream: 448-453 calls a second instead of
436-445 in strict arrival order.  Within each kind, turns go in arrival order, and after
`FIRST_IN_A_ROW` first stretches a waiting later one goes next, so a flood of new calls cannot
starve the answers of calls already under way.  A turn held longer than `LEASE_S` is taken
back anyway, so a wait nobody foresaw costs latency, never liveness.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Awaitable, Callable

import trio

SLOTS = 8  # enough to overlap a few calls' hand-offs; few enough that a burst stays in order
LEASE_S = 1.0
FIRST_IN_A_ROW = 4  # at most this many first stretches go while a later one waits

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]


class Turnstile:
    """The slots, and two queues of waiters (first stretches, later ones), each in arrival order."""

    def __init__(self, slots: int = SLOTS, lease_s: float = LEASE_S) -> None:
        self.lease_s = lease_s
        self.overruns = 0  # turns taken back after their lease
        self._free = slots
        self._first = trio.lowlevel.ParkingLot()
        self._later = trio.lowlevel.ParkingLot()
        self._firsts_in_a_row = 0
        self._holders: dict[Turn, float] = {}  # in grant order: the first is the oldest
        self._held_again = trio.Event()

    async def take(self, turn: Turn, first: bool = False) -> None:
        if self._free and not self._first and not self._later:
            # A free slot is taken without a checkpoint: a yield here would cost the call a
            # whole batch of other tasks' steps, on every stretch.
            self._free -= 1
        else:
            # give_back hands the slot over directly; a waiter cancelled here was never
            # handed one (a parking lot only wakes tasks still parked).
            await (self._first if first else self._later).park()
        self._holders[turn] = trio.current_time()
        self._held_again.set()

    def holds(self, turn: Turn) -> bool:
        return turn in self._holders

    def give_back(self, turn: Turn) -> None:
        if self._holders.pop(turn, None) is None:
            return
        if self._first and (self._firsts_in_a_row < FIRST_IN_A_ROW or not self._later):
            self._firsts_in_a_row += 1
            self._first.unpark()
        elif self._later:
            self._firsts_in_a_row = 0
            self._later.unpark()
        else:
            self._free += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Take back turns held past their lease."""
        task_status.started()
        while True:
            if not self._holders:
                self._held_again = trio.Event()
                await self._held_again.wait()
                continue
            turn, granted_at = next(iter(self._holders.items()))
            if trio.current_time() >= granted_at + self.lease_s:
                self.overruns += 1
                self.give_back(turn)
            else:
                await trio.sleep_until(granted_at + self.lease_s)


class Turn:
    """One request's claim on the turnstile; taken and given back as its stretches begin and end."""

    __slots__ = ("away", "turnstile")

    def __init__(self, turnstile: Turnstile) -> None:
        self.turnstile = turnstile
        self.away = 0  # `off_turn` regions entered and not yet left

    @property
    def held(self) -> bool:
        return self.turnstile.holds(self)

    async def take(self, first: bool = False) -> None:
        if not self.held:
            await self.turnstile.take(self, first)

    def give_back(self) -> None:
        self.turnstile.give_back(self)


_current: ContextVar[Turn | None] = ContextVar("gateway_trio_turn", default=None)


class off_turn:  # a class named as the function it reads as: `async with off_turn():`
    """`async with off_turn():` around a wait outside the process (one of the three seams).

    Gives the current request's turn back on entry, takes it again on a normal exit from the
    outermost region (see the module's docstring).  Outside a request (an actor's own task) it
    does nothing.  A class, not a generator context manager: it runs several times per call.
    """

    __slots__ = ("_turn",)

    def __init__(self) -> None:
        self._turn = _current.get()

    async def __aenter__(self) -> None:
        turn = self._turn
        if turn is not None:
            turn.away += 1
            turn.give_back()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        turn = self._turn
        if turn is not None:
            turn.away -= 1
            if not turn.away and kind is None:
                await turn.take()


def taking_turns(app: ASGIApp, turnstile: Turnstile) -> ASGIApp:
    """ASGI middleware: each HTTP request runs in turns, from the moment its body is in.

    It sits inside `frontend.intake.reading_bodies`, which calls it only once the body is all
    there and within bounds: a slow upload never holds a turn, and the body is read once."""

    async def with_turns(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        turn = Turn(turnstile)

        async def send_off_turn(message: Message) -> None:
            if message["type"] == "http.response.body":
                turn.give_back()  # writing to the client's socket may wait on the client
            await send(message)

        token = _current.set(turn)
        try:
            await turn.take(first=True)
            await app(scope, receive, send_off_turn)
        finally:
            turn.give_back()
            _current.reset(token)

    return with_turns
