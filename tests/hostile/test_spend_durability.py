"""Spend records survive what upstreams, hooks and clients do: a poisoned reply, a slow logging
hook, a graceful shutdown, a huge metadata (issue 10, points 4, 6 and 12)."""

from __future__ import annotations

import logging
import sqlite3
import time

import httpx
import trio
from harness import chat, make_config, serving

from gateway_trio.actors import callbacks as callbacks_module
from gateway_trio.hooks import CustomLogger
from gateway_trio.routes.metrics import metrics_text
from hostile.hostile_upstream import Request, json_reply

CALLS = 40
HOOK_SLEEP_S = 2.0
HOOK_TIMEOUT_S = 1.0


def stored(path) -> dict[str, tuple]:
    with sqlite3.connect(path) as db:
        return {row[0]: row[1:] for row in db.execute("select call_id, status, prompt_tokens from spend_logs")}


def file_config(base_url: str, path, **sections) -> object:
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{base_url}/v1"}]
    return make_config(models=models, database={"url": f"sqlite:///{path}", "flush_interval_s": 3600}, **sections)


async def ask_all(base_url: str, count: int) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        async def ask(n: int) -> None:
            response = await client.post("/v1/chat/completions", json=chat("gpt", f"call {n}"))
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-gateway-call-id"])

        async with trio.open_nursery() as nursery:
            for n in range(count):
                nursery.start_soon(ask, n)
    return ids


async def test_a_poisoned_usage_loses_no_record_at_shutdown(hostile, tmp_path):
    """The issue's case: prompt_tokens = 1e300 once, then good replies; all on disk after shutdown."""
    served = 0

    async def script(request: Request, stream) -> None:
        nonlocal served
        served += 1
        usage = {"prompt_tokens": 1e300 if served == 1 else 5, "completion_tokens": 1, "total_tokens": 6}
        body = {"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", "usage": usage,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
        await stream.send_all(json_reply(body))

    upstream = await hostile(script)
    path = tmp_path / "spend.db"
    async with serving(file_config(upstream.base_url, path)) as (base_url, gateway):
        first = await ask_all(base_url, 1)
        rest = await ask_all(base_url, 20)
    rows = stored(path)
    assert set(rows) == set(first + rest)
    assert rows[first[0]] == ("success", None)
    assert all(rows[call_id] == ("success", 5) for call_id in rest)
    assert (gateway.spend.dropped, gateway.spend.unwritable) == (0, 0)


class SlowLogger(CustomLogger):
    """A sync logging hook that blocks its thread, as a careless logger does."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered = 0

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        time.sleep(HOOK_SLEEP_S)
        self.delivered += 1


async def test_a_slow_logging_hook_never_costs_a_spend_record(upstream, tmp_path, monkeypatch, caplog):
    # A small hook pool, so that a 2 s hook holds up a backlog of 40 calls as a 10 s one held
    # up a thousand in the issue.
    monkeypatch.setattr(callbacks_module, "HOOK_THREADS", 2)
    monkeypatch.setattr(callbacks_module, "CONCURRENT_DELIVERIES", 4)
    path = tmp_path / "spend.db"
    config = file_config(upstream.base_url, path, hooks={"timeout_s": HOOK_TIMEOUT_S})
    hook = SlowLogger()
    with caplog.at_level(logging.INFO):
        async with serving(config, hooks=[hook]) as (base_url, gateway):
            ids = await ask_all(base_url, CALLS)
            stopping = trio.current_time()
        stopped = trio.current_time()

    rows = stored(path)
    assert sorted(rows) == sorted(ids)  # every answered call, exactly once (call_id is the key)
    assert all(status == "success" for status, _ in rows.values())
    callbacks = gateway.callbacks
    # The hooks could not keep up: what shutdown did not deliver is dropped, counted, and said.
    assert callbacks.dropped_at_shutdown > 0
    assert callbacks.dropped >= callbacks.dropped_at_shutdown
    metrics = (await metrics_text(gateway)).decode()
    assert f"gateway_callback_events_dropped_at_shutdown_total {float(callbacks.dropped_at_shutdown)}" in metrics
    said = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert said and str(callbacks.dropped_at_shutdown) in said[0]
    # Shutdown waited for the hooks, but only so long.
    assert stopped - stopping < HOOK_TIMEOUT_S + 4.0


async def test_client_metadata_in_spend_logs_is_capped(upstream):
    config = make_config(models=[{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"}])
    huge = {"blob": "x" * 20_000, "team": "search"}
    small = {"team": "search", "nested": {"n": [1, 2]}}
    async with serving(config) as (base_url, gateway):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            big_call = await client.post("/v1/chat/completions", json=chat("gpt", metadata=huge))
            small_call = await client.post("/v1/chat/completions", json=chat("gpt", metadata=small))
        await gateway.spend.flush()
        records = {r["call_id"]: r for r in await gateway.spend.query()}
    assert big_call.status_code == 200 and small_call.status_code == 200
    capped = records[big_call.headers["x-gateway-call-id"]]["metadata"]
    assert "blob" not in str(capped)
    marker = capped["metadata_truncated"]
    assert marker["limit_bytes"] == 16 * 1024 and marker["encoded_bytes"] > 20_000
    assert records[small_call.headers["x-gateway-call-id"]]["metadata"] == small
