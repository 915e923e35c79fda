"""Budget durations: parsing, calendar months, and exact resets on a fixed grid."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import trio

from gateway_trio.control.durations import Duration, add_months, next_reset, parse_duration, reset_after
from gateway_trio.control.ledger import TrioUnixClock


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()


def as_utc(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, timezone.utc)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("10m", 600), ("1h", 3600), ("1d", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400), ("2w", 14 * 86400),
])
def test_fixed_durations_parse_to_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text).seconds == seconds
    assert next_reset(1000.0, text) == 1000.0 + seconds


def test_a_month_has_no_fixed_length() -> None:
    assert parse_duration("1mo") == Duration(1, "mo")
    assert parse_duration("1mo").seconds is None


@pytest.mark.parametrize("text", ["", "d", "1", "1y", "1.5d", "-1d", "0d", "1 d", "1mon", "1D"])
def test_a_bad_duration_is_a_value_error_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


def test_month_ends_clamp_to_the_shorter_month() -> None:
    assert as_utc(add_months(utc(2023, 1, 31, 10, 30), 1)) == datetime(2023, 2, 28, 10, 30, tzinfo=timezone.utc)
    assert as_utc(add_months(utc(2024, 1, 31), 1)) == datetime(2024, 2, 29, tzinfo=timezone.utc)  # leap year
    assert as_utc(add_months(utc(2024, 3, 31), 1)) == datetime(2024, 4, 30, tzinfo=timezone.utc)
    assert as_utc(add_months(utc(2024, 12, 15), 1)) == datetime(2025, 1, 15, tzinfo=timezone.utc)
    assert as_utc(add_months(utc(2024, 2, 29), 12)) == datetime(2025, 2, 28, tzinfo=timezone.utc)
    assert as_utc(next_reset(utc(2023, 11, 30), "3mo")) == datetime(2024, 2, 29, tzinfo=timezone.utc)


def test_leap_day_in_fixed_units_is_a_plain_day() -> None:
    assert as_utc(next_reset(utc(2024, 2, 28, 12), "1d")) == datetime(2024, 2, 29, 12, tzinfo=timezone.utc)
    assert as_utc(next_reset(utc(2023, 2, 28, 12), "1d")) == datetime(2023, 3, 1, 12, tzinfo=timezone.utc)


def test_resets_follow_their_grid_when_periods_pass_without_a_call() -> None:
    reset_at = utc(2024, 5, 1, 10)
    assert reset_after(reset_at, "1d", reset_at) == utc(2024, 5, 2, 10)  # due exactly now
    assert reset_after(reset_at, "1d", utc(2024, 5, 4, 15)) == utc(2024, 5, 5, 10)
    assert reset_after(reset_at, "1mo", utc(2024, 8, 2)) == utc(2024, 9, 1, 10)
    assert reset_after(reset_at, "30s", reset_at + 95) == reset_at + 120


async def test_the_trio_unix_clock_runs_with_autojump(autojump_clock: trio.abc.Clock) -> None:
    clock = TrioUnixClock(start_unix=utc(2024, 1, 31, 23, 59))
    first = clock()
    assert first == utc(2024, 1, 31, 23, 59)
    await trio.sleep(3600)
    assert clock() == pytest.approx(first + 3600)
    assert next_reset(first, "1mo") == utc(2024, 2, 29, 23, 59)
