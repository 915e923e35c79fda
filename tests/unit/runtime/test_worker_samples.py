"""Worker processes' metrics added up through their files (`runtime.worker_samples`)."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from gateway_trio.routes.metrics import families_text
from gateway_trio.runtime.worker_samples import WorkerSamples


def families(calls: int, in_flight: float, longest_stall: float, cooling: float) -> list:
    counter = CounterMetricFamily("gateway_calls", "Calls", labels=["status"])
    counter.add_metric(["success"], calls)
    counter.add_metric(["failure"], 1)
    load = GaugeMetricFamily("gateway_in_flight", "In flight")
    load.add_metric([], in_flight)
    stall = GaugeMetricFamily("gateway_longest", "Longest stall")
    stall.add_metric([], longest_stall)
    state = GaugeMetricFamily("gateway_cooling", "Cooling", labels=["model_id"])
    state.add_metric(["d1"], cooling)
    database = GaugeMetricFamily("gateway_database_up", "Up")
    database.add_metric([], 1 if calls < 5 else 0)
    latency = HistogramMetricFamily("gateway_latency_seconds", "Latency")
    latency.add_metric([], [("0.1", calls), ("+Inf", calls + 1)], sum_value=calls * 0.05)
    return [counter, load, stall, state, database, latency]


def samples(metrics: list) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in metrics for s in family.samples}


async def test_counters_histograms_and_gauges_add_up_and_max_gauges_take_the_largest(tmp_path):
    modes = {"gateway_longest": "max", "gateway_cooling": "max", "gateway_database_up": "min"}
    first = WorkerSamples(tmp_path, gauge_modes=modes, worker="a")
    second = WorkerSamples(tmp_path, gauge_modes=modes, worker="b")
    await second.publish(families(calls=7, in_flight=2, longest_stall=0.5, cooling=1))

    combined = samples(await first.combined(families(calls=3, in_flight=1, longest_stall=0.2, cooling=0)))

    assert combined[("gateway_calls_total", (("status", "success"),))] == 10
    assert combined[("gateway_calls_total", (("status", "failure"),))] == 2
    assert combined[("gateway_in_flight", ())] == 3
    assert combined[("gateway_longest", ())] == 0.5
    assert combined[("gateway_cooling", (("model_id", "d1"),))] == 1
    assert combined[("gateway_database_up", ())] == 0  # down in one worker (7 calls) is down
    assert combined[("gateway_latency_seconds_bucket", (("le", "+Inf"),))] == 12
    assert combined[("gateway_latency_seconds_count", ())] == 12
    assert combined[("gateway_latency_seconds_sum", ())] == 0.5
    # The combined families still render as Prometheus text.
    assert b'gateway_calls_total{status="success"} 10.0' in families_text(await first.combined(families(3, 1, 0.2, 0)))


async def test_a_scrape_leaves_what_it_showed_in_its_own_file_so_counters_never_go_back(tmp_path):
    # Worker a's periodic file says 5; a scrape on a sees 9 live.  A later scrape on b must not
    # show a's 5 again: a's scrape rewrote a's file first.
    first = WorkerSamples(tmp_path, worker="a")
    second = WorkerSamples(tmp_path, worker="b")
    await first.publish(families(5, 0, 0, 0))
    await second.publish(families(1, 0, 0, 0))

    on_first = samples(await first.combined(families(9, 0, 0, 0)))
    on_second = samples(await second.combined(families(1, 0, 0, 0)))

    key = ("gateway_calls_total", (("status", "success"),))
    assert on_first[key] == on_second[key] == 10


async def test_a_file_a_worker_left_unreadable_is_skipped_not_fatal(tmp_path):
    (tmp_path / "worker-gone.json").write_bytes(b"{not json")
    first = WorkerSamples(tmp_path, worker="a")
    combined = samples(await first.combined(families(4, 0, 0, 0)))
    assert combined[("gateway_calls_total", (("status", "success"),))] == 4
