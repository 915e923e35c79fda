"""Spend records end to end: one per request, the /spend/logs route, disconnects, shutdown."""

import sqlite3
import time

import httpx
import pytest
import trio
from harness import chat, client_and_gateway, eventually, make_config, running_gateway

from gateway_trio.control.database import open_database
from gateway_trio.testing import Behavior

# Each test runs against SQLite and PostgreSQL (tests/conftest.py `database_url`).
pytestmark = pytest.mark.usefixtures("database_url")

MASTER = "sk-master-spend-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}


def config_for(upstream, database=None, **router):
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1",
               "api_key": "sk-upstream-spend-secret"},
              {"name": "backup", "model": "openai/backup", "api_base": f"{upstream.base_url}/v1"}]
    return make_config(models=models, server={"master_key": MASTER}, database=database or {},
                       router={"retry_backoff_s": 0, **router})


async def logs(client, **params):
    response = await client.get("/spend/logs", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


async def test_one_record_per_request_with_retries_fallbacks_cost_and_ttft(upstream):
    upstream.behaviors["gpt-4o-mini"] = Behavior(status=500)
    config = config_for(upstream, num_retries=1, fallbacks={"gpt": ["backup"]}, allowed_fails=100)
    async with client_and_gateway(config) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt", metadata={"tags": ["t1"]}), headers=AUTH)
        call_id = response.headers["x-gateway-call-id"]
        await eventually(lambda: gateway.spend._accepted >= 1)
        await gateway.spend.flush()
        records = await logs(client, call_id=call_id)
        everything = await logs(client)
    assert response.status_code == 200
    assert len(records) == 1 and len(everything) == 1
    record = records[0]
    assert record["status"] == "success"
    assert record["model_group"] == "gpt"
    assert record["attempted_retries"] == 1 and record["attempted_fallbacks"] == 1
    assert record["provider"] == "openai" and record["api_base"] == f"{upstream.base_url}/v1"
    assert record["prompt_tokens"] > 0 and record["completion_tokens"] == 2
    assert record["ttft_ms"] is not None and record["ttft_ms"] >= 0
    assert record["tags"] == ["t1"]
    assert record["api_key_hash"] and MASTER not in str(record) and "sk-upstream" not in str(record)


async def test_failure_and_stream_records_and_filters(upstream):
    upstream.behaviors["backup"] = Behavior(status=400)
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        before = time.time()
        await client.post("/v1/chat/completions", json=chat("gpt", stream=True), headers=AUTH)
        await client.post("/v1/chat/completions", json=chat("backup"), headers=AUTH)
        await eventually(lambda: gateway.spend._accepted >= 2)
        await gateway.spend.flush()
        all_records = await logs(client)
        by_model = await logs(client, model="backup")
        by_key = await logs(client, api_key=MASTER)
        by_other_key = await logs(client, api_key="sk-somebody-else")
        since = await logs(client, start=before - 1)
        until = await logs(client, end=before - 1)
        limited = await logs(client, limit=1)
        denied = await client.get("/spend/logs")
    assert len(all_records) == 2
    failed = by_model[0]
    assert failed["status"] == "failure" and "400" in failed["error"]
    streamed = [r for r in all_records if r["stream"]][0]
    assert streamed["status"] == "success" and streamed["completion_tokens"] == 2
    assert len(by_key) == 2 and by_other_key == []
    assert len(since) == 2 and until == []
    assert len(limited) == 1
    assert denied.status_code == 401


async def test_client_disconnect_keeps_a_record_with_the_usage_seen(upstream):
    upstream.default = Behavior(chunks=10, stall_after=3)
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        async with client.stream("POST", "/v1/chat/completions", json=chat("gpt", stream=True), headers=AUTH) as response:
            call_id = response.headers["x-gateway-call-id"]
            seen = 0
            async for line in response.aiter_lines():
                seen += '"content"' in line
                if seen == 3:
                    break
        await eventually(lambda: gateway.spend._accepted >= 1)
        await gateway.spend.flush()
        records = await logs(client, call_id=call_id)
    assert len(records) == 1
    assert records[0]["status"] == "client_disconnected"
    assert records[0]["completion_tokens"] >= 3


async def test_shutdown_flushes_every_pending_record(upstream, database_url):
    config = config_for(upstream, database={"url": database_url, "flush_interval_s": 3600})
    async with running_gateway(config) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            async def ask() -> None:
                response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
                assert response.status_code == 200

            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(ask)
    # The gateway has shut down: everything it answered is in the database.
    db = open_database(database_url)
    count = db.execute("select count(*) from spend_logs").fetchone()[0]
    db.close()
    assert count == 20


async def test_non_master_callers_cannot_read_spend_logs(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        wrong = await client.get("/spend/logs", headers={"authorization": "Bearer nope"})
        bad_limit = await client.get("/spend/logs", params={"limit": "x"}, headers=AUTH)
        bad_start = await client.get("/spend/logs", params={"start": "yesterday"}, headers=AUTH)
    assert wrong.status_code == 401
    assert bad_limit.status_code == 400 and bad_start.status_code == 400


PREVIOUS_RELEASE_SPEND_LOGS = """
CREATE TABLE spend_logs (
    call_id TEXT PRIMARY KEY, call_type TEXT, stream INTEGER, status TEXT, start_time REAL, end_time REAL,
    api_key_hash TEXT, key_alias TEXT, model_group TEXT, model_id TEXT, provider TEXT, api_base TEXT,
    ttft_ms REAL, prompt_tokens INTEGER, completion_tokens INTEGER, cost REAL, cache_hit INTEGER,
    attempted_retries INTEGER, attempted_fallbacks INTEGER, guardrail_information TEXT, error TEXT,
    tags TEXT, metadata TEXT
)"""


async def test_a_database_of_the_previous_release_is_migrated_and_its_records_kept(upstream, tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute(PREVIOUS_RELEASE_SPEND_LOGS)
        old.execute("INSERT INTO spend_logs (call_id, call_type, status, start_time, model_group, cost, "
                    "guardrail_information, tags, metadata) VALUES ('old-call', 'chat_completion', 'success', 1.0, "
                    "'gpt', 0.5, '[]', '[]', '{}')")
    old.close()
    async with client_and_gateway(config_for(upstream, {"url": f"sqlite:///{path}"})) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
        await eventually(lambda: gateway.spend._accepted >= 1)
        await gateway.spend.flush()
        records = await logs(client)
    assert response.status_code == 200
    assert [r["call_id"] for r in records][-1] == "old-call" and len(records) == 2
    assert {"team_id", "user_id", "end_user"} <= set(records[0])
    with sqlite3.connect(path) as db:
        assert [v for (v,) in db.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]


async def test_spend_logs_takes_litellms_filter_names_and_refuses_unknown_filters(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        ids = []
        for _ in range(3):
            answer = await client.post("/v1/chat/completions", json=chat("gpt"), headers=AUTH)
            ids.append(answer.headers["x-gateway-call-id"])
        await eventually(lambda: gateway.spend._accepted >= 3)
        await gateway.spend.flush()
        by_request_id = await logs(client, request_id=ids[1])
        dated = await logs(client, start_date=str(time.time() - 3600), end_date=str(time.time() + 60))
        unknown = await client.get("/spend/logs", params={"request_idd": ids[1]}, headers=AUTH)
        clash = await client.get("/spend/logs", params={"request_id": ids[0], "call_id": ids[1]}, headers=AUTH)
    assert [r["call_id"] for r in by_request_id] == [ids[1]]  # not the first 100 records
    assert sorted(r["call_id"] for r in dated) == sorted(ids)
    assert unknown.status_code == 400 and "request_idd" in unknown.json()["error"]["message"]
    assert unknown.json()["error"]["param"] == "request_idd"
    assert clash.status_code == 400
