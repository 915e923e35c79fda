"""Hostile hooks, guardrails and clients against the real gateway: none of them may stretch a
stream past its deadline or the shutdown, crash a call, or lose its record."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import httpx
import orjson
import pytest
import trio
from harness import chat, client_and_gateway, eventually, make_config, serving, sse_payloads

from gateway_trio.guardrails import CustomGuardrail
from gateway_trio.hooks import CustomLogger
from gateway_trio.testing import Behavior

HOOK_TIMEOUT_S = 0.2


def config_for(upstream, *, timeout_s=30, guardrails=(), database="sqlite:///:memory:", graceful_timeout_s=2,
               send_timeout_s=60):
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1",
             "guardrails": [g["name"] for g in guardrails]}
    return make_config(models=[model], guardrails=list(guardrails), hooks={"timeout_s": HOOK_TIMEOUT_S},
                       router={"num_retries": 0, "timeout_s": timeout_s, "allowed_fails": 1},
                       database={"url": database},
                       server={"graceful_timeout_s": graceful_timeout_s, "send_timeout_s": send_timeout_s})


def payloads(text):
    return [orjson.loads(p) for p in sse_payloads(text) if p != "[DONE]"]


def content_of(text):
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in payloads(text) if c.get("choices"))


def not_cooling(gateway):
    """No deployment cooled, and none charged a failure (a group's only deployment is cooled
    only at volume, so the failures it was charged are what shows it was blamed)."""
    now = trio.current_time()
    return all(load.cooled_until <= now and not load.recent_failures for load in gateway.router.loads.values())


# --- should_run_guardrail that raises -------------------------------------------------------

class RaisingShouldRun(CustomGuardrail):
    def should_run_guardrail(self, data, event_type):
        raise RuntimeError("should_run_guardrail bug")

    async def apply_guardrail(self, inputs, request_data, input_type):
        raise AssertionError("never reached")


@pytest.mark.parametrize(("mode", "stream"), [("pre_call", False), ("post_call", False), ("post_call", True)])
@pytest.mark.parametrize("fail_open", [False, True])
async def test_a_raising_should_run_guardrail_fails_closed_unless_fail_open(upstream, mode, stream, fail_open):
    rule = {"name": "shaky", "guardrail": "hostile.test_hooks_hostile:RaisingShouldRun", "mode": mode,
            "fail_open": fail_open}
    async with client_and_gateway(config_for(upstream, guardrails=[rule])) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt", "guard me", stream=stream))
        await eventually(lambda: gateway.spend._accepted >= 1)
        await gateway.spend.flush()
        [record] = (await client.get("/spend/logs", params={"call_id": response.headers["x-gateway-call-id"]})).json()
    [run] = record["guardrail_information"]
    assert (run["name"], run["mode"], run["status"]) == ("shaky", mode, "failed")
    assert "should_run_guardrail bug" in run["detail"]
    if fail_open:
        assert response.status_code == 200 and record["status"] == "success"
        assert (content_of(response.text) if stream else response.json()["choices"][0]["message"]["content"]) == "guard me"
    elif stream:  # a post-call check of a stream ends it with an error event
        assert response.status_code == 200 and record["status"] == "failure"
        assert "shaky" in payloads(response.text)[-1]["error"]["message"]
        assert sse_payloads(response.text)[-1] != "[DONE]"
    else:
        assert response.status_code == 400 and record["status"] == "failure"
        assert "shaky" in response.json()["error"]["message"]


# --- per-chunk hooks that time out --------------------------------------------------------

class HangingPerChunk(CustomLogger):
    def __init__(self):
        super().__init__()
        self.calls = 0

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        self.calls += 1
        await trio.sleep_forever()


async def test_a_per_chunk_hook_that_times_out_is_skipped_for_the_rest_of_the_stream(upstream):
    upstream.default = Behavior(content="a b c d e f g h i j", chunks=10)
    hook = HangingPerChunk()
    async with client_and_gateway(config_for(upstream), hooks=[hook]) as (client, _):
        started = time.monotonic()
        first = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
        elapsed = time.monotonic() - started
        second = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
        metrics = (await client.get("/metrics")).text
    for response in (first, second):
        assert content_of(response.text) == "a b c d e f g h i j"
        assert sse_payloads(response.text)[-1] == "[DONE]"
    assert hook.calls == 2  # once per stream: it timed out on its first chunk, then was skipped
    assert elapsed < 10 * HOOK_TIMEOUT_S
    name = "HangingPerChunk.async_post_call_streaming_hook"
    assert f'gateway_stream_hooks_skipped_total{{hook="{name}"}} 2.0' in metrics
    assert f'gateway_hook_failures_total{{hook="{name}"}} 2.0' in metrics


# --- the request deadline bounds the client side of a stream -----------------------------

class HangingIterator(CustomLogger):
    """Passes two chunks on, then waits forever: no per-call timeout covers an iterator hook."""

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        passed = 0
        async for chunk in response:
            yield chunk
            passed += 1
            if passed == 2:
                await trio.sleep_forever()


class SlowPerChunk(CustomLogger):
    """Each chunk takes a while, under the hook timeout, but they add up."""

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        await trio.sleep(0.5)
        return response


@pytest.mark.parametrize("hook", [HangingIterator, SlowPerChunk])
async def test_slow_stream_hooks_cannot_outlive_the_request_deadline(upstream, hook):
    upstream.default = Behavior(content="one two three four five six seven eight", chunks=8)
    config = config_for(upstream, timeout_s=1.0)
    config = config.model_copy(update={"hooks": config.hooks.model_copy(update={"timeout_s": 5})})
    async with client_and_gateway(config, hooks=[hook()]) as (client, gateway):
        started = time.monotonic()
        response = await client.post("/v1/chat/completions", json=chat("gpt", stream=True))
        elapsed = time.monotonic() - started
        await eventually(lambda: gateway.pipeline.finished)
        assert not_cooling(gateway)  # our hooks' slowness is not the deployment's failure
    assert response.status_code == 200
    last = sse_payloads(response.text)[-1]
    assert last != "[DONE]" and "deadline" in orjson.loads(last)["error"]["message"]
    assert elapsed < 3.0  # the deadline (1 s), not the hooks (4 s, or forever)
    assert dict(gateway.pipeline.finished) == {("completion", "failure"): 1}


async def _send_request(stream: trio.SocketStream, host: str, body: dict) -> None:
    data = orjson.dumps(body)
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n\r\n").encode()
    await stream.send_all(head + data)


async def small_window_stream(base_url: str) -> trio.SocketStream:
    """A raw connection with a 4 kB receive window, a streamed chat request already sent on it."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    await _send_request(stream, base_url, chat("gpt", stream=True))
    return stream


async def test_a_slow_reading_client_cannot_stretch_a_stream_past_the_deadline(upstream):
    # About 8 MB of answer, read at 20 kB/s through a 4 kB receive window: 400 s to read it all.
    upstream.default = Behavior(content="x" * 4000, chunks=2000)
    async with serving(config_for(upstream, timeout_s=1.0)) as (base_url, gateway):
        async with await small_window_stream(base_url) as stream:
            received = bytearray()
            with trio.move_on_after(6):
                while not gateway.pipeline.finished:
                    received += await stream.receive_some(1024)
                    await trio.sleep(0.05)
            finished = dict(gateway.pipeline.finished)
            with trio.fail_after(20):  # now read the rest quickly: it ends with the error event
                while not received.endswith(b"\r\n0\r\n\r\n") and (piece := await stream.receive_some(1 << 20)):
                    received += piece
    assert finished == {("completion", "failure"): 1}  # recorded at the deadline, not 400 s later
    events = [line for line in bytes(received).split(b"\n") if line.startswith(b"data: ")]
    assert events[-1] != b"data: [DONE]"
    assert b"deadline" in events[-1]
    assert len(received) < 4_000_000  # it stopped early: not all of it was sent


async def read_to_end(stream: trio.SocketStream) -> int:
    """Bytes read until the connection ends (closed or reset)."""
    total = 0
    try:
        while piece := await stream.receive_some(1 << 20):
            total += len(piece)
    except trio.BrokenResourceError:
        pass
    return total


async def test_a_client_that_stops_reading_is_dropped_and_its_call_recorded(upstream):
    # Hypercorn shields its socket writes: without a send timeout this stream, its record and
    # the server's shutdown would wait for the client forever.
    # 80 MB: more than every buffer (the trailing space spares the mock re-spacing 20,000 pieces,
    # a second of its CPU in the same event loop as the gateway's)
    upstream.default = Behavior(content="x" * 3999 + " ", chunks=20_000)
    # The deadline ends the call first (a failure); the send timeout then drops the connection,
    # whose pending writes the deadline cannot interrupt.
    async with serving(config_for(upstream, timeout_s=1.0, send_timeout_s=2.0)) as (base_url, gateway):
        async with await small_window_stream(base_url) as stream:
            with trio.move_on_after(8):  # the client reads nothing at all
                while not gateway.pipeline.finished:
                    await trio.sleep(0.05)
            finished = dict(gateway.pipeline.finished)
            await trio.sleep(3)  # still reading nothing, past the send timeout
            with trio.fail_after(10):
                left = await read_to_end(stream)
    assert finished == {("completion", "failure"): 1}
    assert left < 10_000_000  # the server dropped the connection: most of the 80 MB never left


# --- streams cut by the graceful shutdown -------------------------------------------------

async def test_streams_cut_at_the_graceful_timeout_end_with_an_error_and_a_failure_record(upstream, tmp_path):
    upstream.default = Behavior(chunks=100_000, chunk_delay_s=0.05)  # endless, slow
    database = tmp_path / "spend.db"
    config = config_for(upstream, database=f"sqlite:///{database}", graceful_timeout_s=1.5)
    received: list[str] = []
    headers = {}
    async with trio.open_nursery() as nursery:
        async with serving(config) as (base_url, gateway):
            async def read() -> None:
                async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                    async with client.stream("POST", "/v1/chat/completions", json=chat("gpt", stream=True)) as response:
                        headers.update(response.headers)
                        async for line in response.aiter_lines():
                            received.append(line)

            nursery.start_soon(read)
            await eventually(lambda: len(received) > 4)
            shutdown_at = time.monotonic()
        # Leaving `serving` shut the server down; the stream ended within the graceful timeout.
        stopped_after = time.monotonic() - shutdown_at
    data = [line for line in received if line.startswith("data: ")]
    assert data[-1] != "data: [DONE]"
    assert "shutting down" in orjson.loads(data[-1][len("data: "):])["error"]["message"]
    assert stopped_after < 1.5 + 5.0  # the graceful timeout, with room for a loaded machine; unended: forever
    assert dict(gateway.pipeline.finished) == {("completion", "failure"): 1}
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT status, error FROM spend_logs WHERE call_id = ?",
                          (headers["x-gateway-call-id"],)).fetchall()
    assert len(rows) == 1 and rows[0][0] == "failure" and "shutting down" in rows[0][1]


async def test_calls_cut_at_the_graceful_timeout_before_their_answer_are_failures(upstream, tmp_path):
    upstream.default = Behavior(delay_s=30)  # the upstream thinks past the graceful timeout
    database = tmp_path / "spend.db"
    config = config_for(upstream, database=f"sqlite:///{database}", graceful_timeout_s=0.5)
    async with trio.open_nursery() as nursery:
        async with serving(config) as (base_url, gateway):
            async def ask(stream: bool) -> None:
                async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                    with contextlib.suppress(httpx.RemoteProtocolError):
                        await client.post("/v1/chat/completions", json=chat("gpt", stream=stream))

            for stream in (False, True):
                nursery.start_soon(ask, stream)
            await upstream.wait_for_request(2)
    assert dict(gateway.pipeline.finished) == {("completion", "failure"): 2}
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT status, error FROM spend_logs").fetchall()
    assert len(rows) == 2 and all(status == "failure" and "shutting down" in error for status, error in rows)
