"""A sliding 60-second window of requests and tokens: what rpm and tpm limits count over.

A fixed window (a counter cleared each minute) lets twice the limit through across its edge:
the limit at 0:59 and again at 1:00.  An exact log (one entry per request) has no edge but
costs memory per request.  This window keeps one bucket per whole second in a ring of 61:
every event counts for at least 60 s and at most 61 s (it leaves with its second), so no 60 s
span ever holds more than the limit, at the price of up to one second's lag before capacity
frees.  Each call costs O(1) amortised (advancing clears at most one bucket per second that
passed, 61 at most however long the pause), and memory is fixed: two rings of 61 ints.

Time is passed in (unix seconds as the ledger's clock gives them), so tests drive it with
`autojump_clock` or explicit numbers.  A clock that steps backwards never clears buckets.
"""

from __future__ import annotations

import math

WINDOW_S = 60
SLOTS = WINDOW_S + 1  # the current second and the 60 before it


class SlidingWindow:
    """Requests and tokens of the last 60 s (see the module's docstring for the edges)."""

    __slots__ = ("requests", "tokens", "_requests", "_tokens", "_second", "_last_event")

    def __init__(self) -> None:
        self.requests = 0  # totals over the window, kept with the rings
        self.tokens = 0
        self._requests = [0] * SLOTS
        self._tokens = [0] * SLOTS
        self._second: int | None = None  # the newest second the rings have been advanced to
        self._last_event: int | None = None

    def advance(self, now: float) -> int:
        """Drop the seconds that left the window by `now`; return `now`'s second."""
        second = math.floor(now)
        last = self._second
        if last is None or second >= last + SLOTS:
            if self.requests or self.tokens:
                self._requests = [0] * SLOTS
                self._tokens = [0] * SLOTS
                self.requests = self.tokens = 0
        elif second > last:
            requests, tokens = self._requests, self._tokens
            for expired in range(last + 1, second + 1):
                slot = expired % SLOTS
                self.requests -= requests[slot]
                self.tokens -= tokens[slot]
                requests[slot] = tokens[slot] = 0
        else:
            return last  # the same second, or a clock that stepped back: keep counting in place
        self._second = second
        return second

    def add(self, now: float, requests: int, tokens: int) -> int:
        """Count `requests` and `tokens` at `now`; return the second they were put in."""
        second = self.advance(now)
        slot = second % SLOTS
        self._requests[slot] += requests
        self._tokens[slot] += tokens
        self.requests += requests
        self.tokens += tokens
        self._last_event = second
        return second

    def correct(self, second: int, tokens: int) -> None:
        """Change the tokens counted at `second` by `tokens` (the real usage minus the reserve).

        Tokens whose second has left the window are gone already: nothing to correct.
        """
        current = self._second
        if current is None or not current - SLOTS < second <= current:
            return
        slot = second % SLOTS
        tokens = max(tokens, -self._tokens[slot])  # never below zero in a bucket
        self._tokens[slot] += tokens
        self.tokens += tokens

    def seconds_until_free(self, now: float, *, requests: int = 0, tokens: int = 0,
                           request_limit: int | None = None, token_limit: int | None = None) -> float:
        """How long until the window has room for `requests` and `tokens` more under the limits.

        The oldest seconds leave first; if even an empty window cannot hold the ask (a call
        bigger than the limit), the answer is the time until the window is empty.
        """
        second = self.advance(now)
        over_requests = self.requests + requests - request_limit if request_limit is not None else 0
        over_tokens = self.tokens + tokens - token_limit if token_limit is not None else 0
        if over_requests <= 0 and over_tokens <= 0:
            return 0.0
        for oldest in range(second - SLOTS + 1, second + 1):
            slot = oldest % SLOTS
            over_requests -= self._requests[slot]
            over_tokens -= self._tokens[slot]
            if over_requests <= 0 and over_tokens <= 0:
                return max(oldest + SLOTS - now, 0.0)  # when that second leaves the window
        return self.seconds_until_empty(now)

    def seconds_until_empty(self, now: float) -> float:
        """How long until everything counted now has left the window (OpenAI's "reset")."""
        self.advance(now)
        if (not self.requests and not self.tokens) or self._last_event is None:
            return 0.0
        return max(self._last_event + SLOTS - now, 0.0)

    def is_idle(self, now: float) -> bool:
        """Nothing counted any more: the window may be forgotten."""
        self.advance(now)
        return not self.requests and not self.tokens
