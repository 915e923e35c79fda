"""The new /metrics families combine right across workers (`runtime.worker_samples` with GAUGE_MODES)."""

from __future__ import annotations

from typing import Any

from call_factory import chat_call
from harness import make_config

from gateway_trio.control.records import KeyRecord, Tenant
from gateway_trio.gateway import Gateway
from gateway_trio.routes.metrics import GAUGE_MODES, metric_families
from gateway_trio.runtime.worker_samples import WorkerSamples
from gateway_trio.spend.accounting import spend_record


def a_worker(spent: float, calls: int) -> Gateway:
    gateway = Gateway(make_config(models=[{"name": "x", "model": "mock/x"}]))
    record = KeyRecord(token="f" * 64, key_name="sk-...ffff", key_alias="checkout", max_budget=10.0, spend=spent)
    gateway.control.keys.put(record.token, Tenant(record))
    deployment = gateway.deployments[0]
    for _ in range(calls):
        call = chat_call()
        call.route, call.model_group, call.deployment = "/v1/chat/completions", "x", deployment
        gateway.pipeline.metrics.record(call, spend_record(call, "success", None), None)
    return gateway


def samples(metrics: list) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in metrics for s in family.samples}


async def test_counters_and_histograms_add_up_and_the_room_left_is_the_least(
    tmp_path: Any, autojump_clock: Any
) -> None:
    first = WorkerSamples(tmp_path, gauge_modes=GAUGE_MODES, worker="a")
    second = WorkerSamples(tmp_path, gauge_modes=GAUGE_MODES, worker="b")
    await second.publish(await metric_families(a_worker(spent=6.0, calls=2)))
    gateway = a_worker(spent=1.0, calls=3)
    combined = samples(await first.combined(await metric_families(gateway)))

    x = (("model_group", "x"), ("model_id", gateway.deployments[0].id))
    requests = (*x, ("route", "/v1/chat/completions"), ("status", "success"), ("error_class", "none"))
    assert combined["gateway_requests_total", tuple(sorted(requests))] == 5
    assert combined["gateway_request_duration_seconds_count", x] == 5
    assert combined["gateway_request_duration_seconds_bucket", tuple(sorted((*x, ("le", "+Inf"))))] == 5
    assert combined["gateway_key_budget_remaining_usd", (("key_alias", "checkout"), ("team", ""))] == 4.0
    assert combined["gateway_deployment_state", tuple(sorted((*x, ("state", "healthy"))))] == 1
