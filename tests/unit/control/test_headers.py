"""Limit headers: OpenAI's reset format and the tightest limit that applies."""

from __future__ import annotations

import pytest

from gateway_trio.control.estimate import WorstCase
from gateway_trio.control.headers import limit_headers, openai_duration
from gateway_trio.control.ledger import Claim, Ledger

NOW = 1_700_000_000.0
WORST = WorstCase(prompt_tokens=10, tokens=50, cost=0.01)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (-1, "0s"), (0.02, "20ms"), (0.0004, "1ms"), (1, "1s"), (6, "6s"), (1.5, "1.5s"),
    (59.999, "59.999s"), (60, "1m0s"), (61, "1m1s"), (90.25, "1m30.25s"), (3600, "1h0m0s"), (3723, "1h2m3s"),
])
def test_openai_duration(seconds: float, text: str) -> None:
    assert openai_duration(seconds) == text


def test_the_tightest_limit_is_shown_per_kind() -> None:
    ledger = Ledger()
    claims = (
        Claim("key", "k", "key k", rpm_limit=100, tpm_limit=60, max_budget=1.0),
        Claim("team", "t", "team 't'", rpm_limit=3, tpm_limit=10_000),
    )
    verdict = ledger.admit(claims, WORST, NOW)
    assert verdict.reservation is not None
    verdict.reservation.settle(0.25, tokens=40)
    headers = limit_headers(claims, verdict.accounts, NOW + 1)
    assert headers == {
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "1m0s",
        "x-ratelimit-limit-tokens": "60",
        "x-ratelimit-remaining-tokens": "20",
        "x-ratelimit-reset-tokens": "1m0s",
        "x-gateway-key-spend": "0.25",
        "x-gateway-key-budget-remaining": "0.75",
    }


def test_only_what_applies_is_shown() -> None:
    ledger = Ledger()
    claims = (Claim("key", "k", "key k", spend=3.0), Claim("user", "u", "user 'u'", rpm_limit=5))
    verdict = ledger.admit(claims, WORST, NOW)
    headers = limit_headers(claims, verdict.accounts, NOW)
    assert set(headers) == {"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                            "x-ratelimit-reset-requests", "x-gateway-key-spend"}
    assert headers["x-gateway-key-spend"] == "3"


def test_a_budget_spent_past_its_limit_shows_zero_remaining() -> None:
    ledger = Ledger()
    claims = (Claim("key", "k", "key k", spend=1.5, max_budget=1.0),)
    verdict = ledger.admit(claims, WORST, NOW)
    assert limit_headers(claims, verdict.accounts, NOW)["x-gateway-key-budget-remaining"] == "0"
