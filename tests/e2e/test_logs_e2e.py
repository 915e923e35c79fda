"""Logs of a real `serve`, one process and two workers: JSON lines, one access line per call in
every worker, and never a secret on any line."""

import signal

import httpx
import orjson
import pytest
import trio
from harness import chat, served_process

from gateway_trio.testing import Behavior

MASTER_KEY = "sk-master-4f0c1d9e8b7a6a5f4e3d2c1b"
PROVIDER_KEY = "sk-provider-9a8b7c6d5e4f3a2b1c0d9e8f"
ACCESS_FIELDS = {"call_id", "route", "call_type", "status", "model_group", "model_id", "latency_ms",
                 "prompt_tokens", "completion_tokens", "cost", "key_alias"}


async def rest_of(process, log: bytearray) -> list[str]:
    """Stop the gateway and every line it wrote."""
    process.send_signal(signal.SIGTERM)
    with trio.fail_after(30):
        while chunk := await process.stderr.receive_some():
            log += chunk
        await process.wait()
    return [line for line in log.decode().splitlines() if line.strip()]


@pytest.mark.parametrize("workers", [1, 2])
async def test_json_logs_have_an_access_line_per_call_in_every_worker_and_no_secret(upstream, tmp_path, workers):
    log = bytearray()
    server = f'master_key = "{MASTER_KEY}"\nlog_format = "json"'
    model = f'api_key = "{PROVIDER_KEY}"\nnum_retries = 0'
    call_ids: list[str] = []
    async with served_process(upstream, tmp_path, graceful_timeout_s=5, workers=workers, server=server, model=model,
                              log=log) as (process, base_url):
        master = {"Authorization": f"Bearer {MASTER_KEY}"}
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as admin:
            made = await admin.post("/key/generate", json={"key_alias": "ci-key"}, headers=master)
            virtual_key = made.json()["key"]
        for number in range(8):
            if number == 6:
                upstream.default = Behavior(status=500)
            # A connection per call, so that with two workers both serve some.
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                answer = await client.post("/v1/chat/completions", json=chat("gpt", stream=number % 2 == 1),
                                           headers={"Authorization": f"Bearer {virtual_key}"})
            assert answer.status_code == (200 if number < 6 else 502)
            call_ids.append(answer.headers["x-gateway-call-id"])
        lines = await rest_of(process, log)

    parsed = [orjson.loads(line) for line in lines]  # every line is one JSON object
    access = {line["call_id"]: line for line in parsed if line["logger"] == "gateway_trio.access"}
    assert set(access) == set(call_ids)
    for call_id in call_ids:
        assert ACCESS_FIELDS <= set(access[call_id])
        assert access[call_id]["key_alias"] == "ci-key"
        assert access[call_id]["model_group"] == "gpt"
    assert [access[c]["status"] for c in call_ids] == ["success"] * 6 + ["failure"] * 2
    assert access[call_ids[0]]["prompt_tokens"] > 0
    whole = "\n".join(lines)
    for secret in (MASTER_KEY, PROVIDER_KEY, virtual_key):
        assert secret not in whole
