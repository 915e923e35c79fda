"""`pipeline.metrics`: one finished call folded into bounded counters and histograms."""

from __future__ import annotations

import time
from typing import Any

import pytest
import trio
from call_factory import chat_call

from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BudgetExceeded, GatewayError, UpstreamTimeout
from gateway_trio.hooks.exceptions import RateLimitError
from gateway_trio.pipeline.metrics import CallMetrics, error_class
from gateway_trio.spend.accounting import spend_record
from gateway_trio.spend.records import GuardrailRun

DEPLOYMENT = Deployment.from_config(ModelConfig(name="m", model="openai/m-1", api_base="http://upstream.invalid/v1"))


def routed_call(**fields: Any) -> Any:
    call = chat_call(**fields)
    call.route = "/v1/chat/completions"
    call.model_group = "m"
    call.deployment = DEPLOYMENT
    call.usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    return call


def requests_of(metrics: CallMetrics) -> dict[tuple[str, ...], int]:
    return dict(metrics.snapshot().requests)


def test_error_classes_are_the_gateways_own() -> None:
    class HookError(BudgetExceeded):  # a hook's own subclass
        pass

    class Surprise(Exception):
        pass

    assert error_class(None) == "none"
    assert error_class(UpstreamTimeout("slow")) == "UpstreamTimeout"
    assert error_class(HookError("x", retry_after=1)) == "BudgetExceeded"
    assert error_class(Surprise()) == "InternalError"
    assert error_class(GatewayError("plain")) == "GatewayError"
    assert error_class(RateLimitError("litellm's name")) == "RateLimitError"  # gateway_trio.hooks.exceptions


async def test_a_call_is_counted_once_under_bounded_labels(autojump_clock: Any) -> None:
    metrics = CallMetrics.configured(["/relay"], end_user_labels=False)
    call = routed_call(end_user="customer-1")
    metrics.started += 1
    await trio.sleep(2)  # two seconds on the upstream, then one in the gateway
    call.upstream_wait_s = 2.0
    await trio.sleep(1)
    metrics.record(call, spend_record(call, "success", None), None)

    odd = routed_call()
    odd.route = "/v1/chat/completions/../../secret-path"
    metrics.started += 1
    metrics.record(odd, spend_record(odd, "failure", UpstreamTimeout("late")), UpstreamTimeout("late"))

    assert requests_of(metrics) == {
        ("m", DEPLOYMENT.id, "/v1/chat/completions", "success", "none"): 1,
        ("m", DEPLOYMENT.id, "other", "failure", "UpstreamTimeout"): 1,
    }
    snapshot = metrics.snapshot()
    assert snapshot.in_flight == 0 and snapshot.request_labels[-1] == "error_class"
    (figures,) = snapshot.deployments
    assert figures.total.count == 2 and abs(figures.total.sum - 3.0) < 1e-6
    assert abs(figures.upstream.sum - 2.0) < 1e-6 and abs(figures.overhead.sum - 1.0) < 1e-6
    assert dict(figures.total.buckets)["2.5"] == 1 and dict(figures.total.buckets)["5.0"] == 2
    assert figures.ttft.count == 0  # not streams
    assert (figures.input_tokens, figures.output_tokens) == (6, 10)


async def test_a_streams_time_after_its_first_chunk_is_the_upstreams(autojump_clock: Any) -> None:
    metrics = CallMetrics()
    call = routed_call(stream=True)
    await trio.sleep(0.5)  # to the first chunk: 0.25 s the gateway's, 0.25 s the upstream's
    call.upstream_wait_s = 0.25
    call.first_chunk_at = trio.current_time()
    await trio.sleep(10)  # the stream
    metrics.record(call, spend_record(call, "success", None), None)
    (figures,) = metrics.snapshot().deployments
    assert abs(figures.upstream.sum - 10.25) < 1e-6 and abs(figures.overhead.sum - 0.25) < 1e-6
    assert figures.ttft.count == 1 and abs(figures.ttft.sum - 0.5) < 1e-6


async def test_end_user_label_only_when_configured(autojump_clock: Any) -> None:
    for labelled in (False, True):
        metrics = CallMetrics.configured([], end_user_labels=labelled)
        for user in ("a", "b", "c"):
            call = routed_call(end_user=user)
            metrics.record(call, spend_record(call, "success", None), None)
        assert len(requests_of(metrics)) == (3 if labelled else 1)


async def test_guardrail_runs_and_durations(autojump_clock: Any) -> None:
    metrics = CallMetrics()
    call = routed_call()
    call.guardrail_runs = [
        GuardrailRun("pii", "pre_call", "success", 0.0, 12.0),
        GuardrailRun("pii", "post_call", "blocked", 0.0, 30.0),
        GuardrailRun("slow", "pre_call", "not_run", 0.0, 0.0),
    ]
    metrics.record(call, spend_record(call, "failure", None), None)
    snapshot = metrics.snapshot()
    assert dict(snapshot.guardrail_runs) == {
        ("pii", "post_call", "blocked"): 1,
        ("pii", "pre_call", "success"): 1,
        ("slow", "pre_call", "not_run"): 1,
    }
    durations = dict(snapshot.guardrail_durations)
    assert set(durations) == {("pii", "pre_call"), ("pii", "post_call")}  # a run that did not run took no time
    assert abs(durations["pii", "post_call"].sum - 0.03) < 1e-9


async def test_recording_costs_a_few_microseconds() -> None:
    """Measures the per-call cost (printed with -s); the bound is loose so a busy machine passes."""
    metrics = CallMetrics.configured([], end_user_labels=False)
    call = routed_call(stream=True)
    call.first_chunk_at = trio.current_time()
    call.guardrail_runs = [GuardrailRun("pii", "pre_call", "success", 0.0, 1.0)]
    record = spend_record(call, "success", None)
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        metrics.record(call, record, None)
    per_call_us = (time.perf_counter() - started) / rounds * 1e6
    print(f"CallMetrics.record: {per_call_us:.2f} µs per call")
    assert per_call_us < 200
    assert requests_of(metrics) == {("m", DEPLOYMENT.id, "/v1/chat/completions", "success", "none"): rounds}


def test_the_metrics_section_is_strict() -> None:
    from harness import make_config

    from gateway_trio.config import ConfigError

    assert make_config(metrics={"end_user_labels": True, "max_key_series": 5}).metrics.max_key_series == 5
    assert make_config().metrics.end_user_labels is False
    for wrong in ({"end_user_label": True}, {"max_key_series": -1}):
        with pytest.raises(ConfigError, match="metrics"):
            make_config(metrics=wrong)
