"""A guardrail service is an upstream too: its answers are never inflated or read unbounded."""

import tracemalloc

import pytest

from gateway_trio.guardrails.base import GuardrailBlocked
from gateway_trio.guardrails.http import GuardrailServiceError, HTTPGuardrail
from hostile.hostile_upstream import always, head, json_reply, quick_gzip_bomb

INPUTS = {"texts": ["hello"]}


async def test_a_compressed_verdict_is_refused_unread(hostile):
    bomb = quick_gzip_bomb(512)
    upstream = await hostile(always(
        head(200, {"content-type": "application/json", "content-encoding": "gzip"}, length=len(bomb)) + bomb))
    guard = HTTPGuardrail("ext", url=upstream.base_url + "/verdict")
    tracemalloc.start()
    try:
        with pytest.raises(GuardrailServiceError, match="compressed or oversized"):
            await guard.apply_guardrail(INPUTS, {}, "request")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await guard.aclose()
    assert peak < 64 << 20
    assert upstream.requests[0].headers["accept-encoding"] == "identity"


async def test_an_oversized_verdict_is_refused(hostile):
    upstream = await hostile(always(json_reply(b'{"action": "allow", "pad": "' + b"x" * (2 << 20) + b'"}')))
    guard = HTTPGuardrail("ext", url=upstream.base_url + "/verdict")
    try:
        with pytest.raises(GuardrailServiceError, match="compressed or oversized"):
            await guard.apply_guardrail(INPUTS, {}, "request")
    finally:
        await guard.aclose()


async def test_a_plain_verdict_still_decides(hostile):
    upstream = await hostile(always(json_reply({"action": "block", "reason": "no"})))
    guard = HTTPGuardrail("ext", url=upstream.base_url + "/verdict")
    try:
        with pytest.raises(GuardrailBlocked):
            await guard.apply_guardrail(INPUTS, {}, "request")
    finally:
        await guard.aclose()
