"""Fixed-bucket histograms and labelled counters for `/metrics`, cheap enough for every call.

prometheus-client's metric objects take a lock and build label children per observation; the
gateway records each call once, on one thread, and renders at scrape time from snapshots
(`routes.metrics`), so a plain list of counts and a `bisect` into preset bounds is all an
observation needs (well under a microsecond).  Bucket counts are kept per bucket, not
cumulative, and made cumulative only in `snapshot`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

# LLM calls take from tens of milliseconds (an embedding, a cached answer) to minutes (a long
# reasoning stream): buckets from 10 ms to 10 min, in seconds.
LLM_LATENCY_BUCKETS: tuple[float, ...] = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A histogram at one moment, as Prometheus shows it: cumulative (`le`, count), `+Inf` last."""

    buckets: tuple[tuple[str, int], ...]
    sum: float
    count: int


class Histogram:
    """Observations counted into fixed upper bounds (a value equal to a bound falls in it)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LLM_LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf only)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def snapshot(self) -> HistogramSnapshot:
        cumulative: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts):
            running += count
            cumulative.append((_le(bound), running))
        running += self.counts[-1]
        cumulative.append(("+Inf", running))
        return HistogramSnapshot(tuple(cumulative), self.sum, running)


def _le(bound: float) -> str:
    """A bound as Prometheus clients write `le` ("0.01", "1.0", "600.0")."""
    return repr(float(bound))


__all__ = ["LLM_LATENCY_BUCKETS", "Histogram", "HistogramSnapshot"]
