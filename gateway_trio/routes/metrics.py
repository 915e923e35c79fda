"""`/metrics`: Prometheus text built at scrape time from snapshots the actors give.

Per request the pipeline records only what `pipeline.metrics` folds in when the call finishes
(counters and fixed-bucket histograms under bounded labels).  A scrape first
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
from gateway_trio.control.headroom import Headroom, headroom
from gateway_trio.control.redis_client import LATENCY_BUCKETS, RedisCounters
from gateway_trio.pipeline.metrics import CallMetricsSnapshot
from gateway_trio.runtime.histogram import HistogramSnapshot
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
    router_outcomes_dropped: int = 0
    calls: CallMetricsSnapshot | None = None
    key_headroom: tuple[Headroom, ...] = ()
    team_headroom: tuple[Headroom, ...] = ()
    hook_runs: tuple[tuple[tuple[str, str], int], ...] = ()  # (hook, outcome): in-line hooks and callbacks
    hook_durations: tuple[tuple[str, HistogramSnapshot], ...] = ()
    database: DatabaseSnapshot | None = None
    redis: RedisCounters | None = None  # None: no [redis] configured
    limits: tuple[int, int, int] = (0, 0, 0)  # shared admissions, local (Redis away), batches sent
    otel_spans_dropped: int = 0  # `[otel]`: spans dropped because the export queue was full


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
    keys, teams = headroom(gateway.control, gateway.config.metrics.max_key_series)
    hooks = gateway.hooks
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
        router_outcomes_dropped=gateway.router.dropped_outcomes,
        calls=gateway.pipeline.metrics.snapshot(),
        key_headroom=keys,
        team_headroom=teams,
        hook_runs=tuple(sorted((Counter(hooks.runs) + Counter(dict(callbacks.runs))).items())),
        hook_durations=tuple(sorted(
            [(name, h.snapshot()) for name, h in hooks.durations.items()] + list(callbacks.durations)
        )),
        database=database_snapshot(gateway),
        otel_spans_dropped=gateway.tracing.dropped if gateway.tracing is not None else 0,
        **_redis_of(gateway),
    )


def database_snapshot(gateway: Gateway) -> DatabaseSnapshot:
    database = gateway.database
    health = database.health
    return DatabaseSnapshot(database.is_up, health.errors, tuple(health.cumulative()), health.total_s)


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
            ("gateway_spend_records_spooled", spend.spooled, "Spend records spooled to disk while the database was away"),
            ("gateway_spend_records_replayed", spend.replayed, "Spooled spend records written once it came back"),
        ):
            family = CounterMetricFamily(name, text)
            family.add_metric([], value)
            yield family

        spans_dropped = CounterMetricFamily("gateway_otel_spans_dropped",
                                            "OpenTelemetry spans dropped: the export queue was full")
        spans_dropped.add_metric([], snapshot.otel_spans_dropped)
        yield spans_dropped

        log_drops = CounterMetricFamily("gateway_log_lines_dropped", "Log lines dropped: the queue to stderr was full")
        log_drops.add_metric([], snapshot.log_lines_dropped)
        yield log_drops
        outcomes = CounterMetricFamily("gateway_router_outcomes_dropped",
                                       "Attempt outcomes the router never heard of: its inbox was full")
        outcomes.add_metric([], snapshot.router_outcomes_dropped)
        yield outcomes

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

        yield from deployment_families(snapshot.router)
        if snapshot.calls is not None:
            yield from call_families(snapshot.calls)
        yield from headroom_families(snapshot.key_headroom, snapshot.team_headroom)
        yield from hook_families(snapshot.hook_runs, snapshot.hook_durations)

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


DEPLOYMENT_STATES = ("healthy", "cooling", "unhealthy")
DEPLOYMENT = ["model_group", "model_id"]


def deployment_families(router: RouterSnapshot) -> Iterator[Metric]:
    """Each deployment's state now and its cooldowns so far, as the router sees them."""
    state = GaugeMetricFamily("gateway_deployment_state",
                              "1 for the state a deployment is in: healthy, cooling (cooled down), or unhealthy "
                              "(failed in the last minute, not cooled down yet)",
                              labels=["model_group", "model_id", "state"])
    cooldowns = CounterMetricFamily("gateway_cooldowns", "Times a deployment was cooled down", labels=DEPLOYMENT)
    for load in router.loads:
        labels = [load.group, load.deployment_id]
        now = "cooling" if load.cooling_down else "unhealthy" if load.failing or load.unhealthy else "healthy"
        for name in DEPLOYMENT_STATES:
            state.add_metric([*labels, name], 1.0 if name == now else 0.0)
        cooldowns.add_metric(labels, load.cooldowns)
    yield state
    yield cooldowns


def _histogram(family: HistogramMetricFamily, labels: list[str], figures: HistogramSnapshot) -> None:
    family.add_metric(labels, [(le, float(count)) for le, count in figures.buckets], figures.sum)


def call_families(calls: CallMetricsSnapshot) -> Iterator[Metric]:
    """The per-call families (`pipeline.metrics`)."""
    requests = CounterMetricFamily("gateway_requests", "Calls finished, by model group, deployment, route, status "
                                   "and error class", labels=list(calls.request_labels))
    for labels, count in calls.requests:
        requests.add_metric(list(labels), count)
    yield requests

    in_flight = GaugeMetricFamily("gateway_in_flight", "Calls in the pipeline now (streams until their end)")
    in_flight.add_metric([], calls.in_flight)
    yield in_flight

    histograms = (
        ("gateway_request_duration_seconds", "Total time of a call, from its arrival to its last byte", "total"),
        ("gateway_upstream_duration_seconds",
         "Time a call spent on upstreams: its attempts, their retry backoffs, and a stream after its first chunk",
         "upstream"),
        ("gateway_overhead_duration_seconds", "Time a call spent in the gateway itself (total minus upstream)",
         "overhead"),
        ("gateway_time_to_first_token_seconds", "Time to a completed stream's first chunk", "ttft"),
    )
    for name, text, attribute in histograms:
        family = HistogramMetricFamily(name, text, labels=DEPLOYMENT)
        for deployment in calls.deployments:
            figures = getattr(deployment, attribute)
            if figures.count or attribute == "total":  # no upstream time where no upstream was tried
                _histogram(family, [deployment.model_group, deployment.model_id], figures)
        yield family

    counters = (
        ("gateway_input_tokens", "Input (prompt) tokens of finished calls", "input_tokens"),
        ("gateway_output_tokens", "Output (completion) tokens of finished calls", "output_tokens"),
        ("gateway_spend_usd", "What finished calls cost, in US dollars", "spend"),
        ("gateway_retries", "Retries of upstream attempts", "retries"),
        ("gateway_fallbacks", "Fallbacks to another model group", "fallbacks"),
    )
    for name, text, attribute in counters:
        family = CounterMetricFamily(name, text, labels=DEPLOYMENT)
        for deployment in calls.deployments:
            family.add_metric([deployment.model_group, deployment.model_id], getattr(deployment, attribute))
        yield family

    runs = CounterMetricFamily("gateway_guardrail_runs", "Guardrail runs, by guardrail, mode and status "
                               "(success, blocked, failed, not_run)", labels=["guardrail", "mode", "status"])
    for labels, count in calls.guardrail_runs:
        runs.add_metric(list(labels), count)
    yield runs
    durations = HistogramMetricFamily("gateway_guardrail_duration_seconds", "How long a guardrail run took",
                                      labels=["guardrail", "mode"])
    for labels, figures in calls.guardrail_durations:
        _histogram(durations, list(labels), figures)
    yield durations


def headroom_families(keys: tuple[Headroom, ...], teams: tuple[Headroom, ...]) -> Iterator[Metric]:
    """Budget and rate-limit room left per key alias and team (`control.headroom`)."""
    for prefix, rooms, labels in (("gateway_key", keys, ["key_alias", "team"]), ("gateway_team", teams, ["team"])):
        budget = GaugeMetricFamily(f"{prefix}_budget_remaining_usd", "Budget left (max_budget minus spend and "
                                   "what calls in flight reserved), in US dollars", labels=labels)
        rpm = GaugeMetricFamily(f"{prefix}_rpm_headroom", "Requests the rpm limit still allows in the last 60 s",
                                labels=labels)
        tpm = GaugeMetricFamily(f"{prefix}_tpm_headroom", "Tokens the tpm limit still allows in the last 60 s",
                                labels=labels)
        for room in rooms:
            values = [room.key_alias, room.team] if len(labels) == 2 else [room.team]
            if room.budget_remaining_usd is not None:
                budget.add_metric(values, room.budget_remaining_usd)
            if room.rpm_headroom is not None:
                rpm.add_metric(values, room.rpm_headroom)
            if room.tpm_headroom is not None:
                tpm.add_metric(values, room.tpm_headroom)
        yield budget
        yield rpm
        yield tpm


def hook_families(runs: tuple[tuple[tuple[str, str], int], ...],
                  durations: tuple[tuple[str, HistogramSnapshot], ...]) -> Iterator[Metric]:
    family = CounterMetricFamily("gateway_hook_runs", "Hook and callback runs, by outcome (ran, failed, "
                                 "timed_out, raised: a pre-call or success hook's rejection)", labels=["hook", "outcome"])
    for labels, count in runs:
        family.add_metric(list(labels), count)
    yield family
    timing = HistogramMetricFamily("gateway_hook_duration_seconds", "How long a hook or callback run took",
                                   labels=["hook"])
    for name, figures in durations:
        _histogram(timing, [name], figures)
    yield timing


# Gauges that workers do not add up when /metrics combines them (`runtime.worker_samples`):
# the longest stall of any worker, a deployment cooling down in any worker, the database up in all.
# A deployment's state is 1 where any worker sees it so; the room left under a limit is the least
# any worker sees (the same in all with Redis; without, each worker's own count).
GAUGE_MODES: dict[str, GaugeMode] = {
    "gateway_event_loop_longest_stall_seconds": "max",
    "gateway_deployment_cooling_down": "max",
    "gateway_deployment_state": "max",
    **{f"gateway_{who}_{what}": "min" for who in ("key", "team")
       for what in ("budget_remaining_usd", "rpm_headroom", "tpm_headroom")},
    "gateway_deployment_unhealthy": "max",
    "gateway_database_up": "min",
    "gateway_redis_up": "min",
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
