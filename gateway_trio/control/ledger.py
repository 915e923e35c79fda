"""The live budgets and limits of every key, team, user and end-user: atomic reservations.

LiteLLM checks a budget and adds the spend later, so concurrent calls all pass the check
and overspend it (#34732, #40095).  Here admission checks every level and, only if all pass,
reserves the call's worst-case cost and tokens on each, in one synchronous step: trio runs
one task at a time on this thread and nothing here awaits, so no other call can slip between
the check and the add.  With budget left for k worst-case calls, at most k are admitted, and
as long as a reservation bounds its call, settled spend never passes `max_budget`.

An `Account` is one entity's live state (level + id): settled spend since its last reset
(seeded from its record's `spend` the first time it is seen; from then on the ledger, not the
record, is the live figure: the store adds the same costs from the spend records, and a
reloaded record is not read again unless `reseed` says so), what calls in flight have
reserved, its reset time, its sliding window and its calls in flight.  Resets are exact:
the first admission at or after `budget_reset_at` zeroes the spend and computes the next
reset, and the verdict reports it so the caller can persist it.

Memory is bounded: accounts live in an LRU table of `max_accounts`.  When it is full, the
least recently used accounts with no call in flight and no use for `idle_s` (longer than the
60 s window, so nothing they count is still live) are forgotten; one is seeded again from
its record if it comes back.  Busy or recent accounts are never forgotten, so the table may
pass its size by the accounts in use in the last `idle_s`.

Times are unix seconds from the ledger's clock (`TrioUnixClock`: trio's clock, offset to
wall time once, so `autojump_clock` moves budgets and windows alike in tests).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from gateway_trio.control.durations import next_reset, parse_duration, reset_after
from gateway_trio.control.estimate import WorstCase
from gateway_trio.control.windows import SlidingWindow
from gateway_trio.errors import MAX_RETRY_AFTER_S, BudgetExceeded, LimitRefused, RateLimitExceeded

log = logging.getLogger(__name__)

# Float sums of prices drift by ulps: ten reservations of 0.1 must fit a budget of 1.0.
BUDGET_EPSILON = 1e-9
# What a refused call is told to wait when nothing can tell when room frees (a parallel
# limit, a budget taken only by reservations): those end with the calls holding them.
BUSY_RETRY_AFTER_S = 1.0
DEFAULT_MAX_ACCOUNTS = 100_000
DEFAULT_IDLE_S = 900.0
_EVICTION_STEPS = 8  # accounts looked at per insert when the table is full: O(1) per call


class TrioUnixClock:
    """Unix seconds as trio's clock runs: wall time read once, then trio's monotonic time.

    `start_unix` pins the wall time at the first reading (tests); by default it is now.
    """

    __slots__ = ("_offset", "_start_unix")

    def __init__(self, start_unix: float | None = None) -> None:
        self._start_unix = start_unix
        self._offset: float | None = None

    def __call__(self) -> float:
        current = trio.current_time()
        if self._offset is None:
            start = time.time() if self._start_unix is None else self._start_unix
            self._offset = start - current
        return self._offset + current


@dataclass(frozen=True, slots=True)
class Claim:
    """What one level (key, key+model, team, user, end-user) asks of a call, from its record."""

    level: str  # "key" | "key_model" | "team" | "user" | "end_user"
    entity: str  # the account's id: token, token + model, team_id, user_id, end-user id
    label: str  # how messages name it: "key sk-...abcd", "team 'research'"
    spend: float = 0.0  # the record's: seeds the account on first sight
    max_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: float | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None

    @property
    def limited(self) -> bool:
        return (self.max_budget is not None or self.rpm_limit is not None or self.tpm_limit is not None
                or self.max_parallel_requests is not None)


@dataclass(frozen=True, slots=True)
class BudgetReset:
    """A budget that reset at admission: the caller persists the new `budget_reset_at`."""

    level: str
    entity: str
    budget_reset_at: float
    previous_reset_at: float | None  # for the store's compare-and-set


class Account:
    """One entity's live budget and limits; see the module's docstring."""

    __slots__ = ("spend", "reserved", "reset_at", "window", "in_flight", "last_used")

    def __init__(self, spend: float, reset_at: float | None, now: float) -> None:
        self.spend = spend
        self.reserved = 0.0
        self.reset_at = reset_at
        self.window: SlidingWindow | None = None
        self.in_flight = 0
        self.last_used = now


class Hold(Protocol):
    """What a call holds on its accounts: settled once or released once (local or shared)."""

    def settle(self, cost: float | None, tokens: int | None = None) -> None: ...

    def release(self) -> None: ...


@dataclass(slots=True)
class Reservation:
    """A call's hold on its accounts: settled once or released once, whichever comes first."""

    accounts: tuple[Account, ...]
    cost: float
    tokens: int
    seconds: tuple[int | None, ...]  # the window second each account counted the call in
    open: bool = True

    def settle(self, cost: float | None, tokens: int | None = None) -> None:
        """Replace the reservation by the real `cost` (None: unpriced, counts 0) and `tokens`
        (None: keep the reserved count).  Only the first settle or release counts."""
        if not self.open:
            return
        self.open = False
        real = cost if cost is not None and math.isfinite(cost) and cost > 0 else 0.0
        for account, second in zip(self.accounts, self.seconds):
            account.spend += real
            self._unhold(account, second, None if tokens is None else tokens - self.tokens)

    def release(self) -> None:
        """Drop the reservation (the call failed or its client left before any usage)."""
        if not self.open:
            return
        self.open = False
        for account, second in zip(self.accounts, self.seconds):
            self._unhold(account, second, -self.tokens)

    def _unhold(self, account: Account, second: int | None, token_delta: int | None) -> None:
        account.in_flight -= 1
        # Exactly zero once nothing is in flight: float adds and subtracts leave ulps behind.
        account.reserved = account.reserved - self.cost if account.in_flight > 0 else 0.0
        if token_delta and second is not None and account.window is not None:
            account.window.correct(second, token_delta)


@dataclass(slots=True)
class Verdict:
    """What `Ledger.admit` decided: a reservation, or the refusal; the resets either way."""

    accounts: tuple[Account, ...]
    resets: list[BudgetReset]
    reservation: Hold | None = None
    refusal: LimitRefused | None = None


class Ledger:
    """Every account, and the one synchronous step that checks and reserves."""

    def __init__(self, clock: Callable[[], float] | None = None, *, max_accounts: int = DEFAULT_MAX_ACCOUNTS,
                 idle_s: float = DEFAULT_IDLE_S) -> None:
        self.clock = clock if clock is not None else TrioUnixClock()
        self.max_accounts = max_accounts
        self.idle_s = idle_s
        self._accounts: OrderedDict[tuple[str, str], Account] = OrderedDict()

    def admit(self, claims: Sequence[Claim], worst: WorstCase, now: float | None = None) -> Verdict:
        """Check every claim's budget, then its rpm, tpm and parallel limits; reserve only if all pass.

        Synchronous on purpose: see the module's docstring.
        """
        if now is None:
            now = self.clock()
        resets: list[BudgetReset] = []
        accounts = tuple(self._account(claim, now, resets) for claim in claims)
        verdict = Verdict(accounts, resets)
        verdict.refusal = self._budget_refusal(claims, accounts, worst.cost, now) or self._limit_refusal(
            claims, accounts, worst, now
        )
        if verdict.refusal is None:
            verdict.reservation = self._reserve(claims, accounts, worst, now)
        return verdict

    def settle(self, reservation: Reservation, cost: float | None, tokens: int | None = None) -> None:
        reservation.settle(cost, tokens)

    def release(self, reservation: Reservation) -> None:
        reservation.release()

    def get(self, level: str, entity: str) -> Account | None:
        """The live account, if the ledger holds one."""
        return self._accounts.get((level, entity))

    def reseed(self, level: str, entity: str, spend: float, budget_reset_at: float | None) -> None:
        """An admin changed an entity's spend or reset: take the record's figures as live."""
        account = self._accounts.get((level, entity))
        if account is not None:
            account.spend, account.reset_at = spend, budget_reset_at

    def forget(self, level: str, entity: str) -> None:
        """Drop an idle account (its entity was deleted); one in use stays until its calls end."""
        account = self._accounts.get((level, entity))
        if account is not None and account.in_flight == 0:
            del self._accounts[level, entity]

    def __len__(self) -> int:
        return len(self._accounts)

    # --- the steps of `admit` ---------------------------------------------------------

    def _account(self, claim: Claim, now: float, resets: list[BudgetReset]) -> Account:
        key = (claim.level, claim.entity)
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = Account(claim.spend, claim.budget_reset_at, now)
            self._evict(now)
        else:
            self._accounts.move_to_end(key)
        account.last_used = now
        if claim.budget_duration is not None:
            self._reset_if_due(claim, account, now, resets)
        if (claim.rpm_limit is not None or claim.tpm_limit is not None) and account.window is None:
            account.window = SlidingWindow()
        return account

    def _reset_if_due(self, claim: Claim, account: Account, now: float, resets: list[BudgetReset]) -> None:
        try:
            duration = parse_duration(claim.budget_duration or "")
        except ValueError:
            log.warning("ignoring the budget_duration of %s: %r is not a duration", claim.label, claim.budget_duration)
            return
        previous = account.reset_at
        if previous is None:
            account.reset_at = next_reset(now, duration)  # a period starts with its first call
        elif now >= previous:
            account.spend = 0.0
            account.reset_at = reset_after(previous, duration, now)
        else:
            return
        resets.append(BudgetReset(claim.level, claim.entity, account.reset_at, previous))

    def _budget_refusal(self, claims: Sequence[Claim], accounts: Sequence[Account], cost: float,
                        now: float) -> LimitRefused | None:
        for claim, account in zip(claims, accounts):
            budget = claim.max_budget
            if budget is None:
                continue
            if account.spend >= budget or account.spend + account.reserved + cost > budget + BUDGET_EPSILON:
                return budget_refusal(claim, account.spend, account.reserved, account.reset_at, cost, now)
        return None

    def _limit_refusal(self, claims: Sequence[Claim], accounts: Sequence[Account], worst: WorstCase,
                       now: float) -> LimitRefused | None:
        for claim, account in zip(claims, accounts):
            limit, window = claim.rpm_limit, account.window
            if limit is not None and window is not None:
                window.advance(now)
                if window.requests + 1 > limit:
                    wait = window.seconds_until_free(now, requests=1, request_limit=limit)
                    return rpm_refusal(claim, window.requests, wait)
        for claim, account in zip(claims, accounts):
            limit, window = claim.tpm_limit, account.window
            if limit is not None and window is not None:
                window.advance(now)
                # The prompt is what the call surely takes; its reserve (prompt and the most
                # output) is counted once admitted and corrected to the real usage at settle.
                if window.tokens + worst.prompt_tokens > limit:
                    wait = window.seconds_until_free(now, tokens=worst.prompt_tokens, token_limit=limit)
                    return tpm_refusal(claim, window.tokens, wait)
        for claim, account in zip(claims, accounts):
            limit = claim.max_parallel_requests
            if limit is not None and account.in_flight + 1 > limit:
                return parallel_refusal(claim, account.in_flight)
        return None

    def _reserve(self, claims: Sequence[Claim], accounts: Sequence[Account], worst: WorstCase,
                 now: float) -> Reservation:
        seconds: list[int | None] = []
        for account in accounts:
            account.reserved += worst.cost
            account.in_flight += 1
            window = account.window
            seconds.append(None if window is None else window.add(now, 1, worst.tokens))
        return Reservation(tuple(accounts), worst.cost, worst.tokens, tuple(seconds))

    def _evict(self, now: float) -> None:
        """Forget a few idle accounts from the old end once the table is past its size."""
        table = self._accounts
        for _ in range(_EVICTION_STEPS):
            if len(table) <= self.max_accounts:
                return
            key, oldest = next(iter(table.items()))
            if oldest.in_flight or now - oldest.last_used < self.idle_s:
                if oldest.in_flight:
                    table.move_to_end(key)  # a long call: look past it
                    continue
                return  # the oldest is recent, so all are
            del table[key]


# --- the refusals, worded once: the local ledger and the shared one (Redis) both tell them ---


def budget_refusal(claim: Claim, spend: float, reserved: float, reset_at: float | None, cost: float,
                   now: float) -> BudgetExceeded:
    budget = claim.max_budget or 0.0
    if reset_at is not None:
        wait = reset_at - now
    elif spend + cost <= budget + BUDGET_EPSILON:
        wait = BUSY_RETRY_AFTER_S  # only calls in flight hold the rest: it may free
    else:
        wait = MAX_RETRY_AFTER_S  # spent, and it never resets
    return BudgetExceeded(
        f"budget exceeded for {claim.label}: spend {spend:.6g} (+{reserved:.6g} reserved"
        f" by calls in flight) of max_budget {budget:.6g}; this call may cost up to {cost:.6g}",
        retry_after=math.ceil(max(wait, 1.0)),
    )


def rpm_refusal(claim: Claim, requests: int, wait: float) -> RateLimitExceeded:
    return _rate_refusal(f"rpm limit of {claim.label} reached: {requests} of {claim.rpm_limit}"
                         " requests in the last 60 s", wait)


def tpm_refusal(claim: Claim, tokens: int, wait: float) -> RateLimitExceeded:
    return _rate_refusal(f"tpm limit of {claim.label} reached: {tokens} of {claim.tpm_limit}"
                         " tokens in the last 60 s", wait)


def parallel_refusal(claim: Claim, in_flight: int) -> RateLimitExceeded:
    return _rate_refusal(f"max_parallel_requests of {claim.label} reached: {in_flight}"
                         f" of {claim.max_parallel_requests} calls in flight", BUSY_RETRY_AFTER_S)


def _rate_refusal(message: str, wait: float) -> RateLimitExceeded:
    return RateLimitExceeded(message, retry_after=math.ceil(max(wait, 1.0)))
