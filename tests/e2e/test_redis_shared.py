"""Two gateway instances sharing one Redis (and one database) behave as one gateway (SPEC §10):
limits and budgets hold across both, a key revoked on one fails on the other within 1 s, and
with Redis stopped they keep serving per instance ("local") or refuse with 503 ("closed"),
shared again within 5 s of its return."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from harness import chat, client_and_gateway, eventually, make_config
from redis_server import RedisServer, running_redis

from gateway_trio.gateway import Gateway
from gateway_trio.testing import Behavior

MASTER = "sk-master-0123456789abcdef"
KEY = "sk-shared-key-0123456789abcdef-one"
OUTPUT_PRICE = 1e-4
MAX_TOKENS = 100


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


def config_for(upstream: Any, redis: RedisServer, tmp_path: Path, *keys: dict[str, Any], **redis_keys: Any):
    models = [
        {
            "name": "gpt",
            "model": "openai/gpt-4o-mini",
            "api_base": upstream.base_url + "/v1",
            "info": {"input_cost_per_token": 0.0, "output_cost_per_token": OUTPUT_PRICE},
        }
    ]
    return make_config(
        server={"master_key": MASTER},
        database={"url": f"sqlite:///{tmp_path}/shared.db"},
        # Generous: a loaded test machine must not make a round trip look like an outage.
        redis={"url": redis.url, "timeout_s": 5, **redis_keys},
        models=models,
        keys=list(keys),
    )


@asynccontextmanager
async def two(
    config: Any,
) -> AsyncIterator[tuple[tuple[httpx.AsyncClient, Gateway], tuple[httpx.AsyncClient, Gateway]]]:
    async with client_and_gateway(config) as a, client_and_gateway(config) as b:
        yield a, b


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def statuses_of(calls: list[tuple[httpx.AsyncClient, dict[str, Any]]]) -> list[int]:
    statuses: list[int] = []

    async def one(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        statuses.append((await client.post("/v1/chat/completions", json=body, headers=bearer(KEY))).status_code)

    async with trio.open_nursery() as nursery:
        for client, body in calls:
            nursery.start_soon(one, client, body)
    return statuses


async def test_rpm_limit_of_twenty_through_two_instances_admits_exactly_twenty(upstream, redis_server, tmp_path):
    config = config_for(upstream, redis_server, tmp_path, {"key": KEY, "rpm_limit": 20})
    async with two(config) as ((a, gateway_a), (b, gateway_b)):
        statuses = await statuses_of([(a if i % 2 else b, chat("gpt")) for i in range(60)])
        assert statuses.count(200) == 20 and statuses.count(429) == 40
        assert gateway_a.control.limits.local_admissions == gateway_b.control.limits.local_admissions == 0


async def test_metrics_show_the_shared_rpm_headroom_of_a_key(upstream, redis_server, tmp_path):
    config = config_for(upstream, redis_server, tmp_path, {"key": KEY, "key_alias": "shared", "rpm_limit": 10})
    async with two(config) as ((a, _), (b, _)):
        statuses = await statuses_of([(a, chat("gpt")), (b, chat("gpt")), (b, chat("gpt"))])
        assert statuses == [200, 200, 200]
        await statuses_of([(a, chat("gpt"))])
        metrics = (await a.get("/metrics", headers=bearer(MASTER))).text
    # A's last admission saw all four calls of both instances: six of ten are left.
    assert 'gateway_key_rpm_headroom{key_alias="shared",team=""} 6.0' in metrics


async def test_budget_for_ten_admits_at_most_ten_of_fifty_across_both(upstream, redis_server, tmp_path):
    upstream.behaviors["gpt-4o-mini"] = Behavior(delay_s=1.0)  # every call is in flight at once
    config = config_for(upstream, redis_server, tmp_path, {"key": KEY, "max_budget": 10 * MAX_TOKENS * OUTPUT_PRICE})
    async with two(config) as ((a, _), (b, _)):
        body = chat("gpt", max_tokens=MAX_TOKENS)
        statuses = await statuses_of([(a if i % 2 else b, body) for i in range(50)])
    assert 0 < statuses.count(200) <= 10 and statuses.count(200) + statuses.count(429) == 50


async def test_a_key_revoked_on_one_instance_fails_on_the_other_within_a_second(upstream, redis_server, tmp_path):
    config = config_for(upstream, redis_server, tmp_path)
    async with two(config) as ((a, _), (b, gateway_b)):
        await eventually(lambda: gateway_b.control.invalidations.subscribed)
        made = await a.post("/key/generate", json={"key_alias": "revoked"}, headers=bearer(MASTER))
        assert made.status_code == 200, made.text
        key = made.json()["key"]
        ok = await b.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))
        assert ok.status_code == 200  # B has the key cached now
        blocked = await a.post("/key/block", json={"key": key}, headers=bearer(MASTER))
        assert blocked.status_code == 200, blocked.text
        with trio.fail_after(1.0):
            while (await b.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))).status_code != 401:
                await trio.sleep(0.02)


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


async def test_redis_stopped_local_keeps_serving_and_shares_again_after_it_returns(upstream, redis_server, tmp_path):
    config = config_for(upstream, redis_server, tmp_path, {"key": KEY, "rpm_limit": 1000})
    async with two(config) as ((a, gateway_a), (b, gateway_b)):
        assert (await a.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(KEY))).status_code == 200
        text = (await a.get("/metrics", headers=bearer(MASTER))).text
        assert metric(text, "gateway_redis_up") == 1.0
        assert metric(text, "gateway_redis_round_trip_seconds_count") >= 1
        redis_server.stop()
        statuses = await statuses_of([(a if i % 2 else b, chat("gpt")) for i in range(10)])
        assert statuses == [200] * 10  # per-instance limits, still served
        assert gateway_a.control.limits.local_admissions + gateway_b.control.limits.local_admissions >= 9
        text = (await a.get("/metrics", headers=bearer(MASTER))).text
        assert metric(text, "gateway_redis_up") == 0.0 and metric(text, "gateway_redis_errors_total") >= 1
        redis_server.start()
        with trio.fail_after(5):
            while not (gateway_a.redis.up and gateway_b.redis.up):
                await trio.sleep(0.05)
        # Key invalidations resubscribe too (and forget every cached key: changes may have been missed).
        await eventually(
            lambda: gateway_a.control.invalidations.subscribed and gateway_b.control.invalidations.subscribed
        )
        shared_before = gateway_a.control.limits.shared_admissions
        assert (await a.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(KEY))).status_code == 200
        assert gateway_a.control.limits.shared_admissions == shared_before + 1
        text = (await a.get("/metrics", headers=bearer(MASTER))).text
        assert metric(text, "gateway_redis_up") == 1.0


async def test_redis_stopped_closed_refuses_limited_calls_with_503(upstream, redis_server, tmp_path):
    config = config_for(upstream, redis_server, tmp_path, {"key": KEY, "rpm_limit": 1000}, on_failure="closed")
    async with client_and_gateway(config) as (client, gateway):
        assert (await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(KEY))).status_code == 200
        redis_server.stop()
        refused = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(KEY))
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "limits_unavailable"
        assert "retry-after" in refused.headers
        # The master key's calls need no limit: they are served.
        master = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(MASTER))
        assert master.status_code == 200
        redis_server.start()
        with trio.fail_after(5):
            while (await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(KEY))).status_code != 200:
                await trio.sleep(0.05)
        assert gateway.redis.up


def two_deployments(upstream: Any, redis: RedisServer, tmp_path: Path, **router: Any):
    models = [
        {
            "name": "pair",
            "model": "openai/first",
            "api_base": upstream.base_url + "/v1",
            "info": {"id": "first"},
            "rpm": 6,
        },
        {
            "name": "pair",
            "model": "openai/second",
            "api_base": upstream.base_url + "/v1",
            "info": {"id": "second"},
            "rpm": 6,
        },
    ]
    return make_config(
        server={"master_key": MASTER},
        database={"url": f"sqlite:///{tmp_path}/shared.db"},
        redis={"url": redis.url},
        models=models,
        router={"num_retries": 0, **router},
    )


async def away_from_a_minute_boundary() -> None:
    """Per-minute counters start again at a minute's edge (Redis counts by the wall clock's
    minutes, each router by its own clock's): a test that counts them keeps clear of both."""
    while any(60 - clock % 60 < 10 for clock in (time.time(), trio.current_time())):
        await trio.sleep(0.5)


async def master_calls(client: httpx.AsyncClient, count: int, model: str = "pair") -> list[int]:
    return [
        (await client.post("/v1/chat/completions", json=chat(model), headers=bearer(MASTER))).status_code
        for _ in range(count)
    ]


async def test_deployment_rpm_counts_the_calls_of_every_instance(upstream, redis_server, tmp_path):
    await away_from_a_minute_boundary()
    async with two(two_deployments(upstream, redis_server, tmp_path)) as ((a, _), (b, gateway_b)):
        assert await master_calls(a, 8) == [200] * 8  # 8 of the group's 12 a minute
        synced = gateway_b.routing_sync.syncs
        # A sends its counts at its next sync; B hands what it read to its router at the one after.
        await eventually(lambda: gateway_b.routing_sync.syncs >= synced + 3)
        statuses = await master_calls(b, 6)
        # B alone would serve all six; with A's eight counted, four are left this minute.
        assert statuses.count(200) == 4 and statuses.count(503) == 2


async def test_a_cooldown_set_on_one_instance_applies_on_the_other(upstream, redis_server, tmp_path):
    upstream.behaviors["first"] = Behavior(status=500)
    config = two_deployments(upstream, redis_server, tmp_path, allowed_fails=1, cooldown_s=30)
    async with two(config) as ((a, gateway_a), (b, gateway_b)):
        for _ in range(10):  # until A picks `first`, fails and cools it down
            await a.post("/v1/chat/completions", json=chat("pair"), headers=bearer(MASTER))
            if any(load.cooling_down for load in (await gateway_a.router.snapshot()).loads):
                break

        async def b_cools_first() -> bool:
            loads = (await gateway_b.router.snapshot()).loads
            return any(load.deployment_id == "first" and load.cooling_down for load in loads)

        with trio.fail_after(5):
            while not await b_cools_first():
                await trio.sleep(0.05)
        assert upstream.behaviors["first"].faults_served >= 1
        assert await master_calls(b, 3) == [200] * 3  # B never tries `first` now
