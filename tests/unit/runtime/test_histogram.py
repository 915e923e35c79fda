"""Fixed-bucket histograms: Prometheus's `le` semantics, cumulative snapshots, LLM-sized buckets."""

from gateway_trio.runtime.histogram import LLM_LATENCY_BUCKETS, Histogram


def test_the_buckets_span_ten_milliseconds_to_ten_minutes() -> None:
    assert LLM_LATENCY_BUCKETS[0] == 0.01 and LLM_LATENCY_BUCKETS[-1] == 600.0
    assert list(LLM_LATENCY_BUCKETS) == sorted(set(LLM_LATENCY_BUCKETS))


def test_a_value_on_a_bound_falls_in_that_bucket_and_snapshots_are_cumulative() -> None:
    histogram = Histogram((0.1, 1.0, 10.0))
    for seconds in (0.05, 0.1, 0.5, 1.0, 3.0, 11.0):
        histogram.observe(seconds)
    snapshot = histogram.snapshot()
    assert snapshot.buckets == (("0.1", 2), ("1.0", 4), ("10.0", 5), ("+Inf", 6))
    assert snapshot.count == histogram.count == 6
    assert snapshot.sum == 0.05 + 0.1 + 0.5 + 1.0 + 3.0 + 11.0


def test_a_snapshot_does_not_follow_later_observations() -> None:
    histogram = Histogram()
    histogram.observe(0.2)
    snapshot = histogram.snapshot()
    histogram.observe(700.0)  # past the last bound: only +Inf
    assert snapshot.count == 1 and snapshot.buckets[-1] == ("+Inf", 1)
    later = histogram.snapshot()
    assert later.buckets[-2] == ("600.0", 1) and later.buckets[-1] == ("+Inf", 2)
    assert len(later.buckets) == len(LLM_LATENCY_BUCKETS) + 1
