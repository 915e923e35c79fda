"""The ledger: atomic reservations, exact settles and releases, resets, rate limits, bounded memory."""

from __future__ import annotations

import pytest
import trio

from gateway_trio.control.estimate import WorstCase
from gateway_trio.control.ledger import Claim, Ledger, TrioUnixClock
from gateway_trio.errors import MAX_RETRY_AFTER_S, BudgetExceeded, RateLimitExceeded

START = 1_700_000_000.0
WORST = WorstCase(prompt_tokens=10, tokens=110, cost=0.1)


def key(**limits: object) -> Claim:
    return Claim("key", "hash-1", "key sk-...abcd", **limits)  # type: ignore[arg-type]


def test_admits_while_the_budget_holds_the_worst_case_and_no_further() -> None:
    ledger = Ledger()
    claims = (key(max_budget=1.0),)
    verdicts = [ledger.admit(claims, WORST, START) for _ in range(11)]
    assert [v.reservation is not None for v in verdicts] == [True] * 10 + [False]
    refusal = verdicts[-1].refusal
    assert isinstance(refusal, BudgetExceeded)
    assert refusal.code == "budget_exceeded" and refusal.status == 429
    assert refusal.retry_after == 1  # only reservations hold the rest: they may free
    account = ledger.get("key", "hash-1")
    assert account is not None and account.reserved == pytest.approx(1.0) and account.in_flight == 10


async def test_fifty_concurrent_calls_at_a_budget_for_ten(autojump_clock: trio.abc.Clock) -> None:
    ledger = Ledger(clock=TrioUnixClock(START))
    claims = (key(max_budget=1.0), Claim("team", "t", "team 't'", max_budget=5.0))
    admitted: list[int] = []
    refused: list[int] = []
    seen_spend: list[float] = []

    async def call(number: int) -> None:
        await trio.sleep(number * 0.001)  # arrive spread out, while the first ones are in flight
        verdict = ledger.admit(claims, WORST)
        if verdict.reservation is None:
            assert isinstance(verdict.refusal, BudgetExceeded)
            refused.append(number)
            return
        admitted.append(number)
        await trio.sleep(1.0)  # the upstream
        verdict.reservation.settle(WORST.cost * (0.5 + number % 2 * 0.5))  # at most the worst case
        seen_spend.append(ledger.get("key", "hash-1").spend)  # type: ignore[union-attr]

    async with trio.open_nursery() as nursery:
        for number in range(50):
            nursery.start_soon(call, number)
    assert len(admitted) == 10 and len(refused) == 40
    assert max(seen_spend) <= 1.0 + 1e-9
    account = ledger.get("key", "hash-1")
    assert account is not None and account.reserved == 0.0 and account.in_flight == 0
    assert account.spend == pytest.approx(sum(WORST.cost * (0.5 + n % 2 * 0.5) for n in admitted))
    assert ledger.get("team", "t").spend == pytest.approx(account.spend)  # type: ignore[union-attr]


def test_settle_counts_once_and_release_after_it_does_nothing() -> None:
    ledger = Ledger()
    claims = (key(max_budget=1.0, tpm_limit=10_000),)
    reservation = ledger.admit(claims, WORST, START).reservation
    assert reservation is not None
    reservation.settle(0.04, tokens=30)
    reservation.settle(0.04, tokens=30)
    reservation.release()
    ledger.settle(reservation, 0.5)
    account = ledger.get("key", "hash-1")
    assert account is not None
    assert (account.spend, account.reserved, account.in_flight) == (pytest.approx(0.04), 0.0, 0)
    assert account.window is not None and account.window.tokens == 30


def test_release_frees_the_budget_and_the_tokens_but_keeps_the_request() -> None:
    ledger = Ledger()
    claims = (key(max_budget=0.1, rpm_limit=100, tpm_limit=10_000),)
    first = ledger.admit(claims, WORST, START).reservation
    assert first is not None
    assert ledger.admit(claims, WORST, START).reservation is None  # the budget is held
    first.release()
    first.release()
    account = ledger.get("key", "hash-1")
    assert account is not None and account.spend == 0.0 and account.reserved == 0.0
    assert account.window is not None and (account.window.requests, account.window.tokens) == (1, 0)
    assert ledger.admit(claims, WORST, START + 1).reservation is not None


def test_an_unpriced_settle_counts_nothing() -> None:
    ledger = Ledger()
    reservation = ledger.admit((key(max_budget=1.0),), WORST, START).reservation
    assert reservation is not None
    reservation.settle(None)
    assert ledger.get("key", "hash-1").spend == 0.0  # type: ignore[union-attr]


def test_a_spent_budget_without_reset_is_refused_for_good() -> None:
    ledger = Ledger()
    verdict = ledger.admit((key(max_budget=1.0, spend=1.0),), WORST, START)
    assert isinstance(verdict.refusal, BudgetExceeded)
    assert verdict.refusal.retry_after == MAX_RETRY_AFTER_S


def test_the_first_level_that_refuses_is_named() -> None:
    ledger = Ledger()
    claims = (key(max_budget=10.0), Claim("user", "u1", "user 'u1'", spend=2.0, max_budget=2.05))
    verdict = ledger.admit(claims, WORST, START)
    assert isinstance(verdict.refusal, BudgetExceeded) and "user 'u1'" in verdict.refusal.message
    assert ledger.get("key", "hash-1").reserved == 0.0  # type: ignore[union-attr]  # nothing held on a refusal


async def test_a_budget_resets_exactly_at_its_time(autojump_clock: trio.abc.Clock) -> None:
    ledger = Ledger(clock=TrioUnixClock(START))
    claims = (key(max_budget=1.0, spend=1.0, budget_duration="1h", budget_reset_at=START + 3600),)
    verdict = ledger.admit(claims, WORST)
    assert isinstance(verdict.refusal, BudgetExceeded)
    assert verdict.refusal.retry_after == 3600 and verdict.resets == []
    await trio.sleep(3599.5)
    assert ledger.admit(claims, WORST).reservation is None
    await trio.sleep(0.5)
    verdict = ledger.admit(claims, WORST)
    assert verdict.reservation is not None
    assert [(r.level, r.budget_reset_at, r.previous_reset_at) for r in verdict.resets] == [
        ("key", START + 7200, START + 3600)
    ]
    account = ledger.get("key", "hash-1")
    assert account is not None and account.spend == 0.0 and account.reset_at == START + 7200


async def test_a_budget_without_a_reset_time_starts_its_period_at_first_use(autojump_clock: trio.abc.Clock) -> None:
    ledger = Ledger(clock=TrioUnixClock(START))
    claims = (key(max_budget=1.0, budget_duration="1d"),)
    verdict = ledger.admit(claims, WORST)
    assert [(r.budget_reset_at, r.previous_reset_at) for r in verdict.resets] == [(START + 86400, None)]
    assert ledger.admit(claims, WORST).resets == []


async def test_rpm_refuses_with_the_wait_until_room_frees(autojump_clock: trio.abc.Clock) -> None:
    ledger = Ledger(clock=TrioUnixClock(START))
    claims = (key(rpm_limit=3),)
    for _ in range(3):
        ledger.admit(claims, WORST).reservation.settle(0.0)  # type: ignore[union-attr]
        await trio.sleep(10)
    verdict = ledger.admit(claims, WORST)
    assert isinstance(verdict.refusal, RateLimitExceeded)
    assert verdict.refusal.code == "rate_limit_exceeded" and "rpm" in verdict.refusal.message
    assert verdict.refusal.retry_after == 31  # the first call (30 s ago) leaves 61 s after its second
    await trio.sleep(31)
    assert ledger.admit(claims, WORST).reservation is not None


def test_tpm_counts_the_real_usage_once_settled() -> None:
    ledger = Ledger()
    claims = (key(tpm_limit=100),)
    first = ledger.admit(claims, WORST, START).reservation
    assert first is not None
    # In flight, the call holds its worst case (110 tokens): nothing else fits.
    assert isinstance(ledger.admit(claims, WORST, START).refusal, RateLimitExceeded)
    first.settle(0.0, tokens=30)
    for _ in range(2):
        ledger.admit(claims, WORST, START).reservation.settle(0.0, tokens=30)  # type: ignore[union-attr]
    verdict = ledger.admit(claims, WORST, START)  # 90 used: a 10-token prompt still fits
    assert verdict.reservation is not None
    verdict.reservation.settle(0.0, tokens=15)
    refusal = ledger.admit(claims, WORST, START + 1).refusal  # 105 used
    assert isinstance(refusal, RateLimitExceeded) and "tpm" in refusal.message
    assert refusal.retry_after == 60  # all counted in the second of START: it leaves at START + 61


def test_parallel_limit_counts_calls_in_flight() -> None:
    ledger = Ledger()
    claims = (key(max_parallel_requests=2),)
    held = [ledger.admit(claims, WORST, START).reservation for _ in range(2)]
    refusal = ledger.admit(claims, WORST, START).refusal
    assert isinstance(refusal, RateLimitExceeded) and "max_parallel_requests" in refusal.message
    assert refusal.retry_after == 1
    held[0].release()  # type: ignore[union-attr]
    assert ledger.admit(claims, WORST, START).reservation is not None


def test_budgets_are_checked_before_rate_limits() -> None:
    ledger = Ledger()
    claims = (key(rpm_limit=1), Claim("team", "t", "team 't'", spend=5.0, max_budget=5.0))
    ledger.admit((key(rpm_limit=1),), WORST, START)
    assert isinstance(ledger.admit(claims, WORST, START).refusal, BudgetExceeded)


def test_idle_accounts_are_forgotten_when_the_table_is_full_and_busy_ones_never() -> None:
    ledger = Ledger(max_accounts=2, idle_s=100)
    busy = ledger.admit((Claim("key", "busy", "key busy", rpm_limit=5),), WORST, START).reservation
    ledger.admit((Claim("key", "a", "key a", rpm_limit=5),), WORST, START).reservation.settle(0.0)  # type: ignore[union-attr]
    ledger.admit((Claim("key", "b", "key b", rpm_limit=5),), WORST, START + 50)
    assert len(ledger) == 3  # nothing idle long enough yet
    ledger.admit((Claim("key", "c", "key c", rpm_limit=5),), WORST, START + 500)
    assert ledger.get("key", "busy") is not None  # in flight: kept
    assert ledger.get("key", "a") is None
    assert busy is not None and busy.open


def test_reseed_and_forget() -> None:
    ledger = Ledger()
    ledger.admit((key(max_budget=1.0, spend=0.9),), WORST, START).reservation.settle(0.05)  # type: ignore[union-attr]
    ledger.reseed("key", "hash-1", 0.0, None)
    assert ledger.get("key", "hash-1").spend == 0.0  # type: ignore[union-attr]
    ledger.forget("key", "hash-1")
    assert ledger.get("key", "hash-1") is None
