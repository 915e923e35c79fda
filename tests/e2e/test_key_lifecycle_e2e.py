"""A key made through `/key/generate` on the LLM routes: the official SDK with it, its limit
headers through `with_raw_response`, and a change made through the admin routes (block,
regenerate, delete, a lower budget) applying on the very next call, though the key cache
had the key."""

from __future__ import annotations

import openai
import pytest
import trio
from harness import chat, client_and_gateway, make_config, running_gateway

# Each test runs against SQLite and PostgreSQL (tests/conftest.py `database_url`).
pytestmark = pytest.mark.usefixtures("database_url")

MASTER = "sk-master-lifecycle-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}


def config_for(upstream):
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1",
               "info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}]
    return make_config(models=models, server={"master_key": MASTER})


async def generate(client, **fields) -> str:
    answer = await client.post("/key/generate", json=fields, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()["key"]


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_the_openai_sdk_with_a_generated_key_reads_the_rate_limit_headers(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        key = await generate(client, max_budget=10.0, rpm_limit=100, tpm_limit=100_000, key_alias="sdk")
        base_url = str(client.base_url)

        def call():
            sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)
            raw = sdk.chat.completions.with_raw_response.create(
                model="gpt", messages=[{"role": "user", "content": "sdk with a key"}]
            )
            return raw.headers, raw.parse()

        headers, completion = await trio.to_thread.run_sync(call)
    assert completion.choices[0].message.content == "sdk with a key"
    assert headers["x-ratelimit-limit-requests"] == "100"
    assert headers["x-ratelimit-remaining-requests"] == "99"
    assert headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(headers["x-ratelimit-remaining-tokens"]) < 100_000
    assert float(headers["x-gateway-key-budget-remaining"]) <= 10.0
    assert "x-gateway-key-spend" in headers


async def test_block_unblock_and_regenerate_apply_on_the_very_next_call(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        key = await generate(client)
        assert (await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))).status_code == 200

        assert (await client.post("/key/block", json={"key": key}, headers=AUTH)).status_code == 200
        blocked = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))
        assert blocked.status_code == 401 and blocked.json()["error"]["code"] == "key_blocked"

        assert (await client.post("/key/unblock", json={"key": key}, headers=AUTH)).status_code == 200
        assert (await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))).status_code == 200

        renewed = await client.post("/key/regenerate", json={"key": key}, headers=AUTH)
        assert renewed.status_code == 200, renewed.text
        new_key = renewed.json()["key"]
        old = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))
        assert old.status_code == 401
        assert (await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(new_key))).status_code == 200

        assert (await client.post("/key/delete", json={"keys": [new_key]}, headers=AUTH)).status_code == 200
        gone = await client.post("/v1/chat/completions", json=chat("gpt", stream=True), headers=bearer(new_key))
        assert gone.status_code == 401


async def test_a_budget_lowered_through_the_admin_route_applies_at_once(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        key = await generate(client, max_budget=10.0)
        assert (await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))).status_code == 200
        lowered = await client.post("/key/update", json={"key": key, "max_budget": 0.0}, headers=AUTH)
        assert lowered.status_code == 200, lowered.text
        refused = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"


async def test_a_key_of_a_blocked_team_fails_at_once(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        team = await client.post("/team/new", json={"team_alias": "ops"}, headers=AUTH)
        team_id = team.json()["team_id"]
        key = await generate(client, team_id=team_id)
        assert (await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))).status_code == 200
        assert (await client.post("/team/block", json={"team_id": team_id}, headers=AUTH)).status_code == 200
        refused = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "team_blocked"


async def test_key_info_shows_the_spend_of_its_calls(upstream):
    async with running_gateway(config_for(upstream)) as base_url:
        import httpx

        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            key = await generate(client, max_budget=1.0)
            for stream in (False, True):
                answer = await client.post("/v1/chat/completions", json=chat("gpt", stream=stream), headers=bearer(key))
                assert answer.status_code == 200
            spend = (await client.get("/spend/report", params={"group_by": "key"}, headers=AUTH)).json()
            info = (await client.get("/key/info", headers=bearer(key))).json()
    assert info["info"]["spend"] > 0 and key not in str(info)
    assert any(row.get("spend", 0) > 0 for row in (spend if isinstance(spend, list) else spend.get("data", [])))


async def test_regenerate_with_the_key_in_the_path_as_litellm_allows(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        key = await generate(client, key_alias="pathy", rpm_limit=7)
        renewed = await client.post(f"/key/{key}/regenerate", json={"rpm_limit": 9}, headers=AUTH)
        assert renewed.status_code == 200, renewed.text
        body = renewed.json()
        mismatch = await client.post(f"/key/{key}/regenerate", json={"key": "sk-another"}, headers=AUTH)
        old = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(key))
        new = await client.post("/v1/chat/completions", json=chat("gpt"), headers=bearer(body["key"]))
    assert body["key_alias"] == "pathy" and body["rpm_limit"] == 9 and body["key"] != key
    assert mismatch.status_code in (400, 404) and old.status_code == 401 and new.status_code == 200
