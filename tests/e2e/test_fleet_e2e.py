"""Two gateway instances, one Redis, one PostgreSQL: all real processes on 127.0.0.1 (SPEC §10).

What one instance counts, the other sees: a key's rpm limit and budget hold across both, a
deployment cooled down by failures seen on A is skipped by B, a key blocked on A fails on B
within a second, and the spend logs of both land in one table, one row per call.
"""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from harness import chat, serving_process
from redis_server import RedisServer, running_redis

from gateway_trio.testing import Behavior

MASTER = "sk-master-fleet-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
OUTPUT_PRICE = 0.001  # per token; prompts are free, so a call's worst case is max_tokens of it
MAX_TOKENS = 100


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


def fleet_config(path: Path, upstream, redis_url: str, database_url: str) -> Path:
    base = f"{upstream.base_url}/v1"
    prices = f"input_cost_per_token = 0.0\noutput_cost_per_token = {OUTPUT_PRICE}"
    path.write_text(f"""
[server]
master_key = "{MASTER}"
graceful_timeout_s = 5
[database]
url = "{database_url}"
flush_interval_s = 0.2
spool_dir = "{path.parent / 'spool'}"
[redis]
url = "{redis_url}"
timeout_s = 5
[router]
num_retries = 0
allowed_fails = 2
cooldown_s = 120

[[models]]
name = "gpt"
model = "openai/gpt-4o-mini"
api_base = "{base}"
[models.info]
{prices}

[[models]]
name = "slow"
model = "openai/slow-model"
api_base = "{base}"
[models.info]
{prices}

[[models]]
name = "pair"
model = "openai/broken-model"
api_base = "{base}"
[models.info]
id = "d-bad"
[[models]]
name = "pair"
model = "openai/gpt-4o-mini"
api_base = "{base}"
[models.info]
id = "d-good"
""")
    return path


@asynccontextmanager
async def fleet(config: Path) -> AsyncIterator[tuple[tuple[trio.Process, str], tuple[trio.Process, str]]]:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(serving_process(config))
        second = await stack.enter_async_context(serving_process(config))
        yield first, second
        for process, _ in (first, second):  # a graceful stop: each writes its last spend records
            process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            for process, _ in (first, second):
                await process.wait()


async def new_key(client: httpx.AsyncClient, **fields) -> str:
    made = await client.post("/key/generate", json=fields, headers=ADMIN)
    assert made.status_code == 200, made.text
    return made.json()["key"]


def cooling(metrics: str, model_id: str) -> bool:
    found = re.search(rf'gateway_deployment_cooling_down{{model_group="pair",model_id="{model_id}"}} (\S+)', metrics)
    return found is not None and float(found.group(1)) == 1.0


async def test_two_instances_share_limits_budgets_cooldowns_revocations_and_one_spend_table(
    upstream, redis_server, postgres_server, tmp_path
):
    import psycopg

    database_url = postgres_server.create_database()
    config = fleet_config(tmp_path / "fleet.toml", upstream, redis_server.url, database_url)
    upstream.behaviors["slow-model"] = Behavior(delay_s=3)
    upstream.behaviors["broken-model"] = Behavior(status=500)
    call_ids: list[str] = []

    def answered(response: httpx.Response) -> int:
        call_ids.append(response.headers["x-gateway-call-id"])
        return response.status_code

    async with fleet(config) as ((_, url_a), (_, url_b)):
        async with (
            httpx.AsyncClient(base_url=url_a, timeout=30) as a,
            httpx.AsyncClient(base_url=url_b, timeout=30) as b,
        ):
            # 1. rpm_limit = 20, hammered through both: exactly 20 admitted in the window.
            limited = await new_key(a, key_alias="rpm-20", rpm_limit=20)
            statuses = []
            for number in range(60):
                client = a if number % 2 == 0 else b
                statuses.append(answered(await client.post(
                    "/v1/chat/completions", json=chat("gpt"), headers={"Authorization": f"Bearer {limited}"})))
            assert statuses.count(200) == 20 and statuses.count(429) == 40, statuses

            # 2. A budget for 10 worst-case calls, 50 at once across both: at most 10 admitted.
            budget = await new_key(a, key_alias="ten-calls", max_budget=10 * MAX_TOKENS * OUTPUT_PRICE)
            results: list[int] = []

            async def spend(client: httpx.AsyncClient) -> None:
                response = await client.post("/v1/chat/completions", json=chat("slow", max_tokens=MAX_TOKENS),
                                             headers={"Authorization": f"Bearer {budget}"})
                results.append(answered(response))

            async with trio.open_nursery() as nursery:
                for number in range(50):
                    nursery.start_soon(spend, a if number % 2 == 0 else b)
            assert 1 <= results.count(200) <= 10 and results.count(200) + results.count(429) == 50, results

            # 3. A deployment cooled down by failures seen on A is skipped by B.
            with trio.fail_after(30):
                while not cooling((await a.get("/metrics", headers=ADMIN)).text, "d-bad"):
                    answered(await a.post("/v1/chat/completions", json=chat("pair"), headers=ADMIN))
            with trio.fail_after(10):  # B learns of it from Redis (a sync every 0.2 s)
                while not cooling((await b.get("/metrics", headers=ADMIN)).text, "d-bad"):
                    await trio.sleep(0.1)
            broken_before = sum(r.model == "broken-model" for r in upstream.received)
            for _ in range(20):
                assert answered(await b.post("/v1/chat/completions", json=chat("pair"), headers=ADMIN)) == 200
            assert sum(r.model == "broken-model" for r in upstream.received) == broken_before

            # 4. A key blocked on A fails on B within a second.
            revoked = await new_key(a, key_alias="revoked")
            auth = {"Authorization": f"Bearer {revoked}"}
            assert answered(await b.post("/v1/chat/completions", json=chat("gpt"), headers=auth)) == 200  # cached on B
            assert (await a.post("/key/block", json={"key": revoked}, headers=ADMIN)).status_code == 200
            blocked_at = trio.current_time()
            while answered(await b.post("/v1/chat/completions", json=chat("gpt"), headers=auth)) != 401:
                assert trio.current_time() - blocked_at < 1.0, "B still admits a key blocked on A"
                await trio.sleep(0.02)

    # 5. Both instances' spend logs in one table, one row per answered call.
    with psycopg.connect(database_url) as connection:
        rows = [row[0] for row in connection.execute("SELECT call_id FROM spend_logs")]
    assert len(rows) == len(set(rows)) == len(set(call_ids))
    assert set(rows) == set(call_ids)
