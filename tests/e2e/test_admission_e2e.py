"""Virtual keys through the real gateway: admission on every LLM route, reservations, headers, spend.

Keys here are declared in the config (`[[keys]]`), so these tests need no admin route; the
admin routes' own tests create keys through `/key/generate`.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from harness import chat, client_and_gateway, eventually, make_config, sse_payloads

from gateway_trio.auth import hash_key
from gateway_trio.hooks import CustomLogger
from gateway_trio.testing import Behavior

# Each test runs against SQLite and PostgreSQL (tests/conftest.py `database_url`).
pytestmark = pytest.mark.usefixtures("database_url")

MASTER = "sk-master-0123456789abcdef"
KEY = "sk-test-key-0123456789abcdef-one"
OTHER = "sk-test-key-0123456789abcdef-two"
OUTPUT_PRICE = 1e-4  # $ per output token; input is free, so a call's worst case is max_tokens * this
MAX_TOKENS = 100


def config_with(upstream: Any, *keys: dict[str, Any], teams: list[dict[str, Any]] | None = None, **extra: Any):
    models = [
        {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": upstream.base_url + "/v1",
         "info": {"input_cost_per_token": 0.0, "output_cost_per_token": OUTPUT_PRICE}},
        {"name": "other", "model": "openai/gpt-4o", "api_base": upstream.base_url + "/v1"},
    ]
    return make_config(server={"master_key": MASTER}, models=models, keys=list(keys), teams=teams or [], **extra)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_an_unknown_key_is_401_and_a_config_key_calls_and_is_recorded_with_its_tenant(upstream):
    teams = [{"team_id": "research", "team_alias": "Research"}]
    config = config_with(upstream, {"key": KEY, "key_alias": "app-one", "team_id": "research", "user_id": "ann"},
                         teams=teams)
    async with client_and_gateway(config) as (client, gateway):
        refused = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(OTHER))
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        answer = await client.post("/v1/chat/completions", json=chat("gpt", user="customer-7"), headers=bearer(KEY))
        assert answer.status_code == 200, answer.text
        call_id = answer.headers["x-gateway-call-id"]
        await gateway.spend.flush()
        logs = (await client.get("/spend/logs", params={"call_id": call_id}, headers=bearer(MASTER))).json()
    (record,) = logs if isinstance(logs, list) else logs["data"]
    assert record["api_key_hash"] == hash_key(KEY) and record["key_alias"] == "app-one"
    assert (record["team_id"], record["user_id"], record["end_user"]) == ("research", "ann", "customer-7")
    assert KEY not in str(logs)


async def test_a_model_the_key_may_not_use_is_403_listing_what_it_may(upstream):
    config = config_with(upstream, {"key": KEY, "models": ["gpt"]})
    async with client_and_gateway(config) as (client, _):
        refused = await client.post("/v1/chat/completions", json=chat("other"), headers=bearer(KEY))
        allowed = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(KEY))
    assert refused.status_code == 403 and "gpt" in refused.json()["error"]["message"]
    assert allowed.status_code == 200


async def test_fifty_concurrent_calls_on_a_budget_for_ten_admit_at_most_ten(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(delay_s=1.0)  # every call is in flight at once
    worst = MAX_TOKENS * OUTPUT_PRICE
    config = config_with(upstream, {"key": KEY, "max_budget": 10 * worst})
    statuses: list[int] = []
    refusals: list[Any] = []
    async with client_and_gateway(config) as (client, gateway):
        async def call() -> None:
            answer = await client.post(
                "/v1/chat/completions", json=chat("gpt", max_tokens=MAX_TOKENS), headers=bearer(KEY)
            )
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                refusals.append(answer)

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(call)
        await gateway.spend.flush()
        spent = gateway.control.ledger.get("key", hash_key(KEY)).spend
        logs = (await client.get("/spend/logs", params={"api_key": hash_key(KEY)}, headers=bearer(MASTER))).json()
    assert statuses.count(200) == 10 and statuses.count(429) == 40
    error = refusals[0].json()["error"]
    assert error["code"] == "budget_exceeded" and "retry-after" in refusals[0].headers
    rows = logs if isinstance(logs, list) else logs["data"]
    recorded = sum(row["cost"] or 0 for row in rows if row["status"] == "success")
    assert 0 < recorded <= 10 * worst and spent == pytest.approx(recorded)


async def test_rpm_limit_refuses_the_call_past_it_and_every_answer_says_what_is_left(upstream):
    config = config_with(upstream, {"key": KEY, "rpm_limit": 3, "tpm_limit": 100_000})
    async with client_and_gateway(config) as (client, _):
        answers = [await client.post("/v1/chat/completions", json=chat("gpt", stream=stream), headers=bearer(KEY))
                   for stream in (False, True, False, True)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["2", "1", "0", "0"]
    for answer in answers:
        assert answer.headers["x-ratelimit-limit-requests"] == "3"
        assert answer.headers["x-ratelimit-limit-tokens"] == "100000"
        assert "x-ratelimit-reset-requests" in answer.headers and "x-gateway-key-spend" in answer.headers
    assert answers[3].json()["error"]["code"] == "rate_limit_exceeded"
    assert float(answers[3].headers["retry-after"]) > 0


async def test_tokens_are_counted_from_real_usage_streamed_or_not(upstream):
    config = config_with(upstream, {"key": KEY, "tpm_limit": 1_000_000})
    async with client_and_gateway(config) as (client, gateway):
        plain = await client.post("/v1/chat/completions", json=chat("gpt", max_tokens=500), headers=bearer(KEY))
        streamed = await client.post(
            "/v1/chat/completions", headers=bearer(KEY),
            json=chat("gpt", max_tokens=500, stream=True, stream_options={"include_usage": True}),
        )
        window = gateway.control.ledger.get("key", hash_key(KEY)).window
        counted = window.tokens
    real = plain.json()["usage"]["total_tokens"]
    last = [p for p in sse_payloads(streamed.text) if p != "[DONE]"][-1]
    import json
    real += json.loads(last)["usage"]["total_tokens"]
    assert counted == real  # not the 500-token worst cases each reserved


async def test_a_priced_streamed_call_is_never_recorded_at_zero(upstream):
    config = config_with(upstream, {"key": KEY, "max_budget": 100.0})
    async with client_and_gateway(config) as (client, gateway):
        answer = await client.post("/v1/chat/completions", json=chat("gpt", stream=True), headers=bearer(KEY))
        assert answer.status_code == 200
        await gateway.spend.flush()
        spent = gateway.control.ledger.get("key", hash_key(KEY)).spend
        stored = await gateway.control.store.get_key(hash_key(KEY))
    assert spent > 0 and stored.spend == pytest.approx(spent)


async def test_messages_route_refusals_are_anthropic_shaped(upstream):
    config = config_with(upstream, {"key": KEY, "models": ["gpt"]})
    body = {"model": "other", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    async with client_and_gateway(config) as (client, _):
        refused = await client.post("/v1/messages", json=body, headers={"x-api-key": KEY})
    assert refused.status_code == 403
    assert refused.json()["type"] == "error" and refused.json()["error"]["type"]


class SeesTheTenant(CustomLogger):
    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.logged: list[Any] = []

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        self.seen.append(user_api_key_dict)
        return data

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.logged.append(kwargs["standard_logging_object"])


async def test_hooks_receive_the_key_team_and_user_by_litellms_names(upstream):
    teams = [{"team_id": "research", "team_alias": "Research", "metadata": {"cost_center": "42"}}]
    config = config_with(upstream, {"key": KEY, "key_alias": "app-one", "team_id": "research", "user_id": "ann",
                                    "max_budget": 5.0, "rpm_limit": 50, "metadata": {"app": "one"}}, teams=teams)
    hook = SeesTheTenant()
    async with client_and_gateway(config, hooks=[hook]) as (client, _):
        answer = await client.post("/v1/chat/completions", json=chat("gpt", user="cust"), headers=bearer(KEY))
        assert answer.status_code == 200
        await eventually(lambda: hook.logged)
    (auth,) = hook.seen
    assert (auth.api_key, auth.key_alias, auth.team_id, auth.team_alias, auth.user_id) == (
        hash_key(KEY), "app-one", "research", "Research", "ann")
    assert auth.end_user_id == "cust" and auth.max_budget == 5.0 and auth.rpm_limit == 50
    assert auth.metadata == {"app": "one"} and auth.team_metadata == {"cost_center": "42"}
    assert KEY not in repr(auth)


async def test_a_flood_of_random_bad_keys_costs_no_query_each(upstream):
    import secrets
    import time

    from gateway_trio.errors import AuthError

    config = config_with(upstream, {"key": KEY})
    async with client_and_gateway(config) as (client, gateway):
        plane = gateway.control
        before = plane.store_reads
        started = time.monotonic()
        for _ in range(10_000):
            with pytest.raises(AuthError):
                await plane.caller(bearer("sk-" + secrets.token_urlsafe(32)))
        elapsed = time.monotonic() - started
        reads = plane.store_reads - before
        answer = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(KEY))
    assert reads <= 20 + 10 * elapsed + 1, (reads, elapsed)  # the burst, then 10 a second at most
    assert answer.status_code == 200  # the real key still works, flood or not


async def test_models_lists_only_what_the_key_may_call(upstream):
    config = config_with(upstream, {"key": KEY, "models": ["gpt"], "aliases": {"fast": "gpt"}})
    async with client_and_gateway(config) as (client, _):
        listed = (await client.get("/v1/models", headers=bearer(KEY))).json()
        everything = (await client.get("/v1/models", headers=bearer(MASTER))).json()
        info = (await client.get("/v1/model/info", headers=bearer(KEY))).json()
    assert sorted(m["id"] for m in listed["data"]) == ["fast", "gpt"]
    assert sorted(m["id"] for m in everything["data"]) == ["gpt", "other"]
    assert [d["model_name"] for d in info["data"]] == ["gpt"] and "api_key" not in str(info)


async def test_spend_logs_filter_by_tenant_and_a_retried_call_counts_once(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=500, fail_times=1)  # the first attempt fails
    teams = [{"team_id": "research"}]
    config = config_with(upstream, {"key": KEY, "key_alias": "one", "team_id": "research", "user_id": "ann"},
                         {"key": OTHER, "key_alias": "two"}, teams=teams, router={"num_retries": 2})
    async with client_and_gateway(config) as (client, gateway):
        first = await client.post("/v1/chat/completions", json=chat("gpt", user="c1"), headers=bearer(KEY))
        assert first.status_code == 200 and first.headers["x-gateway-attempted-retries"] == "1"
        assert (await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(OTHER))).status_code == 200
        await gateway.spend.flush()

        async def logs(**params: str) -> list[dict[str, Any]]:
            found = (await client.get("/spend/logs", params=params, headers=bearer(MASTER))).json()
            return found if isinstance(found, list) else found["data"]

        by = {name: await logs(**{name: value}) for name, value in
              [("key_alias", "one"), ("team_id", "research"), ("user_id", "ann"), ("end_user", "c1")]}
        stored = await gateway.control.store.get_key(hash_key(KEY))
        team = await gateway.control.store.get_team("research")
    for name, rows in by.items():
        assert [row["key_alias"] for row in rows] == ["one"], name
    (row,) = by["key_alias"]
    assert row["cost"] > 0 and stored.spend == pytest.approx(row["cost"]) and team.spend == pytest.approx(row["cost"])


async def test_a_failed_call_of_a_limited_key_has_the_limit_headers_and_frees_its_slot(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=400)  # the upstream's own refusal: not retried
    config = config_with(upstream, {"key": KEY, "rpm_limit": 10, "max_parallel_requests": 1})
    async with client_and_gateway(config) as (client, gateway):
        answers = [await client.post("/v1/chat/completions", json=chat("gpt", stream=stream), headers=bearer(KEY))
                   for stream in (False, True)]
        account = gateway.control.ledger.get("key", hash_key(KEY))
    assert [a.status_code for a in answers] == [400, 400]  # the second was admitted: the first let go
    for answer in answers:
        assert answer.headers["x-ratelimit-limit-requests"] == "10" and "x-gateway-key-spend" in answer.headers
    assert account.in_flight == 0 and account.reserved == 0


async def test_a_client_that_leaves_mid_stream_releases_its_parallel_slot(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(chunks=50, chunk_delay_s=0.05)
    config = config_with(upstream, {"key": KEY, "max_parallel_requests": 1})
    async with client_and_gateway(config) as (client, gateway):
        async with client.stream("POST", "/v1/chat/completions", json=chat("gpt", stream=True),
                                 headers=bearer(KEY)) as streamed:
            assert streamed.status_code == 200
            async for _ in streamed.aiter_bytes():
                break  # leave after the first bytes
        account = gateway.control.ledger.get("key", hash_key(KEY))
        await eventually(lambda: account.in_flight == 0)
        again = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(KEY))
    assert again.status_code == 200 and account.reserved == 0


async def test_model_group_info_and_routes_in_litellms_shapes(upstream):
    config = config_with(upstream, {"key": KEY, "models": ["gpt"]})
    async with client_and_gateway(config) as (client, _):
        groups = (await client.get("/model_group/info", headers=bearer(MASTER))).json()["data"]
        mine = (await client.get("/model_group/info", headers=bearer(KEY))).json()["data"]
        listed = await client.get("/routes", headers=bearer(MASTER))
        refused = await client.get("/routes", headers=bearer(KEY))
    by_name = {g["model_group"]: g for g in groups}
    assert sorted(by_name) == ["gpt", "other"] and [g["model_group"] for g in mine] == ["gpt"]
    assert by_name["gpt"]["providers"] == ["openai"] and by_name["gpt"]["output_cost_per_token"] == OUTPUT_PRICE
    paths = {(r["path"], tuple(r["methods"])) for r in listed.json()["routes"]}
    assert ("/v1/chat/completions", ("POST",)) in paths and ("/key/generate", ("POST",)) in paths
    assert refused.status_code == 403 and "api_key" not in str(groups)
