"""`/metrics`: Prometheus text built at scrape time from the actors' own counters.

Nothing is recorded per request beyond one dict increment in the pipeline: the collector reads
what the actors already count (dropped events, hook failures, spend writes, load) when scraped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from gateway_trio.gateway import Gateway


class GatewayCollector:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        gateway = self.gateway
        calls = CounterMetricFamily("gateway_calls", "Calls finished, by call type and status",
                                    labels=["call_type", "status"])
        for (call_type, status), count in sorted(gateway.pipeline.finished.items()):
            calls.add_metric([call_type, status], count)
        yield calls

        dropped = CounterMetricFamily("gateway_callback_events_dropped",
                                      "Logging events dropped (a full mailbox, or not delivered by shutdown)")
        dropped.add_metric([], gateway.callbacks.dropped)
        yield dropped
        at_shutdown = CounterMetricFamily("gateway_callback_events_dropped_at_shutdown",
                                          "Logging events shutdown could not deliver to hooks in time")
        at_shutdown.add_metric([], gateway.callbacks.dropped_at_shutdown)
        yield at_shutdown

        failures = CounterMetricFamily("gateway_hook_failures", "Hook calls that raised or timed out",
                                       labels=["hook"])
        for name, count in sorted((gateway.hooks.failures + gateway.callbacks.failures).items()):
            failures.add_metric([name], count)
        yield failures

        skipped = CounterMetricFamily("gateway_stream_hooks_skipped",
                                      "Per-chunk hooks skipped for the rest of a stream after a timeout",
                                      labels=["hook"])
        for name, count in sorted(gateway.hooks.skipped.items()):
            skipped.add_metric([name], count)
        yield skipped

        stalls = gateway.stalls
        if stalls is not None:
            count = CounterMetricFamily("gateway_event_loop_stalls",
                                        f"Times a task held the event loop {stalls.threshold_s * 1000:g} ms or more")
            count.add_metric([], stalls.stalls)
            yield count
            longest = GaugeMetricFamily("gateway_event_loop_longest_stall_seconds", "The longest event-loop stall seen")
            longest.add_metric([], stalls.longest_s)
            yield longest

        spend = gateway.spend
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
        for model_id, actor in sorted(gateway.deployment_actors.items()):
            bad_usage.add_metric([model_id], actor.check_usage.invalid)
        yield bad_usage

        in_flight = GaugeMetricFamily("gateway_deployment_in_flight", "Calls in flight per deployment",
                                      labels=["model_group", "model_id"])
        cooling = GaugeMetricFamily("gateway_deployment_cooling_down", "1 while a deployment cools down",
                                    labels=["model_group", "model_id"])
        router = gateway.router
        now = trio.current_time()
        for group, deployments in sorted(router.groups.items()):
            for deployment in deployments:
                load = router.loads[deployment.id]
                in_flight.add_metric([group, deployment.id], load.inflight)
                cooling.add_metric([group, deployment.id], 1.0 if load.cooled_until > now else 0.0)
        yield in_flight
        yield cooling


def metrics_text(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def registry_for(gateway: Gateway) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway))  # type: ignore[arg-type]
    return registry


__all__ = ["registry_for", "metrics_text"]
