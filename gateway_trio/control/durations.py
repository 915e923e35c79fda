"""Budget durations ("30s", "10m", "1h", "1d", "7d", "30d", "1mo") and when a budget resets.

A budget resets on a fixed grid that starts at its first `budget_reset_at`: a daily budget
set at 10:00 resets at 10:00 every day, whenever the calls come, because admission checks
the reset exactly (SPEC §9) rather than a periodic job.  A month is a calendar month, as
dateutil's `relativedelta(months=1)` counts it: Jan 31 + 1mo is Feb 28 (29 in a leap year),
the day clamped to the month's length, the time of day kept.  The grid steps from the last
reset, so a budget anchored on the 31st resets on the 28th from February on; that is the
price of keeping one stored instant (`budget_reset_at`) and no separate anchor.

Units are LiteLLM's (`duration_in_seconds`): s, m, h, d, w, mo.  Everything is UTC.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"(\d+)(mo|s|m|h|d|w)")


@dataclass(frozen=True, slots=True)
class Duration:
    """A parsed duration: `count` of `unit`; months have no fixed length in seconds."""

    count: int
    unit: str  # "s" | "m" | "h" | "d" | "w" | "mo"

    @property
    def seconds(self) -> int | None:
        """The length in seconds, or None for months (their length depends on the date)."""
        per = _SECONDS.get(self.unit)
        return None if per is None else self.count * per

    def after(self, start_unix: float) -> float:
        """The instant one duration after `start_unix`."""
        seconds = self.seconds
        if seconds is not None:
            return start_unix + seconds
        return add_months(start_unix, self.count)

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


@lru_cache(maxsize=256)
def parse_duration(text: str) -> Duration:
    """Parse "30s", "1mo", ...; a malformed or zero duration is a ValueError naming it."""
    match = _PATTERN.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a count and one of s, m, h, d, w, mo (e.g. '30d', '1mo')")
    count = int(match.group(1))
    if count == 0:
        raise ValueError(f"invalid duration {text!r}: it must be longer than zero")
    return Duration(count, match.group(2))


def add_months(start_unix: float, months: int) -> float:
    """`start_unix` plus `months` calendar months in UTC, the day clamped to the month's end."""
    start = datetime.fromtimestamp(start_unix, timezone.utc)
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day).timestamp()


def next_reset(start_unix: float, duration: str | Duration) -> float:
    """When a budget whose period starts at `start_unix` resets next."""
    if isinstance(duration, str):
        duration = parse_duration(duration)
    return duration.after(start_unix)


def reset_after(reset_at: float, duration: str | Duration, now: float) -> float:
    """The first reset of the grid through `reset_at` that lies after `now` (`reset_at` <= `now`).

    Several periods may have passed without a call: the grid is followed, not restarted at
    `now`, so the reset keeps its time of day (or of month).
    """
    if isinstance(duration, str):
        duration = parse_duration(duration)
    seconds = duration.seconds
    if seconds is not None:
        periods = math.floor((now - reset_at) / seconds) + 1
        return reset_at + max(periods, 1) * seconds
    upcoming = duration.after(reset_at)
    while upcoming <= now:
        upcoming = duration.after(upcoming)
    return upcoming
