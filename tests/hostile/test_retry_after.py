"""An upstream's `Retry-After: inf`, `nan` or `1e308` is clamped (issue 10, point 12).

No wait the gateway repeats or sleeps on is infinite, not a number, or longer than
`MAX_RETRY_AFTER_S`; our own `retry-after` header is always a whole number of seconds.
"""

import math

import pytest
from harness import chat, gateway_client, make_config

from gateway_trio.actors.deployment import _retry_after
from gateway_trio.errors import MAX_RETRY_AFTER_S, RateLimited, UpstreamError
from hostile.hostile_upstream import always, json_reply

LIMITED = {"error": {"message": "slow down", "type": "rate_limit_error"}}


@pytest.mark.parametrize("value, header", [("inf", "3600"), ("1e308", "3600"), ("nan", None), ("-5", "1")])
async def test_a_hostile_retry_after_is_clamped(hostile, value, header):
    upstream = await hostile(always(json_reply(LIMITED, status=429, headers={"retry-after": value})))
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"}
    config = make_config(models=[model], router={"num_retries": 1, "retry_backoff_s": 0, "timeout_s": 5})
    async with gateway_client(config) as client:
        response = await client.post("/v1/chat/completions", json=chat("gpt"))
    assert response.status_code == 429, response.text
    assert response.headers.get("retry-after") == header
    if header == "3600":
        assert len(upstream.requests) == 1  # an hour's wait outlives the request: answered at once


@pytest.mark.parametrize("value, seconds", [
    ("inf", MAX_RETRY_AFTER_S), ("-inf", 0.0), ("1e308", MAX_RETRY_AFTER_S), ("nan", None), ("12", 12.0),
    ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER_S), ("soon", None),
])
def test_retry_after_headers_parse_to_a_sane_wait(value, seconds):
    assert _retry_after(value) == seconds


@pytest.mark.parametrize("wait", [math.inf, math.nan, 1e308, -1.0])
def test_no_error_carries_an_unusable_wait(wait):
    for error in (RateLimited("busy", retry_after=wait), UpstreamError("busy", upstream_status=429, retry_after=wait)):
        assert error.retry_after is None or 0 <= error.retry_after <= MAX_RETRY_AFTER_S
        assert error.headers().get("retry-after", "1").isdigit()
