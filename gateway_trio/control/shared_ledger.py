"""The shared ledger's Python half: admissions and settlements as ops of one script batch.

`BatchBuilder` turns what waits in the limits actor's queue into the KEYS and the JSON of
one `LEDGER_SCRIPT` call; `verdict_of` turns each admit's answer back into the `Verdict`
`control.ledger.Ledger` would have given (the same refusals, worded by the same functions,
and views of the accounts for the answer's headers).  A claim's figures are encoded once per
claims tuple (they come from the admitter's cache of frozen records), so a call costs a dict
lookup and a list append here, not an encoding.
"""

from __future__ import annotations

import itertools
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway_trio.control.durations import parse_duration
from gateway_trio.control.estimate import WorstCase
from gateway_trio.control.ledger import (
    BudgetReset,
    Claim,
    Verdict,
    budget_refusal,
    parallel_refusal,
    rpm_refusal,
    tpm_refusal,
)

log = logging.getLogger(__name__)

ENCODED_ENTRIES = 10_000
TAG = "{ledger}"  # one Cluster slot for every account: an admission changes several at once


class WindowView:
    """What the script told of an account's window, in the shape `limit_headers` reads."""

    __slots__ = ("_until_empty", "requests", "tokens")

    def __init__(self, requests: int, tokens: int, until_empty: float) -> None:
        self.requests, self.tokens, self._until_empty = requests, tokens, until_empty

    def advance(self, now: float) -> int:
        return int(now)  # already advanced by the script, at this batch's `now`

    def seconds_until_empty(self, now: float) -> float:
        return self._until_empty


class AccountView:
    """An account as the script left it: its spend and, if limited by rpm/tpm, its window."""

    __slots__ = ("spend", "window")

    def __init__(self, spend: float, window: WindowView | None) -> None:
        self.spend, self.window = spend, window


@dataclass(slots=True)
class SharedReservation:
    """A call's hold on shared accounts: settled or released once, through the limits actor."""

    submit: Callable[[dict[str, Any]], None]
    reservation_key: str
    account_keys: tuple[str, ...]
    seconds: tuple[int | bool, ...]  # the window second per account (False: no window)
    cost: float
    tokens: int
    open: bool = True

    def settle(self, cost: float | None, tokens: int | None = None) -> None:
        if not self.open:
            return
        self.open = False
        real = cost if cost is not None and math.isfinite(cost) and cost > 0 else 0.0
        self.submit(self._op(real, None if tokens is None else tokens - self.tokens))

    def release(self) -> None:
        if not self.open:
            return
        self.open = False
        self.submit(self._op(0.0, -self.tokens))

    def _op(self, real: float, token_delta: int | None) -> dict[str, Any]:
        op: dict[str, Any] = {
            "o": "s",
            "r": self.reservation_key,
            "a": self.account_keys,
            "s": self.seconds,
            "cost": self.cost,
            "real": real,
        }
        if token_delta:
            op["dt"] = token_delta
        return op


@dataclass(frozen=True, slots=True)
class EncodedClaims:
    """A claims tuple as the script reads it: its account keys and each claim's figures."""

    claims: tuple[Claim, ...]
    keys: tuple[str, ...]
    figures: tuple[dict[str, Any], ...]


def claim_figures(claim: Claim) -> dict[str, Any]:
    """A claim for the script; absent, never null, for what does not apply (cjson's null is truthy)."""
    figures: dict[str, Any] = {"s": claim.spend}
    if claim.budget_reset_at is not None:
        figures["r"] = claim.budget_reset_at
    if claim.max_budget is not None:
        figures["b"] = claim.max_budget
    if claim.budget_duration is not None:
        try:
            duration = parse_duration(claim.budget_duration)
        except ValueError:
            log.warning("ignoring the budget_duration of %s: %r is not a duration", claim.label, claim.budget_duration)
        else:
            seconds = duration.seconds
            if seconds is None:
                figures["dm"] = duration.count
            else:
                figures["ds"] = seconds
    for name, value in (("rpm", claim.rpm_limit), ("tpm", claim.tpm_limit), ("par", claim.max_parallel_requests)):
        if value is not None:
            figures[name] = value
    return figures


class Encoder:
    """Account keys and figures of claims tuples, kept by identity (the admitter's cache keeps
    the tuples alive, and a changed record makes a new one)."""

    def __init__(self, prefix: str) -> None:
        self.base = f"{prefix}{TAG}:"
        self._encoded: dict[int, EncodedClaims] = {}
        self._instance = uuid.uuid4().hex[:12]
        self._numbers = itertools.count(1)

    def encode(self, claims: tuple[Claim, ...]) -> EncodedClaims:
        found = self._encoded.get(id(claims))
        if found is not None and found.claims is claims:
            return found
        base = self.base
        encoded = EncodedClaims(
            claims, tuple(f"{base}{c.level}:{c.entity}" for c in claims), tuple(claim_figures(c) for c in claims)
        )
        if len(self._encoded) >= ENCODED_ENTRIES:
            self._encoded.clear()
        self._encoded[id(claims)] = encoded
        return encoded

    def reservation_key(self) -> str:
        return f"{self.base}res:{self._instance}:{next(self._numbers)}"


class BatchBuilder:
    """The KEYS and ops of one script call; ops name keys by their 1-based KEYS index."""

    __slots__ = ("_index", "keys", "ops")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.ops: list[dict[str, Any]] = []
        self._index: dict[str, int] = {}

    def _key(self, key: str) -> int:
        index = self._index.get(key)
        if index is None:
            self.keys.append(key)
            index = self._index[key] = len(self.keys)
        return index

    def admit(self, encoded: EncodedClaims, worst: WorstCase, reservation_key: str) -> None:
        key = self._key
        self.ops.append(
            {
                "o": "a",
                "r": key(reservation_key),
                "a": [key(k) for k in encoded.keys],
                "c": encoded.figures,
                "cost": worst.cost,
                "p": worst.prompt_tokens,
                "t": worst.tokens,
            }
        )

    def settle(self, op: dict[str, Any]) -> None:
        key = self._key
        shaped = {**op, "a": [key(k) for k in op["a"]]}
        if "r" in op:  # a settlement names its reservation; spend owed from an outage has none
            shaped["r"] = key(op["r"])
        self.ops.append(shaped)

    def __len__(self) -> int:
        return len(self.ops)


def verdict_of(
    answer: Sequence[Any],
    encoded: EncodedClaims,
    worst: WorstCase,
    now: float,
    reservation_key: str,
    submit: Callable[[dict[str, Any]], None],
) -> Verdict:
    """The `Verdict` of one admit's answer `[refusal, seconds, views, resets]`."""
    refusal, seconds, views, resets = answer
    claims = encoded.claims
    accounts = tuple(
        AccountView(view[0], WindowView(int(view[1]), int(view[2]), view[3]) if len(view) > 1 else None)
        for view in views
    )
    budget_resets = [
        BudgetReset(
            claims[index - 1].level, claims[index - 1].entity, reset_at, previous if previous is not False else None
        )
        for index, reset_at, previous in (resets or ())
    ]
    verdict = Verdict(accounts, budget_resets)  # type: ignore[arg-type]
    if refusal:
        kind, index = refusal[0], refusal[1]
        claim = claims[index - 1]
        if kind == "b":
            verdict.refusal = budget_refusal(claim, refusal[2], refusal[3], refusal[4] or None, worst.cost, now)
        elif kind == "r":
            verdict.refusal = rpm_refusal(claim, int(refusal[2]), refusal[3])
        elif kind == "t":
            verdict.refusal = tpm_refusal(claim, int(refusal[2]), refusal[3])
        else:
            verdict.refusal = parallel_refusal(claim, int(refusal[2]))
    else:
        verdict.reservation = SharedReservation(  # type: ignore[assignment]
            submit,
            reservation_key,
            encoded.keys,
            tuple(int(s) if s is not False else False for s in seconds),
            worst.cost,
            worst.tokens,
        )
    return verdict
