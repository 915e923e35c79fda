"""Cancellation, backpressure, long streams and graceful shutdown, against real sockets."""

import signal
import sqlite3
from pathlib import Path

import httpx
import trio
from harness import chat, gateway_client, make_config, running_gateway, served_process, sse_payloads

from gateway_trio.testing import Behavior

ROOT = Path(__file__).resolve().parents[2]
# Real sockets on a loaded machine: a closed upstream is seen at once (milliseconds), and the
# bound only has to tell that from never, so it is generous.
CLOSES_WITHIN_S = 5.0


def config_for(upstream, **router):
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"}
    return make_config(models=[model], router=router)


async def test_client_disconnect_mid_stream_closes_the_upstream_at_once(upstream):
    upstream.default = Behavior(chunks=10, stall_after=3)
    async with gateway_client(config_for(upstream)) as client:
        async with client.stream("POST", "/v1/chat/completions", json=chat("gpt", stream=True)) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if '"content"' in line:
                    break
        left_at = trio.current_time()  # leaving the block closed our connection mid-stream
        record = upstream.received[0]
        await upstream.wait_for(lambda: record.closed_at is not None, timeout=CLOSES_WITHIN_S)
    assert record.disconnected_early
    assert record.closed_at - left_at < CLOSES_WITHIN_S  # the upstream stalls forever: only we close it


async def test_client_disconnect_before_a_non_streaming_answer_closes_the_upstream(upstream):
    upstream.default = Behavior(delay_s=30)
    async with running_gateway(config_for(upstream)) as base_url:
        async with trio.open_nursery() as nursery:
            async def ask() -> None:
                async with httpx.AsyncClient(base_url=base_url) as client:
                    await client.post("/v1/chat/completions", json=chat("gpt"))

            nursery.start_soon(ask)
            record = await upstream.wait_for_request(1)
            nursery.cancel_scope.cancel()  # the client goes away while the upstream thinks
        left_at = trio.current_time()
        await upstream.wait_for(lambda: record.closed_at is not None, timeout=CLOSES_WITHIN_S)
    assert record.closed_at - left_at < CLOSES_WITHIN_S  # well before the upstream's 30 s answer


async def test_slow_reader_does_not_make_the_gateway_buffer_the_answer(upstream):
    # 20,000 chunks of ~1 kB: far more than every socket buffer on the way can hold.
    upstream.default = Behavior(content="x" * 1000, chunks=20_000)
    async with gateway_client(config_for(upstream)) as client:
        async with client.stream("POST", "/v1/chat/completions", json=chat("gpt", stream=True)) as response:
            pieces = response.aiter_bytes()
            received = len(await pieces.__anext__())
            record = upstream.received[0]
            await trio.sleep(1.0)  # the client reads nothing meanwhile
            # Bounded channels all the way: the upstream is held back, not drained into memory.
            assert record.finished_at is None
            async for piece in pieces:
                received += len(piece)
    assert received > 20_000_000
    assert record.finished_at is not None


async def test_long_streams_outlive_quarts_response_timeout(upstream):
    upstream.default = Behavior(chunks=6, chunk_delay_s=0.25)
    async with gateway_client(config_for(upstream), quart_config={"RESPONSE_TIMEOUT": 0.5}) as client:
        response = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
    assert sse_payloads(response.text)[-1] == "[DONE]"


async def test_sigterm_lets_in_flight_streams_finish(upstream, tmp_path):
    upstream.default = Behavior(chunks=8, chunk_delay_s=0.25)
    async with served_process(upstream, tmp_path, graceful_timeout_s=10) as (process, base_url):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            async with client.stream("POST", "/v1/chat/completions", json=chat("gpt", stream=True)) as response:
                lines = response.aiter_lines()
                async for line in lines:
                    if line.startswith("data: "):
                        break
                process.send_signal(signal.SIGTERM)
                rest = [line async for line in lines]
        assert [p for p in sse_payloads("\n".join(rest))][-1] == "[DONE]"
        with trio.fail_after(15):
            assert await process.wait() == 0


async def test_a_stream_dropped_unread_still_closes_its_upstream(upstream):
    """A streamed answer built but never sent (the request ended before the server read a frame):
    the request's own cleanup closes the upstream and records the call, no collector involved."""
    from gateway_trio.apis import CHAT
    from gateway_trio.calls import Call
    from gateway_trio.gateway import Gateway
    from gateway_trio.pipeline.frames import closing_unread_frames

    upstream.default = Behavior(chunks=10, stall_after=2)
    gateway = Gateway(config_for(upstream))
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run)
        call = Call(CHAT, "gpt", chat("gpt", stream=True), stream=True)
        kept = []
        with closing_unread_frames():  # what the request handler runs each request in
            answer = await gateway.pipeline.serve(call)
            kept.append(answer)  # held, so only the cleanup (not a collector) can close it
            record = upstream.received[0]
            assert record.closed_at is None
        await upstream.wait_for(lambda: record.closed_at is not None, timeout=2)
        assert call.finished and gateway.pipeline.finished["completion", "client_disconnected"] == 1
        nursery.cancel_scope.cancel()


class SlowHeaders:
    """A response-headers hook slower than the client's patience."""

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None):
        await trio.sleep(30)
        return {}


async def test_a_client_gone_before_the_stream_starts_closes_its_upstream(upstream):
    """The client leaves while the headers hook runs, after the upstream stream is open and before
    any answer exists: the pipeline closes the stream it opened."""
    from gateway_trio.hooks import CustomLogger

    class Hook(SlowHeaders, CustomLogger):
        pass

    upstream.default = Behavior(chunks=10, stall_after=2)
    async with gateway_client(config_for(upstream), hooks=[Hook()]) as client:
        with trio.move_on_after(1):
            await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
        record = upstream.received[0]
        await upstream.wait_for(lambda: record.closed_at is not None, timeout=5)
    assert record.disconnected_early


async def test_with_workers_a_stream_cut_at_the_graceful_timeout_ends_with_an_error_and_a_failure(upstream, tmp_path):
    """Each worker's gateway hears of the shutdown, as a single process's does."""
    upstream.default = Behavior(chunks=100_000, chunk_delay_s=0.05)  # endless, slow
    received: list[str] = []
    async with served_process(upstream, tmp_path, graceful_timeout_s=1.5, workers=2) as (process, base_url):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            async with client.stream("POST", "/v1/chat/completions", json=chat("gpt", stream=True)) as response:
                call_id = response.headers["x-gateway-call-id"]
                async for line in response.aiter_lines():
                    received.append(line)
                    if len(received) == 6:
                        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await process.wait() == 0
    data = [line for line in received if line.startswith("data: ")]
    assert data[-1] != "data: [DONE]"
    assert "shutting down" in data[-1]
    with sqlite3.connect(tmp_path / "spend.db") as db:
        rows = db.execute("SELECT status FROM spend_logs WHERE call_id = ?", (call_id,)).fetchall()
    assert rows == [("failure",)]
