"""The headers that tell a limited key's client where it stands, on every answer.

OpenAI's `x-ratelimit-*` names and formats, so SDKs and tools that read OpenAI's headers read
ours: limits and remaining counts as integers, resets as Go-style durations ("20ms", "6s",
"1m0s").  Of all the limits that apply to a call (its key, the key's per-model limit, team,
user, end-user), the tightest is shown: the one with the least left.  `x-gateway-key-spend`
is the key's settled spend; `x-gateway-key-budget-remaining` what its budget has left of it.

Built from the accounts admission already holds: a few comparisons and string formats, no
lookups.
"""

from __future__ import annotations

from typing import Sequence

from gateway_trio.control.ledger import Account, Claim


def openai_duration(seconds: float) -> str:
    """A duration as OpenAI writes its resets: "20ms", "6s", "1.5s", "1m0s", "1h2m3s"."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    whole_ms = round(seconds * 1000)
    hours, rest_ms = divmod(whole_ms, 3_600_000)
    minutes, rest_ms = divmod(rest_ms, 60_000)
    text = f"{rest_ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def limit_headers(claims: Sequence[Claim], accounts: Sequence[Account], now: float) -> dict[str, str]:
    """The headers of a call whose claims and accounts are these (empty when nothing limits it)."""
    headers: dict[str, str] = {}
    requests: tuple[int, int, Account] | None = None  # (remaining, limit, account) of the tightest
    tokens: tuple[int, int, Account] | None = None
    key_claim: Claim | None = None
    key_account: Account | None = None
    for claim, account in zip(claims, accounts):
        if claim.level == "key":
            key_claim, key_account = claim, account
        window = account.window
        if window is None:
            continue
        window.advance(now)
        if claim.rpm_limit is not None:
            left = max(claim.rpm_limit - window.requests, 0)
            if requests is None or left < requests[0]:
                requests = (left, claim.rpm_limit, account)
        if claim.tpm_limit is not None:
            left = max(claim.tpm_limit - window.tokens, 0)
            if tokens is None or left < tokens[0]:
                tokens = (left, claim.tpm_limit, account)
    if requests is not None:
        left, limit, account = requests
        headers["x-ratelimit-limit-requests"] = str(limit)
        headers["x-ratelimit-remaining-requests"] = str(left)
        headers["x-ratelimit-reset-requests"] = openai_duration(_reset(account, now))
    if tokens is not None:
        left, limit, account = tokens
        headers["x-ratelimit-limit-tokens"] = str(limit)
        headers["x-ratelimit-remaining-tokens"] = str(left)
        headers["x-ratelimit-reset-tokens"] = openai_duration(_reset(account, now))
    if key_claim is not None and key_account is not None:
        headers["x-gateway-key-spend"] = _money(key_account.spend)
        if key_claim.max_budget is not None:
            headers["x-gateway-key-budget-remaining"] = _money(max(key_claim.max_budget - key_account.spend, 0.0))
    return headers


def _reset(account: Account, now: float) -> float:
    return account.window.seconds_until_empty(now) if account.window is not None else 0.0


def _money(usd: float) -> str:
    return format(usd, ".10g")
