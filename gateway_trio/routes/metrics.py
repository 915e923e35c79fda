"""`/metrics`: Prometheus text built at scrape time from snapshots the actors give.

Nothing is recorded per request beyond one dict increment in the pipeline.  A scrape first
asks each owner for a frozen snapshot of what it counts (the router through its inbox, so its
answer follows every outcome already queued; the others in one synchronous read), then builds
the text from those snapshots alone: nothing here reads an actor's live state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from gateway_trio.actors.callbacks import CallbackCounters
from gateway_trio.channels.messages import RouterSnapshot
from gateway_trio.runtime.logs import dropped_lines
from gateway_trio.runtime.worker_samples import GaugeMode, WorkerSamples
from gateway_trio.spend.writer import SpendCounters

if TYPE_CHECKING:
    from gateway_trio.gateway import Gateway


@dataclass(frozen=True, slots=True)
class GatewaySnapshot:
    """Everything one scrape shows, taken once."""

    finished: tuple[tuple[str, str, int], ...]
    callbacks: CallbackCounters
    hook_failures: tuple[tuple[str, int], ...]
    hooks_skipped: tuple[tuple[str, int], ...]
    stalls: tuple[float, int, float] | None  # threshold (s), stalls, longest (s)
    spend: SpendCounters
    invalid_usage: tuple[tuple[str, int], ...]
    router: RouterSnapshot
    log_lines_dropped: int
    database: DatabaseSnapshot | None = None


@dataclass(frozen=True, slots=True)
class DatabaseSnapshot:
    """The database's health: up (its last statement answered), errors, round-trip times."""

    up: bool
    errors: int
    buckets: tuple[tuple[str, int], ...]  # cumulative (le, count), +Inf last
    total_s: float


async def gateway_snapshot(gateway: Gateway) -> GatewaySnapshot:
    router = await gateway.router.snapshot()  # first: the only one that waits
    callbacks = gateway.callbacks.counters()
    stalls = gateway.stalls
    return GatewaySnapshot(
        finished=gateway.pipeline.finished_counts(),
        callbacks=callbacks,
        hook_failures=tuple(sorted((gateway.hooks.failures + Counter(callbacks.failures)).items())),
        hooks_skipped=tuple(sorted(gateway.hooks.skipped.items())),
        stalls=None if stalls is None else (stalls.threshold_s, stalls.stalls, stalls.longest_s),
        spend=gateway.spend.counters(),
        invalid_usage=tuple(sorted((i, p.check_usage.invalid) for i, p in gateway.deployment_actors.items())),
        router=router,
        log_lines_dropped=dropped_lines(),
        database=database_snapshot(gateway),
    )


def database_snapshot(gateway: Gateway) -> DatabaseSnapshot:
    database = gateway.database
    health = database.health
    return DatabaseSnapshot(database.is_up, health.errors, tuple(health.cumulative()), health.total_s)


class SnapshotCollector:
    """The metric families of one snapshot."""

    def __init__(self, snapshot: GatewaySnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        calls = CounterMetricFamily("gateway_calls", "Calls finished, by call type and status",
                                    labels=["call_type", "status"])
        for call_type, status, count in snapshot.finished:
            calls.add_metric([call_type, status], count)
        yield calls

        dropped = CounterMetricFamily("gateway_callback_events_dropped",
                                      "Logging events dropped (a full mailbox, or not delivered by shutdown)")
        dropped.add_metric([], snapshot.callbacks.dropped)
        yield dropped
        at_shutdown = CounterMetricFamily("gateway_callback_events_dropped_at_shutdown",
                                          "Logging events shutdown could not deliver to hooks in time")
        at_shutdown.add_metric([], snapshot.callbacks.dropped_at_shutdown)
        yield at_shutdown

        failures = CounterMetricFamily("gateway_hook_failures", "Hook calls that raised or timed out",
                                       labels=["hook"])
        for name, count in snapshot.hook_failures:
            failures.add_metric([name], count)
        yield failures

        skipped = CounterMetricFamily("gateway_stream_hooks_skipped",
                                      "Per-chunk hooks skipped for the rest of a stream after a timeout",
                                      labels=["hook"])
        for name, count in snapshot.hooks_skipped:
            skipped.add_metric([name], count)
        yield skipped

        if snapshot.stalls is not None:
            threshold_s, stalls, longest_s = snapshot.stalls
            count = CounterMetricFamily("gateway_event_loop_stalls",
                                        f"Times a task held the event loop {threshold_s * 1000:g} ms or more")
            count.add_metric([], stalls)
            yield count
            longest = GaugeMetricFamily("gateway_event_loop_longest_stall_seconds", "The longest event-loop stall seen")
            longest.add_metric([], longest_s)
            yield longest

        spend = snapshot.spend
        for name, value, text in (
            ("gateway_spend_records_written", spend.written, "Spend records written"),
            ("gateway_spend_records_dropped", spend.dropped, "Spend records dropped"),
            ("gateway_spend_write_failures", spend.failed_writes, "Failed spend batch writes"),
            ("gateway_spend_records_unwritable", spend.unwritable, "Spend records the store refused (logged, not retried)"),
            ("gateway_spend_records_spooled", spend.spooled, "Spend records spooled to disk while the database was away"),
            ("gateway_spend_records_replayed", spend.replayed, "Spooled spend records written once it came back"),
        ):
            family = CounterMetricFamily(name, text)
            family.add_metric([], value)
            yield family

        log_drops = CounterMetricFamily("gateway_log_lines_dropped", "Log lines dropped: the queue to stderr was full")
        log_drops.add_metric([], snapshot.log_lines_dropped)
        yield log_drops

        database = snapshot.database
        if database is not None:
            up = GaugeMetricFamily("gateway_database_up", "1 while the database answers its statements")
            up.add_metric([], 1.0 if database.up else 0.0)
            yield up
            errors = CounterMetricFamily("gateway_database_errors", "Database statements that got no answer")
            errors.add_metric([], database.errors)
            yield errors
            latency = HistogramMetricFamily("gateway_database_latency_seconds", "Database round-trip time (PostgreSQL)")
            latency.add_metric([], [(le, float(count)) for le, count in database.buckets], database.total_s)
            yield latency

        bad_usage = CounterMetricFamily("gateway_upstream_usage_invalid",
                                        "Upstream replies whose usage held a count that was not a token count",
                                        labels=["model_id"])
        for model_id, invalid in snapshot.invalid_usage:
            bad_usage.add_metric([model_id], invalid)
        yield bad_usage

        in_flight = GaugeMetricFamily("gateway_deployment_in_flight", "Calls in flight per deployment",
                                      labels=["model_group", "model_id"])
        cooling = GaugeMetricFamily("gateway_deployment_cooling_down", "1 while a deployment cools down",
                                    labels=["model_group", "model_id"])
        unhealthy = GaugeMetricFamily("gateway_deployment_unhealthy",
                                      "1 while the background health check finds a deployment down",
                                      labels=["model_group", "model_id"])
        for load in snapshot.router.loads:
            in_flight.add_metric([load.group, load.deployment_id], load.inflight)
            cooling.add_metric([load.group, load.deployment_id], 1.0 if load.cooling_down else 0.0)
            unhealthy.add_metric([load.group, load.deployment_id], 1.0 if load.unhealthy else 0.0)
        yield in_flight
        yield cooling
        yield unhealthy


# Gauges that workers do not add up when /metrics combines them (`runtime.worker_samples`):
# the longest stall of any worker, a deployment cooling down in any worker, the database up in all.
GAUGE_MODES: dict[str, GaugeMode] = {
    "gateway_event_loop_longest_stall_seconds": "max",
    "gateway_deployment_cooling_down": "max",
    "gateway_deployment_unhealthy": "max",
    "gateway_database_up": "min",
}


class FamiliesCollector:
    """Families already built, for a registry to render."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def families_text(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FamiliesCollector(families))  # type: ignore[arg-type]
    return generate_latest(registry)


def snapshot_text(snapshot: GatewaySnapshot) -> bytes:
    return families_text(list(SnapshotCollector(snapshot).collect()))


async def metric_families(gateway: Gateway) -> list[Metric]:
    """This process's families now."""
    return list(SnapshotCollector(await gateway_snapshot(gateway)).collect())


async def metrics_text(gateway: Gateway, workers: WorkerSamples | None = None) -> bytes:
    """The Prometheus text of `gateway` now: of every worker's gateway added up, with `workers`."""
    families = await metric_families(gateway)
    if workers is not None:
        families = await workers.combined(families)
    return families_text(families)


__all__ = ["GAUGE_MODES", "gateway_snapshot", "metric_families", "metrics_text", "snapshot_text"]
