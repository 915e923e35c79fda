"""How close each limited key and team is to its limits: what `/metrics` shows an SRE to alert on.

Read at scrape time from the ledger (the live spend, with what calls in flight reserved, and
the sliding windows) for the keys this instance holds in its key cache, never per call.  Only
keys and teams with a budget or an rpm / tpm limit are shown, and at most `max_series` of
each, those nearest a limit first (the smallest share left), so the series stay bounded by
the operator's choice however many keys exist.  Keys are named by `key_alias`, never by the
key: keys without one are "unnamed", and keys that share a (key_alias, team) pair show the
least headroom among them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from gateway_trio.control.ledger import Account

if TYPE_CHECKING:
    from gateway_trio.control.plane import ControlPlane

UNNAMED = "unnamed"
N = TypeVar("N", int, float)


@dataclass(frozen=True, slots=True)
class Headroom:
    """One key's (or team's) room left: None where it has no such limit."""

    key_alias: str  # "" for a team's own figures
    team: str
    budget_remaining_usd: float | None
    rpm_headroom: int | None
    tpm_headroom: int | None

    @property
    def labels(self) -> tuple[str, str]:
        return self.key_alias, self.team


@dataclass(frozen=True, slots=True)
class _Limits:
    max_budget: float | None
    budget_duration: str | None
    budget_reset_at: float | None
    spend: float
    rpm_limit: int | None
    tpm_limit: int | None


def headroom(plane: ControlPlane, max_series: int) -> tuple[tuple[Headroom, ...], tuple[Headroom, ...]]:
    """(keys, teams): the limited ones this instance knows, at most `max_series` of each."""
    ledger = plane.ledger
    now = ledger.clock()
    keys: dict[tuple[str, str], tuple[float, Headroom]] = {}
    teams: dict[str, tuple[float, Headroom]] = {}
    for tenant in plane.keys.cached():
        key = tenant.key
        limits = _Limits(
            key.max_budget, key.budget_duration, key.budget_reset_at, key.spend, key.rpm_limit, key.tpm_limit
        )
        found = _room(limits, ledger.get("key", key.token), now, key.key_alias or UNNAMED, key.team_id or "")
        if found is not None:
            keys[found[1].labels] = _least(keys.get(found[1].labels), found)
        team = tenant.team
        if team is not None and team.team_id not in teams:
            limits = _Limits(
                team.max_budget, team.budget_duration, team.budget_reset_at, team.spend, team.rpm_limit, team.tpm_limit
            )
            found = _room(limits, ledger.get("team", team.team_id), now, "", team.team_id)
            if found is not None:
                teams[team.team_id] = found
    return _nearest(keys.values(), max_series), _nearest(teams.values(), max_series)


def _room(limits: _Limits, account: Account | None, now: float, alias: str, team: str) -> tuple[float, Headroom] | None:
    """(the smallest share of a limit left, the headroom), or None for no limit."""
    if limits.max_budget is None and limits.rpm_limit is None and limits.tpm_limit is None:
        return None
    shares: list[float] = []
    budget = rpm = tpm = None
    if limits.max_budget is not None:
        if account is not None:
            spend, reset_at = account.spend + account.reserved, account.reset_at
            if limits.budget_duration is not None and reset_at is not None and now >= reset_at:
                spend = account.reserved  # the period is over: the next admission resets it
        else:
            spend = limits.spend
        budget = max(0.0, limits.max_budget - spend)
        shares.append(budget / limits.max_budget if limits.max_budget else 0.0)
    window = account.window if account is not None else None
    if window is not None:
        window.advance(now)  # what the next admission would do first: seconds past the window leave
    if limits.rpm_limit is not None:
        rpm = max(0, limits.rpm_limit - (window.requests if window is not None else 0))
        shares.append(rpm / limits.rpm_limit if limits.rpm_limit else 0.0)
    if limits.tpm_limit is not None:
        tpm = max(0, limits.tpm_limit - (window.tokens if window is not None else 0))
        shares.append(tpm / limits.tpm_limit if limits.tpm_limit else 0.0)
    return min(shares), Headroom(alias, team, budget, rpm, tpm)


def _least(old: tuple[float, Headroom] | None, new: tuple[float, Headroom]) -> tuple[float, Headroom]:
    """Two keys under one label pair: the least room of each kind."""
    if old is None:
        return new
    a, b = old[1], new[1]
    return min(old[0], new[0]), Headroom(
        a.key_alias,
        a.team,
        _min(a.budget_remaining_usd, b.budget_remaining_usd),
        _min(a.rpm_headroom, b.rpm_headroom),
        _min(a.tpm_headroom, b.tpm_headroom),
    )


def _min(a: N | None, b: N | None) -> N | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _nearest(found: Iterable[tuple[float, Headroom]], limit: int) -> tuple[Headroom, ...]:
    ranked = sorted(found, key=lambda item: (item[0], item[1].labels))[:limit]
    return tuple(sorted((room for _, room in ranked), key=lambda room: room.labels))


__all__ = ["UNNAMED", "Headroom", "headroom"]
