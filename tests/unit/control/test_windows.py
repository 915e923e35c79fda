"""The sliding 60 s window: no double burst at its edge, bounded memory, exact corrections."""

from __future__ import annotations

import pytest
import trio

from gateway_trio.control.windows import SLOTS, SlidingWindow


def test_counts_stay_for_at_least_60_seconds() -> None:
    window = SlidingWindow()
    window.add(100.9, 1, 10)
    window.advance(160.99)
    assert (window.requests, window.tokens) == (1, 10)  # 60.09 s later: its second is still in
    window.advance(161.0)
    assert (window.requests, window.tokens) == (0, 0)  # its second left: counted 60.1 s in all
    window.add(200.0, 1, 0)
    window.advance(260.99)
    assert window.requests == 1  # counted for as long as 61 s at most, never less than 60


def test_no_double_burst_across_a_minute_boundary() -> None:
    """A fixed per-minute counter would allow the limit at 59.9 s and again at 60.0 s."""
    limit = 10
    window = SlidingWindow()
    admitted = 0
    for now in [59.9] * 15 + [60.0] * 15 + [61.0] * 15:
        window.advance(now)
        if window.requests + 1 <= limit:
            window.add(now, 1, 0)
            admitted += 1
    assert admitted == limit
    # Any 60 s span holds at most the limit: the next admission is a full window later.
    # The calls of 59.9 s free their room at 120.0 s: 60.1 s later, never within 60 s.
    assert window.seconds_until_free(61.0, requests=1, request_limit=limit) == pytest.approx(120.0 - 61.0)


def test_wait_until_free_frees_the_oldest_first() -> None:
    window = SlidingWindow()
    window.add(10.0, 1, 0)
    window.add(20.0, 1, 0)
    window.add(30.0, 1, 0)
    assert window.seconds_until_free(40.0, requests=1, request_limit=3) == pytest.approx(10 + SLOTS - 40.0)
    assert window.seconds_until_free(40.0, requests=2, request_limit=3) == pytest.approx(20 + SLOTS - 40.0)
    assert window.seconds_until_free(40.0, requests=1, request_limit=10) == 0.0
    # An ask bigger than the limit itself waits until the window is empty.
    assert window.seconds_until_free(40.0, tokens=50, token_limit=10) == pytest.approx(30 + SLOTS - 40.0)
    assert window.seconds_until_empty(40.0) == pytest.approx(30 + SLOTS - 40.0)


def test_corrections_change_their_own_second_and_not_below_zero() -> None:
    window = SlidingWindow()
    second = window.add(5.2, 1, 1000)
    window.add(6.0, 1, 1000)
    window.correct(second, -970)
    assert window.tokens == 1030
    window.correct(second, -5000)
    assert window.tokens == 1000  # the bucket of second 5 held 30: it goes to 0, not below
    window.advance(5 + SLOTS + 0.5)
    assert window.tokens == 1000  # second 5 left; second 6 has not
    window.correct(second, 400)  # its second has left the window: nothing to correct
    assert window.tokens == 1000


def test_a_long_pause_clears_everything_at_once() -> None:
    window = SlidingWindow()
    for t in range(0, 60, 3):
        window.add(float(t), 2, 7)
    assert window.requests == 40
    window.advance(10_000.0)
    assert (window.requests, window.tokens) == (0, 0)
    assert window.is_idle(10_000.0)
    assert window.seconds_until_empty(10_000.0) == 0.0


def test_a_clock_stepping_back_keeps_counting() -> None:
    window = SlidingWindow()
    window.add(100.0, 1, 1)
    window.add(90.0, 1, 1)
    assert window.requests == 2
    window.advance(100 + SLOTS)
    assert window.requests == 0


async def test_with_trio_time(autojump_clock: trio.abc.Clock) -> None:
    window = SlidingWindow()
    for _ in range(30):
        window.add(trio.current_time(), 1, 100)
        await trio.sleep(2)
    window.advance(trio.current_time())
    assert 29 <= window.requests <= 30  # 60 s of calls every 2 s
    await trio.sleep(SLOTS)
    window.advance(trio.current_time())
    assert window.requests == 0
