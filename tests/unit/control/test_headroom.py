"""`control.headroom`: the room left under each limited key's and team's limits, bounded series."""

from __future__ import annotations

from typing import Any

from gateway_trio.auth import Authenticator
from gateway_trio.control.estimate import PriceBook, WorstCase
from gateway_trio.control.headroom import headroom
from gateway_trio.control.ledger import Claim
from gateway_trio.control.plane import ControlPlane
from gateway_trio.control.records import KeyRecord, TeamRecord, Tenant


def plane_with(*tenants: Tenant) -> ControlPlane:
    plane = ControlPlane(Authenticator(None), PriceBook({}))
    for tenant in tenants:
        plane.keys.put(tenant.key.token, tenant)
    return plane


def key(token: str, **fields: Any) -> KeyRecord:
    return KeyRecord(token=token, key_name=f"sk-...{token[-4:]}", **fields)


async def test_the_live_spend_reservations_and_window_count(autojump_clock: Any) -> None:
    team = TeamRecord(team_id="shop", max_budget=100.0, tpm_limit=1000)
    record = key("a" * 64, key_alias="checkout", team_id="shop", max_budget=10.0, rpm_limit=5, spend=1.0)
    plane = plane_with(Tenant(record, team))
    claims = [
        Claim("key", record.token, "key", record.spend, record.max_budget, rpm_limit=record.rpm_limit),
        Claim("team", "shop", "team", 0.0, team.max_budget, tpm_limit=team.tpm_limit),
    ]
    verdict = plane.ledger.admit(claims, WorstCase(prompt_tokens=10, tokens=50, cost=2.0))
    assert verdict.reservation is not None  # in flight: 2.0 reserved, one request and 50 tokens counted
    keys, teams = headroom(plane, 100)
    (room,) = keys
    assert (room.key_alias, room.team, room.budget_remaining_usd, room.rpm_headroom, room.tpm_headroom) == (
        "checkout",
        "shop",
        7.0,
        4,
        None,
    )
    (team_room,) = teams
    assert (team_room.key_alias, team_room.team, team_room.budget_remaining_usd, team_room.tpm_headroom) == (
        "",
        "shop",
        98.0,
        950,
    )
    verdict.reservation.settle(0.5, tokens=20)
    (room,), (team_room,) = headroom(plane, 100)
    assert room.budget_remaining_usd == 8.5 and team_room.tpm_headroom == 980


async def test_unlimited_keys_are_left_out_and_unnamed_ones_share_the_least_room(autojump_clock: Any) -> None:
    plane = plane_with(
        Tenant(key("1" * 64)),  # no limit: no series
        Tenant(key("2" * 64, max_budget=10.0, spend=4.0)),
        Tenant(key("3" * 64, max_budget=10.0, spend=9.0)),
    )
    keys, teams = headroom(plane, 100)
    assert [(r.key_alias, r.team, r.budget_remaining_usd) for r in keys] == [("unnamed", "", 1.0)]
    assert teams == ()


async def test_at_most_max_series_keys_those_nearest_a_limit_first(autojump_clock: Any) -> None:
    tenants = [Tenant(key(f"{n:064x}", key_alias=f"k{n}", max_budget=100.0, spend=float(n))) for n in range(50)]
    plane = plane_with(*tenants)
    keys, _ = headroom(plane, 5)
    assert sorted(r.key_alias for r in keys) == ["k45", "k46", "k47", "k48", "k49"]
    assert headroom(plane, 0) == ((), ())
