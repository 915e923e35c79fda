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
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from gateway_trio.actors.callbacks import CallbackCounters
from gateway_trio.channels.messages import RouterSnapshot
from gateway_trio.control.redis_client import LATENCY_BUCKETS, RedisCounters
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
    redis: RedisCounters | None = None  # None: no [redis] configured
    limits: tuple[int, int, int] = (0, 0, 0)  # shared admissions, local (Redis away), batches sent


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
        **_redis_of(gateway),
    )


def _redis_of(gateway: Gateway) -> dict[str, Any]:
    link, limits = gateway.redis, gateway.control.limits
    if link is None or limits is None:
        return {}
    return {"redis": link.counters(), "limits": (limits.shared_admissions, limits.local_admissions, limits.batches)}


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
        ):
            family = CounterMetricFamily(name, text)
            family.add_metric([], value)
            yield family

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
        for load in snapshot.router.loads:
            in_flight.add_metric([load.group, load.deployment_id], load.inflight)
            cooling.add_metric([load.group, load.deployment_id], 1.0 if load.cooling_down else 0.0)
        yield in_flight
        yield cooling
        if snapshot.redis is not None:
            yield from _redis_families(snapshot.redis, snapshot.limits)


def _redis_families(redis: RedisCounters, limits: tuple[int, int, int]) -> Iterator[Metric]:
    up = GaugeMetricFamily("gateway_redis_up", "1 while Redis answers (shared limits), 0 while it is away")
    up.add_metric([], 1.0 if redis.up else 0.0)
    yield up
    errors = CounterMetricFamily("gateway_redis_errors", "Redis commands that failed or timed out")
    errors.add_metric([], redis.errors)
    yield errors
    outages = CounterMetricFamily("gateway_redis_outages", "Times Redis was found away")
    outages.add_metric([], redis.outages)
    yield outages
    buckets = [(str(bound), count) for bound, count in zip(LATENCY_BUCKETS, redis.buckets)]
    buckets.append(("+Inf", redis.buckets[-1]))
    latency = HistogramMetricFamily("gateway_redis_round_trip_seconds", "Redis round trips (one per batch)",
                                    buckets=buckets, sum_value=redis.latency_sum)
    yield latency
    admissions = CounterMetricFamily("gateway_limit_admissions", "Limited calls decided, by where",
                                     labels=["where"])
    admissions.add_metric(["redis"], limits[0])
    admissions.add_metric(["local"], limits[1])
    yield admissions
    batches = CounterMetricFamily("gateway_redis_limit_batches", "Batches of admissions sent to Redis")
    batches.add_metric([], limits[2])
    yield batches


def snapshot_text(snapshot: GatewaySnapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))  # type: ignore[arg-type]
    return generate_latest(registry)


async def metrics_text(gateway: Gateway) -> bytes:
    """The Prometheus text of `gateway` now."""
    return snapshot_text(await gateway_snapshot(gateway))


__all__ = ["gateway_snapshot", "metrics_text", "snapshot_text"]
