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

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from gateway_trio.control.ledger import Account
from gateway_trio.control.shared_ledger import AccountView
from gateway_trio.control.windows import SlidingWindow

if TYPE_CHECKING:
    from gateway_trio.control.plane import ControlPlane

UNNAMED = "unnamed"
WINDOW_S = 60.0  # the rpm/tpm windows' length
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


class _Limited(Protocol):
    """The fields a key record and a team record share: what their limits are."""

    max_budget: float | None
    budget_duration: str | None
    spend: float
    rpm_limit: int | None
    tpm_limit: int | None


# (the smallest share of a limit left, budget left, rpm left, tpm left): None where no such limit
_Room = tuple[float, float | None, int | None, int | None]


def headroom(plane: ControlPlane, max_series: int) -> tuple[tuple[Headroom, ...], tuple[Headroom, ...]]:
    """(keys, teams): the limited ones this instance knows, at most `max_series` of each.

    With `[redis]` up, an account is as the shared ledger's script last told this instance
    (at its latest admission here), not this instance's own ledger, which shared admissions
    do not fill.
    """
    ledger = plane.ledger
    now = ledger.clock()
    limits = plane.limits
    if limits is not None and limits.link.up:
        shared = limits.seen

        def account_of(level: str, entity: str) -> Account | None:
            found = shared.get((level, entity))
            return None if found is None else _as_account(*found, now)
    else:
        account_of = ledger.get
    keys: dict[tuple[str, str], _Room] = {}
    teams: dict[tuple[str, str], _Room] = {}
    for tenant in plane.keys.cached():
        key = tenant.key
        if key.max_budget is not None or key.rpm_limit is not None or key.tpm_limit is not None:
            labels = (key.key_alias or UNNAMED, key.team_id or "")
            room = _room(key, account_of("key", key.token), now)
            old = keys.get(labels)
            keys[labels] = room if old is None else _least(old, room)
        team = tenant.team
        if (
            team is not None
            and (team.max_budget is not None or team.rpm_limit is not None or team.tpm_limit is not None)
            and ("", team.team_id) not in teams
        ):
            teams["", team.team_id] = _room(team, account_of("team", team.team_id), now)
    return _nearest(keys, max_series), _nearest(teams, max_series)


def _room(limits: _Limited, account: Account | None, now: float) -> _Room:
    share = 1.0
    budget = rpm = tpm = None
    if limits.max_budget is not None:
        if account is None:
            spend = limits.spend
        else:
            spend = account.spend + account.reserved
            reset_at = account.reset_at
            if limits.budget_duration is not None and reset_at is not None and now >= reset_at:
                spend = account.reserved  # the period is over: the next admission resets it
        budget = max(0.0, limits.max_budget - spend)
        share = min(share, budget / limits.max_budget if limits.max_budget else 0.0)
    window = account.window if account is not None else None
    if window is not None:
        window.advance(now)  # what the next admission would do first: seconds past the window leave
    if limits.rpm_limit is not None:
        rpm = max(0, limits.rpm_limit - (window.requests if window is not None else 0))
        share = min(share, rpm / limits.rpm_limit if limits.rpm_limit else 0.0)
    if limits.tpm_limit is not None:
        tpm = max(0, limits.tpm_limit - (window.tokens if window is not None else 0))
        share = min(share, tpm / limits.tpm_limit if limits.tpm_limit else 0.0)
    return share, budget, rpm, tpm


def _as_account(seen_at: float, view: AccountView, now: float) -> Account:
    """A shared account's view, read like a local `Account`: its window as it was then, empty
    once a whole window has passed since (its calls have all left it by now)."""
    account = Account(view.spend, None, seen_at)
    if view.window is not None and now - seen_at < WINDOW_S:
        window = SlidingWindow()
        window.add(now, view.window.requests, view.window.tokens)
        account.window = window
    return account


def _least(a: _Room, b: _Room) -> _Room:
    """Two keys under one label pair: the least room of each kind."""
    return min(a[0], b[0]), _min(a[1], b[1]), _min(a[2], b[2]), _min(a[3], b[3])


def _min(a: N | None, b: N | None) -> N | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _nearest(found: dict[tuple[str, str], _Room], limit: int) -> tuple[Headroom, ...]:
    """The `limit` nearest a limit (the smallest share left), as Headroom in label order."""
    chosen = heapq.nsmallest(limit, found.items(), key=lambda item: (item[1][0], item[0]))
    return tuple(Headroom(alias, team, budget, rpm, tpm) for (alias, team), (_, budget, rpm, tpm) in sorted(chosen))


__all__ = ["UNNAMED", "Headroom", "headroom"]
