"""`/metrics` an SRE can alert on (SPEC §11): the families, their values, bounded labels, names."""

from __future__ import annotations

from typing import Any

import trio
from harness import chat, client_and_gateway, eventually, make_config
from prometheus_client.parser import text_string_to_metric_families

from gateway_trio.testing import Behavior

KEY = "sk-metrics-test-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
SECRET_TEXT = "the code is SECRET-42"

FAMILIES = {
    "gateway_requests": "counter",
    "gateway_request_duration_seconds": "histogram",
    "gateway_upstream_duration_seconds": "histogram",
    "gateway_overhead_duration_seconds": "histogram",
    "gateway_time_to_first_token_seconds": "histogram",
    "gateway_input_tokens": "counter",
    "gateway_output_tokens": "counter",
    "gateway_spend_usd": "counter",
    "gateway_retries": "counter",
    "gateway_fallbacks": "counter",
    "gateway_cooldowns": "counter",
    "gateway_deployment_state": "gauge",
    "gateway_in_flight": "gauge",
    "gateway_key_budget_remaining_usd": "gauge",
    "gateway_key_rpm_headroom": "gauge",
    "gateway_key_tpm_headroom": "gauge",
    "gateway_team_budget_remaining_usd": "gauge",
    "gateway_team_rpm_headroom": "gauge",
    "gateway_team_tpm_headroom": "gauge",
    "gateway_guardrail_runs": "counter",
    "gateway_guardrail_duration_seconds": "histogram",
    "gateway_hook_runs": "counter",
    "gateway_hook_duration_seconds": "histogram",
    "gateway_hook_failures": "counter",
    "gateway_callback_events_dropped": "counter",
    "gateway_event_loop_stalls": "counter",
    "gateway_database_up": "gauge",
    "gateway_database_latency_seconds": "histogram",
    # kept from before: tests and dashboards read them
    "gateway_calls": "counter",
    "gateway_deployment_in_flight": "gauge",
    "gateway_deployment_cooling_down": "gauge",
}


def openai_model(upstream: Any, name: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": f"openai/{model}",
        "api_base": f"{upstream.base_url}/v1",
        "api_key": "sk-up-x",
        **extra,
    }


def full_config(upstream: Any, **metrics: Any) -> Any:
    return make_config(
        models=[
            {
                "name": "x",
                "model": "mock/x",
                "guardrails": ["no-secrets"],
                "info": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002},
            },
            openai_model(upstream, "gpt", "flaky"),
            openai_model(upstream, "primary", "broken"),
            openai_model(upstream, "backup", "fine"),
        ],
        guardrails=[
            {"name": "no-secrets", "guardrail": "regex", "mode": "post_call", "params": {"patterns": ["SECRET-[0-9]+"]}}
        ],
        hooks={"callbacks": ["hook_classes:PreCallEditor", "hook_classes:Recorder"]},
        router={"num_retries": 1, "retry_backoff_s": 0.01, "allowed_fails": 100, "fallbacks": {"primary": ["backup"]}},
        keys=[
            {
                "key": KEY,
                "key_alias": "checkout",
                "team_id": "shop",
                "max_budget": 10,
                "rpm_limit": 100,
                "tpm_limit": 100_000,
            }
        ],
        teams=[{"team_id": "shop", "max_budget": 50, "rpm_limit": 1000}],
        metrics=metrics,
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found[name, tuple(sorted(labels.items()))]


def total(found: dict, name: str, **labels: str) -> float:
    """The sum over the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


async def test_every_family_after_a_success_a_failure_a_stream_a_retry_and_a_fallback(upstream: Any) -> None:
    upstream.behaviors["flaky"] = Behavior(status=500, fail_times=1)
    upstream.behaviors["broken"] = Behavior(status=500)
    async with client_and_gateway(full_config(upstream)) as (client, gateway):
        assert (await client.post("/v1/chat/completions", json=chat("x", "one two"), headers=AUTH)).status_code == 200
        stream = await client.post("/v1/chat/completions", json=chat("x", "a b c", stream=True), headers=AUTH)
        assert stream.status_code == 200
        assert (await client.post("/v1/chat/completions", json=chat("nope"), headers=AUTH)).status_code == 404
        blocked = await client.post("/v1/chat/completions", json=chat("x", SECRET_TEXT), headers=AUTH)
        assert blocked.status_code == 400
        rejected = await client.post("/chat/completions", json=chat("x", "reject me"), headers=AUTH)
        assert rejected.status_code == 403
        retried = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
        assert retried.headers["x-gateway-attempted-retries"] == "1"
        fell_back = await client.post("/v1/chat/completions", json=chat("primary"), headers=AUTH)
        assert fell_back.headers["x-gateway-attempted-fallbacks"] == "1"
        logged = "Recorder.async_log_success_event", "Recorder.async_log_failure_event"
        await eventually(lambda: sum(n for (hook, _), n in gateway.callbacks.runs.items() if hook in logged) == 7)
        text = (await client.get("/metrics")).text
        x_id = next(d.id for d in gateway.deployments if d.group == "x")
        gpt_id = next(d.id for d in gateway.deployments if d.group == "gpt")
        backup_id = next(d.id for d in gateway.deployments if d.group == "backup")

    kinds = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert {name: kinds.get(name) for name in FAMILIES} == FAMILIES
    found = samples(text)
    route = "/v1/chat/completions"
    x = {"model_group": "x", "model_id": x_id}

    # requests, by model group, deployment, route, status and error class
    assert value(found, "gateway_requests_total", **x, route=route, status="success", error_class="none") == 2
    assert (
        value(found, "gateway_requests_total", **x, route=route, status="failure", error_class="GuardrailBlocked") == 1
    )
    assert (
        value(
            found,
            "gateway_requests_total",
            model_group="",
            model_id="",
            route="/chat/completions",
            status="failure",
            error_class="Forbidden",
        )
        == 1
    )  # the pre-call hook's 403
    assert (
        value(
            found,
            "gateway_requests_total",
            model_group="",
            model_id="",
            route=route,
            status="failure",
            error_class="NotFound",
        )
        == 1
    )
    assert (
        value(
            found,
            "gateway_requests_total",
            model_group="gpt",
            model_id=gpt_id,
            route=route,
            status="success",
            error_class="none",
        )
        == 1
    )
    # a fallback is counted under the group asked for, and the deployment that answered
    assert (
        value(
            found,
            "gateway_requests_total",
            model_group="primary",
            model_id=backup_id,
            route=route,
            status="success",
            error_class="none",
        )
        == 1
    )
    assert total(found, "gateway_requests_total") == 7

    # latency histograms: every call has a total; the stream alone a time to first token
    assert total(found, "gateway_request_duration_seconds_count") == 7
    assert value(found, "gateway_request_duration_seconds_count", **x) == 3
    assert value(found, "gateway_request_duration_seconds_count", model_group="", model_id="") == 2  # 404, 403
    assert value(found, "gateway_time_to_first_token_seconds_count", **x) == 1
    assert value(found, "gateway_upstream_duration_seconds_count", **x) == 3
    assert ("gateway_upstream_duration_seconds_count", (("model_group", ""), ("model_id", ""))) not in found
    assert value(found, "gateway_overhead_duration_seconds_count", **x) == 3
    for name in ("request_duration", "upstream_duration", "overhead_duration", "time_to_first_token"):
        assert value(found, f"gateway_{name}_seconds_bucket", **x, le="+Inf") == value(
            found, f"gateway_{name}_seconds_count", **x
        )
        assert value(found, f"gateway_{name}_seconds_bucket", **x, le="600.0") <= value(
            found, f"gateway_{name}_seconds_count", **x
        )
        assert ("gateway_" + name + "_seconds_bucket", tuple(sorted({**x, "le": "0.01"}.items()))) in found
    upstream_s = value(found, "gateway_upstream_duration_seconds_sum", **x)
    overhead_s = value(found, "gateway_overhead_duration_seconds_sum", **x)
    assert upstream_s > 0 and overhead_s > 0
    assert upstream_s + overhead_s <= value(found, "gateway_request_duration_seconds_sum", **x) + 1e-9

    # tokens and spend: the mock counts a token a word (the two answered x calls, and the blocked one)
    input_tokens = value(found, "gateway_input_tokens_total", **x)
    output_tokens = value(found, "gateway_output_tokens_total", **x)
    assert input_tokens > 0 and output_tokens > 0
    assert abs(value(found, "gateway_spend_usd_total", **x) - (input_tokens * 0.001 + output_tokens * 0.002)) < 1e-9

    assert value(found, "gateway_retries_total", model_group="gpt", model_id=gpt_id) == 1
    assert value(found, "gateway_fallbacks_total", model_group="primary", model_id=backup_id) == 1
    assert total(found, "gateway_fallbacks_total") == 1
    assert value(found, "gateway_cooldowns_total", **x) == 0
    assert value(found, "gateway_deployment_state", **x, state="healthy") == 1
    assert value(found, "gateway_deployment_state", **x, state="cooling") == 0
    broken_id = next(
        ls for (n, ls), _ in found.items() if n == "gateway_deployment_state" and ("model_group", "primary") in ls
    )
    broken = dict(broken_id)
    # the broken deployment failed in the last minute, not enough to be cooled down (allowed_fails)
    assert (
        value(found, "gateway_deployment_state", model_group="primary", model_id=broken["model_id"], state="unhealthy")
        == 1
    )
    assert value(found, "gateway_in_flight") == 0

    # the key's and the team's room left: 7 calls of the key, one refused before admission (404?)
    rpm_left = value(found, "gateway_key_rpm_headroom", key_alias="checkout", team="shop")
    assert 93 <= rpm_left <= 94
    spent = value(found, "gateway_spend_usd_total", **x)
    assert (
        abs(value(found, "gateway_key_budget_remaining_usd", key_alias="checkout", team="shop") - (10 - spent)) < 1e-9
    )
    assert abs(value(found, "gateway_team_budget_remaining_usd", team="shop") - (50 - spent)) < 1e-9
    assert value(found, "gateway_team_rpm_headroom", team="shop") == 1000 - (100 - rpm_left)
    assert 0 < value(found, "gateway_key_tpm_headroom", key_alias="checkout", team="shop") < 100_000
    assert not any(n == "gateway_team_tpm_headroom" for n, _ in found)  # the team has no tpm limit

    # guardrail runs: the two answered x calls passed, the secret was blocked
    assert value(found, "gateway_guardrail_runs_total", guardrail="no-secrets", mode="post_call", status="success") == 2
    assert value(found, "gateway_guardrail_runs_total", guardrail="no-secrets", mode="post_call", status="blocked") == 1
    assert value(found, "gateway_guardrail_duration_seconds_count", guardrail="no-secrets", mode="post_call") == 3

    # hook runs: the pre-call hook ran on every call that reached the pipeline; one rejected
    hook = "PreCallEditor.async_pre_call_hook"
    assert value(found, "gateway_hook_runs_total", hook=hook, outcome="raised") == 1
    assert value(found, "gateway_hook_runs_total", hook=hook, outcome="ran") == 6
    assert value(found, "gateway_hook_duration_seconds_count", hook=hook) == 7
    # and the logging callbacks, delivered by the callback actor
    assert value(found, "gateway_hook_runs_total", hook="Recorder.async_log_success_event", outcome="ran") == 4
    assert value(found, "gateway_hook_runs_total", hook="Recorder.async_log_failure_event", outcome="ran") == 3
    assert value(found, "gateway_hook_duration_seconds_count", hook="Recorder.async_log_failure_event") == 3

    assert KEY not in text and "sk-up-x" not in text


async def test_a_thousand_end_users_add_no_series(upstream: Any) -> None:
    config = make_config(models=[{"name": "x", "model": "mock/x"}])
    async with client_and_gateway(config) as (client, _):

        async def calls(first: int, count: int) -> None:
            async def some(start: int) -> None:
                for n in range(start, first + count, 10):
                    body = chat("x", user=f"customer-{n}")
                    assert (await client.post("/v1/chat/completions", json=body)).status_code == 200

            async with trio.open_nursery() as nursery:
                for start in range(first, first + 10):
                    nursery.start_soon(some, start)

        await calls(0, 10)
        after_ten = samples((await client.get("/metrics")).text)
        await calls(10, 990)
        after_thousand_text = (await client.get("/metrics")).text
        after_thousand = samples(after_thousand_text)
    assert set(after_thousand) == set(after_ten)
    assert total(after_thousand, "gateway_requests_total") == 1000
    assert "customer-" not in after_thousand_text


async def test_end_user_labels_when_asked_for(upstream: Any) -> None:
    config = make_config(models=[{"name": "x", "model": "mock/x"}], metrics={"end_user_labels": True})
    async with client_and_gateway(config) as (client, _):
        for user in ("acme", "acme", "globex"):
            assert (await client.post("/v1/chat/completions", json=chat("x", user=user))).status_code == 200
        found = samples((await client.get("/metrics")).text)
    by_user = {dict(ls)["end_user"]: v for (n, ls), v in found.items() if n == "gateway_requests_total"}
    assert by_user == {"acme": 2, "globex": 1}


async def test_names_follow_the_prometheus_conventions(upstream: Any) -> None:
    upstream.behaviors["broken"] = Behavior(status=500)
    async with client_and_gateway(full_config(upstream)) as (client, _):
        await client.post("/v1/chat/completions", json=chat("x", stream=True), headers=AUTH)
        await client.post("/v1/chat/completions", json=chat("primary"), headers=AUTH)
        text = (await client.get("/metrics")).text
    families = list(text_string_to_metric_families(text))
    assert len(families) >= len(FAMILIES)
    for family in families:
        assert family.name.startswith("gateway_"), family.name
        assert "_ms" not in family.name and "milli" not in family.name, family.name  # base units
        if family.type == "counter":
            assert all(s.name == f"{family.name}_total" for s in family.samples), family.name
        else:
            assert not family.name.endswith("_total"), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name  # every histogram here is a duration
        if any(word in family.name for word in ("duration", "latency", "stall_seconds")):
            assert family.name.endswith("_seconds"), family.name
        for sample in family.samples:
            assert not {"api_key", "key", "token", "user", "end_user"} & set(sample.labels), sample


async def test_requests_refused_before_they_are_calls_are_counted(upstream: Any) -> None:
    master = "sk-master-metrics-0123456789"
    config = make_config(models=[{"name": "x", "model": "mock/x"}], server={"master_key": master})
    async with client_and_gateway(config) as (client, _):
        assert (await client.post("/v1/chat/completions", json=chat("x"))).status_code == 401
        bad = await client.post("/v1/embeddings", content=b"{not json", headers={"authorization": f"Bearer {master}"})
        assert bad.status_code == 400
        text = (await client.get("/metrics", headers={"authorization": f"Bearer {master}"})).text
    found = samples(text)
    refused = {"model_group": "", "model_id": "", "status": "failure"}
    assert value(found, "gateway_requests_total", **refused, route="/v1/chat/completions", error_class="AuthError") == 1
    assert value(found, "gateway_requests_total", **refused, route="/v1/embeddings", error_class="BadRequest") == 1
    assert total(found, "gateway_requests_total") == 2
    assert value(found, "gateway_router_outcomes_dropped_total") == 0
    assert master not in text
