"""The example hooks in configs/examples/, loaded from their own config file."""

from pathlib import Path

import orjson
from harness import chat, client_and_gateway, eventually, sse_payloads

from gateway_trio.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "examples"


async def test_example_hooks_config(tmp_path, monkeypatch):
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv("GATEWAY_AUDIT_LOG", str(audit))
    config = load_config(EXAMPLES / "hooks.toml")
    config = config.model_copy(update={"database": config.database.model_copy(update={"url": f"sqlite:///{tmp_path}/s.db"})})
    async with client_and_gateway(config) as (client, gateway):
        plain = await client.post("/v1/chat/completions", json=chat("mock-gpt", "one two three"),
                                  headers={"x-request-id": "abc"})
        streamed = await client.post("/v1/chat/completions", json=chat("mock-gpt", "four five", stream=True))
        missing = await client.post("/v1/chat/completions", json=chat("no-such-model"))
        cost_logger = next(h for h in gateway.hooks.hooks if type(h).__name__ == "CostLogger")
        await eventually(lambda: cost_logger.calls == 2)
        await eventually(lambda: audit.exists() and len(audit.read_text().splitlines()) == 3)
    assert plain.headers["x-served-by"] == f"mock/{plain.headers['x-gateway-model-id']}"
    assert plain.headers["x-served-outcome"] == "success" and plain.headers["x-echo-request-id"] == "abc"
    assert streamed.headers["x-served-outcome"] == "success"
    assert sse_payloads(streamed.text)[-1] == "[DONE]"
    assert missing.headers["x-served-outcome"] == "failure"
    assert cost_logger.total_by_group["mock-gpt"] > 0  # priced from [models.info]
    lines = [orjson.loads(line) for line in audit.read_text().splitlines()]
    assert sorted(line["status"] for line in lines) == ["failure", "success", "success"]
