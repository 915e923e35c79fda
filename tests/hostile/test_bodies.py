"""Upstream bodies are bounded (issue 10, point 5): what an upstream sends cannot make the
gateway inflate, buffer or search without limit.

The gateway asks for `Accept-Encoding: identity` and refuses a compressed reply unread; a
reply over `router.max_response_mb`, a stream event over it, a head or trailer block over
64 KiB and endless interim answers are 502s, not memory.
"""

from __future__ import annotations

import time
import tracemalloc
from contextlib import contextmanager
from typing import Iterator

import orjson
import pytest
import trio
from harness import chat, gateway_client, make_config, sse_payloads

from gateway_trio.config import ConfigError
from hostile.hostile_upstream import (
    LAST_CHUNK,
    Request,
    always,
    chat_chunk,
    chat_completion,
    chunk,
    head,
    json_reply,
    quick_gzip_bomb,
    sse_event,
)

MiB = 1 << 20


def config_for(upstream, **router):
    return make_config(models=[{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"}],
                       router={"num_retries": 0, **router})


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """The peak of Python allocations inside the block (the gateway runs in this process)."""
    tracemalloc.start()
    peak: list[int] = []
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def error_message(response) -> str:
    return response.json()["error"]["message"]


async def test_a_gzip_bomb_reply_is_refused_at_once_and_never_inflated(hostile):
    bomb = quick_gzip_bomb(1024)  # 1 MB on the wire, 1 GiB inflated
    upstream = await hostile(always(json_reply(bomb, headers={"content-encoding": "gzip"})))
    async with gateway_client(config_for(upstream)) as client:
        with peak_memory() as peak:
            started = time.monotonic()
            response = await client.post("/v1/chat/completions", json=chat("gpt"))
            elapsed = time.monotonic() - started
        alive = await client.get("/health/liveliness")
    assert response.status_code == 502
    assert "compressed reply we did not ask for" in error_message(response)
    assert peak[0] < 64 * MiB, f"{peak[0] / MiB:.0f} MiB allocated for a refused reply"
    assert elapsed < 5
    assert alive.status_code == 200
    assert upstream.requests[0].headers["accept-encoding"] == "identity"


async def test_a_gzip_bomb_stream_is_refused_before_its_first_chunk(hostile):
    bomb = quick_gzip_bomb(1024)

    async def script(request: Request, stream: trio.SocketStream) -> None:
        await stream.send_all(head(200, {"content-type": "text/event-stream", "content-encoding": "gzip"}, chunked=True))
        for start in range(0, len(bomb), 65536):
            await stream.send_all(chunk(bomb[start:start + 65536]))
        await stream.send_all(LAST_CHUNK)

    upstream = await hostile(script)
    async with gateway_client(config_for(upstream)) as client:
        with peak_memory() as peak, trio.fail_after(20):
            response = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
        alive = await client.get("/health/liveliness")
    assert response.status_code == 502
    assert "compressed reply we did not ask for" in error_message(response)
    assert peak[0] < 64 * MiB, f"{peak[0] / MiB:.0f} MiB allocated for a refused stream"
    assert alive.status_code == 200


def chunked_json(body: bytes) -> bytes:
    pieces = [chunk(body[start:start + 4096]) for start in range(0, len(body), 4096)]
    return head(200, {"content-type": "application/json"}, chunked=True) + b"".join(pieces) + LAST_CHUNK


@pytest.mark.parametrize("framing", [json_reply, chunked_json], ids=["content-length", "chunked"])
async def test_a_reply_over_the_cap_is_a_502_naming_the_cap(hostile, framing):
    large = orjson.dumps(chat_completion(content="x" * 200_000))
    upstream = await hostile(always(framing(large)))
    async with gateway_client(config_for(upstream, max_response_mb=0.1)) as client:
        response = await client.post("/v1/chat/completions", json=chat("gpt"))
    assert response.status_code == 502
    assert "larger than the 0.1 MB limit (router.max_response_mb)" in error_message(response)


async def test_a_reply_under_the_cap_is_answered(hostile):
    upstream = await hostile(always(chunked_json(orjson.dumps(chat_completion(content="x" * 50_000)))))
    async with gateway_client(config_for(upstream, max_response_mb=0.1)) as client:
        response = await client.post("/v1/chat/completions", json=chat("gpt"))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "x" * 50_000


def endless_event(*, first: bytes | None) -> object:
    """A stream that starts an event 200 KB long and never ends it, nor the stream."""

    async def script(request: Request, stream: trio.SocketStream) -> None:
        await stream.send_all(head(200, {"content-type": "text/event-stream"}, chunked=True))
        if first is not None:
            await stream.send_all(chunk(sse_event(first)))
        line = b"data: " + b"x" * 200_000
        for start in range(0, len(line), 8192):
            await stream.send_all(chunk(line[start:start + 8192]))
        await trio.sleep_forever()

    return script


async def test_a_stream_event_over_the_cap_ends_the_stream_with_an_error_event(hostile):
    upstream = await hostile(endless_event(first=chat_chunk("before")))
    async with gateway_client(config_for(upstream, max_response_mb=0.1)) as client:
        with trio.fail_after(10):
            response = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
    assert response.status_code == 200
    payloads = sse_payloads(response.text)
    assert orjson.loads(payloads[0])["choices"][0]["delta"]["content"] == "before"
    error = orjson.loads(payloads[-1])["error"]
    assert "stream event larger than the 0.1 MB limit (router.max_response_mb)" in error["message"]
    assert "[DONE]" not in payloads


async def test_a_stream_whose_first_event_is_over_the_cap_is_a_502(hostile):
    upstream = await hostile(endless_event(first=None))
    async with gateway_client(config_for(upstream, max_response_mb=0.1)) as client:
        with trio.fail_after(10):
            response = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
    assert response.status_code == 502
    assert "router.max_response_mb" in error_message(response)


async def endless_interim_answers(request: Request, stream: trio.SocketStream) -> None:
    while True:
        await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        await trio.sleep(0.001)


async def endless_trailers(request: Request, stream: trio.SocketStream) -> None:
    body = orjson.dumps(chat_completion())
    await stream.send_all(head(200, {"content-type": "application/json"}, chunked=True) + chunk(body) + b"0\r\n")
    while True:
        await stream.send_all(b"x-trailer: %s\r\n" % (b"t" * 1000))
        await trio.sleep(0.001)


huge_head = always(head(200, {f"x-filler-{i}": "v" * 100 for i in range(1000)}, length=2) + b"{}")


@pytest.mark.parametrize("script", [huge_head, endless_interim_answers, endless_trailers],
                         ids=["huge-head", "endless-interim-answers", "endless-trailers"])
async def test_a_header_block_without_end_is_a_502(hostile, script):
    upstream = await hostile(script)
    async with gateway_client(config_for(upstream)) as client:
        with trio.fail_after(10):
            response = await client.post("/v1/chat/completions", json=chat("gpt"))
    assert response.status_code == 502


async def test_a_dripped_head_is_read_and_one_dripping_forever_is_cut_by_the_deadline(hostile):
    reply = json_reply(chat_completion())

    async def dripped(request: Request, stream: trio.SocketStream) -> None:
        if request.json()["messages"][0]["content"] == "forever":
            await stream.send_all(b"HTTP/1.1 200 OK\r\n")
            while True:
                await stream.send_all(b"x-drip: 1\r\n")
                await trio.sleep(0.05)
        for start in range(0, len(reply), 16):
            await stream.send_all(reply[start:start + 16])
            await trio.sleep(0.001)

    upstream = await hostile(dripped)
    async with gateway_client(config_for(upstream, timeout_s=1)) as client:
        answered = await client.post("/v1/chat/completions", json=chat("gpt"))
        with trio.fail_after(10):
            cut = await client.post("/v1/chat/completions", json=chat("gpt", "forever"))
    assert answered.status_code == 200 and answered.json()["choices"][0]["message"]["content"] == "hello"
    assert cut.status_code == 504


async def test_a_compressed_or_huge_error_reply_keeps_its_status_and_is_not_read(hostile):
    bomb = json_reply(quick_gzip_bomb(256), status=429, headers={"content-encoding": "gzip", "retry-after": "7"})
    huge = json_reply(b"x" * (4 * MiB), status=503)
    replies = iter([bomb, huge])

    async def script(request: Request, stream: trio.SocketStream) -> None:
        await stream.send_all(next(replies))

    upstream = await hostile(script)
    async with gateway_client(config_for(upstream)) as client:
        with peak_memory() as peak:
            limited = await client.post("/v1/chat/completions", json=chat("gpt"))
            unavailable = await client.post("/v1/chat/completions", json=chat("gpt"))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert unavailable.status_code == 502 and error_message(unavailable) == "upstream returned HTTP 503"
    assert peak[0] < 64 * MiB, f"{peak[0] / MiB:.0f} MiB allocated for two error replies"


def test_the_cap_is_a_setting_of_64_mb_by_default_and_must_be_positive():
    assert make_config().router.max_response_bytes == 64 * MiB
    assert make_config(router={"max_response_mb": 0.5}).router.max_response_bytes == MiB // 2
    with pytest.raises(ConfigError, match="router.max_response_mb"):
        make_config(router={"max_response_mb": 0})
