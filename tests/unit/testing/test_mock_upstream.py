"""The mock upstream speaks the real wire formats and plays its faults on real sockets."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import orjson
import pytest
import trio

from gateway_trio.testing import Behavior, MockUpstream
from gateway_trio.testing.mock_upstream import plan_chunks

ROOT = Path(__file__).resolve().parents[3]
CHAT = "/v1/chat/completions"
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "test"}


def chat(text: str = "hello there world", model: str = "m", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def anthropic(text: str = "hello there world", model: str = "claude", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}], **extra}


def openai_events(raw: str) -> list[Any]:
    """Parsed `data:` payloads; [DONE] and undecodable payloads are kept as strings."""
    out: list[Any] = []
    for block in raw.split("\n\n"):
        if block.startswith("data: "):
            payload = block[len("data: "):]
            try:
                out.append(orjson.loads(payload))
            except orjson.JSONDecodeError:
                out.append(payload)
    return out


def anthropic_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in filter(None, raw.split("\n\n")):
        event_line, data_line = block.split("\n")
        out.append((event_line.removeprefix("event: "), orjson.loads(data_line.removeprefix("data: "))))
    return out


def contents(events: list[Any]) -> list[str]:
    return [
        e["choices"][0]["delta"]["content"]
        for e in events
        if isinstance(e, dict) and e.get("choices") and "content" in e["choices"][0]["delta"]
    ]


# -- wire formats ----------------------------------------------------------------------


async def test_openai_json_echo_and_record(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=chat("say hi please"), headers={"Authorization": "Bearer sk-x"})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "m"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "say hi please", "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}

    rec = await mock.wait_for_request(1)
    assert (rec.method, rec.path, rec.query, rec.model, rec.status) == ("POST", CHAT, "", "m", 200)
    assert rec.headers["authorization"] == "Bearer sk-x"
    assert rec.json == chat("say hi please") and orjson.loads(rec.body) == rec.json
    assert rec.first_byte_at is not None and rec.finished_at is not None
    assert rec.received_at <= rec.first_byte_at <= rec.finished_at
    assert not rec.disconnected_early


async def test_openai_stream_one_chunk_per_word(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=chat("one two  three", stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    events = openai_events(response.text)
    assert contents(events) == ["one ", "two  ", "three"]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[0]["object"] == "chat.completion.chunk"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1] == "[DONE]"
    assert all("usage" not in e for e in events[:-1])


async def test_openai_stream_include_usage(client: httpx.AsyncClient) -> None:
    body = chat("a b c d", stream=True, stream_options={"include_usage": True})
    events = openai_events((await client.post(CHAT, json=body)).text)
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
    assert all(e["usage"] is None for e in events[:-2])
    assert events[-1] == "[DONE]"


async def test_plain_chat_path_and_configured_content(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.behaviors["fixed"] = Behavior(content="canned reply")
    response = await client.post("/chat/completions", json=chat("ignored", model="fixed"))
    assert response.json()["choices"][0]["message"]["content"] == "canned reply"


async def test_azure_path(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.behaviors["my-dep"] = Behavior(content="from azure")
    url = "/openai/deployments/my-dep/chat/completions?api-version=2024-06-01"
    body = {"messages": [{"role": "user", "content": "hi"}]}
    response = await client.post(url, json=body, headers={"api-key": "k"})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "from azure"
    rec = mock.received[0]
    assert rec.path == "/openai/deployments/my-dep/chat/completions"
    assert rec.params == {"api-version": "2024-06-01"}
    assert rec.model == "my-dep" and rec.headers["api-key"] == "k"

    missing_version = await client.post("/openai/deployments/my-dep/chat/completions", json=body)
    assert missing_version.status_code == 404


async def test_anthropic_json(client: httpx.AsyncClient) -> None:
    body = anthropic("hi there", system="be brief")
    response = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    body = response.json()
    assert body["type"] == "message" and body["role"] == "assistant" and body["model"] == "claude"
    assert body["content"] == [{"type": "text", "text": "hi there"}]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"] == {"input_tokens": 4, "output_tokens": 2}


async def test_anthropic_stream_event_sequence(client: httpx.AsyncClient) -> None:
    body = anthropic([{"type": "text", "text": "alpha beta gamma"}], stream=True)
    response = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    events = anthropic_events(response.text)
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 3 + [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in events)
    assert events[0][1]["message"]["usage"]["input_tokens"] == 3
    assert [d["delta"]["text"] for n, d in events if n == "content_block_delta"] == ["alpha ", "beta ", "gamma"]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"] == {"output_tokens": 3}


async def test_embeddings(client: httpx.AsyncClient) -> None:
    body = {"model": "emb", "input": ["a", "b"]}
    first = (await client.post("/v1/embeddings", json=body)).json()
    second = (await client.post("/v1/embeddings", json=body)).json()
    assert first == second and first["object"] == "list"
    vectors = [item["embedding"] for item in first["data"]]
    assert len(vectors) == 2 and len(vectors[0]) == 8 and vectors[0] != vectors[1]
    encoded = (await client.post("/v1/embeddings", json={**body, "encoding_format": "base64"})).json()
    decoded = struct.unpack("<8f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert decoded == pytest.approx(vectors[0], abs=1e-6)


async def test_bad_requests(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/nope", json={})).status_code == 404
    bad_json = await client.post(CHAT, content=b"{nope", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and set(bad_json.json()["error"]) == {"message", "type", "param", "code"}
    no_max_tokens = await client.post("/v1/messages", json={"model": "c", "messages": []})
    assert no_max_tokens.status_code == 400
    assert no_max_tokens.json()["error"]["type"] == "invalid_request_error"


# -- chunk planning --------------------------------------------------------------------


def test_plan_chunks() -> None:
    assert plan_chunks("a b c d e", 2) == ["a b c ", "d e"]
    assert plan_chunks("a b", 5) == ["a ", "b ", "a ", "b ", "a"]
    assert plan_chunks("a b", 0) == []
    assert "".join(plan_chunks("  lead and trail  ", None)) == "  lead and trail  "


async def test_exact_chunk_count(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(chunks=7, content="short text")
    events = openai_events((await client.post(CHAT, json=chat(stream=True))).text)
    assert len(contents(events)) == 7
    messages = await client.post("/v1/messages", json=anthropic(stream=True), headers=ANTHROPIC_HEADERS)
    assert sum(name == "content_block_delta" for name, _ in anthropic_events(messages.text)) == 7


# -- faults ----------------------------------------------------------------------------


async def test_status_fault_in_both_shapes(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(status=500)
    openai_error = await client.post(CHAT, json=chat(stream=True))
    assert openai_error.status_code == 500
    assert openai_error.json()["error"]["type"] == "server_error"
    assert set(openai_error.json()["error"]) == {"message", "type", "param", "code"}

    mock.default = Behavior(status=529)
    anthropic_error = await client.post("/v1/messages", json=anthropic(), headers=ANTHROPIC_HEADERS)
    assert anthropic_error.status_code == 529
    assert anthropic_error.json()["type"] == "error"
    assert set(anthropic_error.json()["error"]) == {"type", "message"}
    assert anthropic_error.json()["error"]["type"] == "overloaded_error"
    assert mock.received[-1].status == 529


async def test_fault_message_from_content(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(status=400, content="This model's maximum context length is 8 tokens")
    response = await client.post(CHAT, json=chat())
    assert response.json()["error"]["message"] == "This model's maximum context length is 8 tokens"


async def test_rate_limit_with_retry_after(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.behaviors["limited"] = Behavior(status=429, retry_after=2)
    response = await client.post(CHAT, json=chat(model="limited"))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "2000"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    ok = await client.post(CHAT, json=chat(model="other"))
    assert ok.status_code == 200 and "retry-after" not in ok.headers


async def test_fail_times_then_success(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.behaviors["flaky"] = Behavior(status=503, fail_times=2)
    statuses = [(await client.post(CHAT, json=chat(model="flaky"))).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert [r.status for r in mock.received] == statuses


async def test_slow_first_byte(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(first_byte_delay_s=0.3, chunk_delay_s=0.05)
    start = trio.current_time()
    async with client.stream("POST", CHAT, json=chat("a b", stream=True)) as response:
        headers_at = trio.current_time()
        await response.aread()
    assert headers_at - start >= 0.3
    rec = mock.received[0]
    assert rec.first_byte_at is not None and rec.finished_at is not None
    assert rec.first_byte_at - rec.received_at >= 0.3
    assert rec.finished_at - rec.first_byte_at >= 0.05


async def test_delay_applies_to_json(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(delay_s=0.2)
    start = trio.current_time()
    assert (await client.post(CHAT, json=chat())).status_code == 200
    assert trio.current_time() - start >= 0.2


async def test_stall_then_client_close_is_seen(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(stall_after=2, content="w1 w2 w3 w4")
    seen: list[str] = []
    async with client.stream("POST", CHAT, json=chat(stream=True)) as response:
        lines = response.aiter_lines()
        while len(seen) < 2:
            line = await lines.__anext__()
            if line.startswith("data: "):
                seen.extend(contents(openai_events(line)))
        with trio.move_on_after(0.2) as idle:
            await lines.__anext__()
            await lines.__anext__()  # the blank line after the 2nd event, then nothing
        assert idle.cancelled_caught
    closed_by_client = trio.current_time()
    assert seen == ["w1 ", "w2 "]
    rec = await mock.wait_for(lambda: mock.received[0].closed_at and mock.received[0], timeout=10)
    assert rec.closed_at - closed_by_client < 5  # at once, or never: generous for a loaded machine
    assert rec.disconnected_early and rec.finished_at is None
    await mock.wait_for(lambda: mock.open_connections == 0, timeout=10)


async def test_client_leaving_during_delay_is_seen(mock: MockUpstream) -> None:
    mock.default = Behavior(delay_s=30)
    async with httpx.AsyncClient(base_url=mock.base_url, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(CHAT, json=chat())
    gave_up = trio.current_time()
    rec = await mock.wait_for(lambda: mock.received[0].closed_at and mock.received[0], timeout=10)
    assert rec.closed_at - gave_up < 5  # long before the 30 s delay ends; generous for a loaded machine
    assert rec.disconnected_early and rec.first_byte_at is None


async def test_drop_mid_stream(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(drop_after=2, content="a b c d")
    raw = b""
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        async with client.stream("POST", CHAT, json=chat(stream=True)) as response:
            async for data in response.aiter_bytes():
                raw += data
    assert contents(openai_events(raw.decode())) == ["a ", "b "]
    rec = mock.received[0]
    assert rec.closed_at is not None and rec.finished_at is None and not rec.disconnected_early


async def test_drop_without_response_for_json(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(drop_after=0)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(CHAT, json=chat())


async def test_malformed_chunk_then_continue(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(malformed_after=1, content="x y z")
    events = openai_events((await client.post(CHAT, json=chat(stream=True))).text)
    assert events[1] == "{not json"
    assert contents(events) == ["x ", "y ", "z"]
    assert events[-1] == "[DONE]"

    raw = (await client.post("/v1/messages", json=anthropic(stream=True), headers=ANTHROPIC_HEADERS)).text
    assert "event: content_block_delta\ndata: {not json\n\n" in raw
    assert raw.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')


async def test_error_event_mid_stream(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(error_after=1, content="x y z")
    events = openai_events((await client.post(CHAT, json=chat(stream=True))).text)
    assert contents(events) == ["x "]
    assert events[-1]["error"]["type"] == "server_error" and "[DONE]" not in events

    raw = (await client.post("/v1/messages", json=anthropic(stream=True), headers=ANTHROPIC_HEADERS)).text
    name, data = anthropic_events(raw)[-1]
    assert name == "error" and data == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


# -- connections and records -------------------------------------------------------------


async def test_keep_alive_reuses_one_connection(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    for index in range(3):
        await client.post(CHAT, json=chat(stream=bool(index % 2)))
    await client.post("/v1/messages", json=anthropic(), headers=ANTHROPIC_HEADERS)
    assert len({r.connection_id for r in mock.received}) == 1
    assert mock.max_open_connections == 1 and mock.open_connections == 1
    assert all(r.closed_at is None for r in mock.received)
    await client.aclose()
    await mock.wait_for(lambda: mock.open_connections == 0, timeout=10)
    assert all(r.closed_at is not None and not r.disconnected_early for r in mock.received)


async def test_chunked_request_body(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    payload = orjson.dumps(chat("chunked body"))

    async def body() -> AsyncIterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    response = await client.post(CHAT, content=body(), headers={"content-type": "application/json"})
    assert response.json()["choices"][0]["message"]["content"] == "chunked body"
    rec = mock.received[0]
    assert rec.headers["transfer-encoding"] == "chunked" and rec.body == payload


async def test_concurrent_connections_counted(mock: MockUpstream) -> None:
    mock.default = Behavior(delay_s=0.1)
    async with httpx.AsyncClient(base_url=mock.base_url, timeout=5) as http:
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(partial(http.post, CHAT, json=chat()))
    assert mock.max_open_connections == 5
    assert len({r.connection_id for r in mock.received}) == 5


async def test_record_false_keeps_nothing(nursery: trio.Nursery) -> None:
    quiet = MockUpstream(Behavior(content="ok"), record=False)
    await nursery.start(quiet.serve)
    async with httpx.AsyncClient(base_url=quiet.base_url) as http:
        assert (await http.post(CHAT, json=chat())).status_code == 200
    assert quiet.received == []


async def test_cli_starts_and_answers(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    command = [sys.executable, "-m", "gateway_trio.testing", "--port", "0", "--chunks", "3"]
    command += ["--content", "cli text", "--port-file", str(port_file)]
    run = partial(trio.run_process, command, stdout=subprocess.PIPE, check=False, cwd=ROOT)  # this checkout's package
    async with trio.open_nursery() as nursery:
        process = await nursery.start(run)
        try:
            with trio.fail_after(30):  # a new Python process on a loaded machine
                line = b""
                while not line.endswith(b"\n"):
                    line += await process.stdout.receive_some(100)
            base_url = line.decode().strip().removeprefix("listening on ")
            assert base_url.startswith("http://127.0.0.1:")
            assert port_file.read_text().strip() == base_url.rsplit(":", 1)[1]
            async with httpx.AsyncClient(base_url=base_url) as http:
                events = openai_events((await http.post(CHAT, json=chat(stream=True))).text)
            assert contents(events) == ["cli ", "text ", "cli"]
        finally:
            process.terminate()


async def test_http10_stream_is_close_delimited(mock: MockUpstream) -> None:
    body = orjson.dumps(chat("old client", stream=True))
    request = b"POST /v1/chat/completions HTTP/1.0\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)
    stream = await trio.open_tcp_stream("127.0.0.1", mock.port)
    await stream.send_all(request)
    raw = b""
    with trio.fail_after(10):
        while data := await stream.receive_some(65536):
            raw += data
    await stream.aclose()
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding" not in head.lower()
    events = openai_events(payload.decode())
    assert contents(events) == ["old ", "client"] and events[-1] == "[DONE]"


# -- text completions, moderations, transcriptions ------------------------------------------

COMPLETIONS = "/v1/completions"


def completion_texts(events: list[Any]) -> list[str]:
    return [e["choices"][0]["text"] for e in events if isinstance(e, dict) and e.get("choices")]


async def test_text_completion_json(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    response = await client.post(COMPLETIONS, json={"model": "inst", "prompt": ["say", "this please"], "max_tokens": 5})
    body = response.json()
    assert response.status_code == 200 and body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    assert body["choices"] == [{"text": "say\nthis please", "index": 0, "logprobs": None, "finish_reason": "stop"}]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert mock.received[0].model == "inst"
    missing = await client.post("/completions", json={"model": "inst"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "prompt"


async def test_text_completion_stream_with_usage(client: httpx.AsyncClient) -> None:
    body = {"model": "inst", "prompt": "one two three", "stream": True, "stream_options": {"include_usage": True}}
    events = openai_events((await client.post(COMPLETIONS, json=body)).text)
    assert completion_texts(events) == ["one ", "two ", "three", ""]
    assert {e["object"] for e in events[:-1]} == {"text_completion"}
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["choices"] == [] and events[-2]["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert all(e["usage"] is None for e in events[:-2]) and events[-1] == "[DONE]"
    plain = openai_events((await client.post(COMPLETIONS, json={**body, "stream_options": None})).text)
    assert all("usage" not in e for e in plain[:-1]) and plain[-1] == "[DONE]"


async def test_text_completion_stream_faults(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    body = {"model": "inst", "prompt": "p", "stream": True}
    mock.behaviors["inst"] = Behavior(error_after=1, content="x y z")
    events = openai_events((await client.post(COMPLETIONS, json=body)).text)
    assert completion_texts(events) == ["x "] and events[-1]["error"]["type"] == "server_error"
    mock.behaviors["inst"] = Behavior(malformed_after=0, chunks=2, content="x y z")
    events = openai_events((await client.post(COMPLETIONS, json=body)).text)
    assert events[0] == "{not json" and completion_texts(events) == ["x y ", "z", ""]
    mock.behaviors["inst"] = Behavior(status=429, retry_after=1)
    limited = await client.post(COMPLETIONS, json=body)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"


async def test_azure_paths_for_every_route(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    base, query = "/openai/deployments/dep-1", "?api-version=2024-10-21"
    completion = await client.post(f"{base}/completions{query}", json={"prompt": "hi azure"})
    assert completion.json()["choices"][0]["text"] == "hi azure" and completion.json()["model"] == "dep-1"
    embeddings = await client.post(f"{base}/embeddings{query}", json={"input": "x"})
    assert embeddings.status_code == 200 and embeddings.json()["model"] == "dep-1"
    audio = await client.post(f"{base}/audio/transcriptions{query}", files={"file": ("a.wav", b"1234")})
    assert audio.json() == {"text": "transcribed 4 bytes from a.wav"}
    assert [r.model for r in mock.received] == ["dep-1"] * 3
    assert (await client.post(f"{base}/moderations{query}", json={"input": "x"})).status_code == 404
    assert (await client.post(f"{base}/completions", json={"prompt": "no version"})).status_code == 404


async def test_moderations(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/moderations", json={"input": ["hello", "you flag-me now"]})).json()
    assert body["id"].startswith("modr-") and body["model"] == "omni-moderation-latest"
    assert [r["flagged"] for r in body["results"]] == [False, True]
    assert body["results"][1]["categories"]["harassment"] is True
    assert set(body["results"][0]["category_scores"]) == set(body["results"][0]["categories"])
    named = (await client.post("/moderations", json={"model": "text-moderation-stable", "input": "ok"})).json()
    assert named["model"] == "text-moderation-stable" and len(named["results"]) == 1
    missing = await client.post("/v1/moderations", json={"model": "m"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "input"


async def test_transcription_records_the_form(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    audio = bytes(range(256)) * 40 + b"\r\n--\r\n"
    fields = {"model": "whisper-1", "language": "en"}
    response = await client.post("/v1/audio/transcriptions", data=fields, files={"file": ("talk.mp3", audio, "audio/mpeg")})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"text": f"transcribed {len(audio)} bytes from talk.mp3"}
    rec = mock.received[0]
    assert rec.json == {"fields": fields, "file_size": len(audio), "filename": "talk.mp3"}
    assert rec.model == "whisper-1" and not rec.stream


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ("text", "transcribed 3 bytes from a.wav\n"),
        ("srt", "1\n00:00:00,000 --> 00:00:01,000\ntranscribed 3 bytes from a.wav\n\n"),
        ("vtt", "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\ntranscribed 3 bytes from a.wav\n\n"),
    ],
)
async def test_transcription_text_formats(client: httpx.AsyncClient, response_format: str, expected: str) -> None:
    form = {"model": "w", "response_format": response_format}
    response = await client.post("/audio/transcriptions", data=form, files={"file": ("a.wav", b"abc")})
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == expected


async def test_transcription_bad_bodies(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    no_file = await client.post("/v1/audio/transcriptions", data={"model": "w"}, files={"other": ("x", b"1")})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    as_json = await client.post("/v1/audio/transcriptions", json={"model": "w"})
    assert as_json.status_code == 400 and "multipart/form-data" in as_json.json()["error"]["message"]
    mock.default = Behavior(status=500)
    fault = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"abc")})
    assert fault.status_code == 500


async def test_gateway_adapters_speak_to_the_mock(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    """The multipart the OpenAI/Azure adapters build is what the mock (and OpenAI) can read."""
    from gateway_trio.adapters import adapter_for
    from gateway_trio.adapters.base import Upload
    from gateway_trio.config import ModelConfig
    from gateway_trio.deployment import Deployment

    upload = Upload(fields={"model": "w", "response_format": "text"}, filename="v.ogg", content=b"\x00" * 99)
    for provider in ("openai", "azure"):
        base = mock.base_url + ("/v1" if provider == "openai" else "")
        dep = Deployment.from_config(ModelConfig(name="w", model=f"{provider}/whisper-dep", api_base=base, api_key="k"))
        adapter = adapter_for(provider)
        req = adapter.request("transcription", dep, upload, "whisper-dep", False)
        response = await client.request(req.method, req.url, headers=req.headers, content=req.content)
        answer = adapter.response("transcription", response.content, "whisper-dep", response.headers["content-type"])
        assert answer.content == b"transcribed 99 bytes from v.ogg\n"
        rec = mock.received[-1]
        assert rec.json == {"fields": {"model": "whisper-dep", "response_format": "text"}, "file_size": 99, "filename": "v.ogg"}
    assert mock.received[-1].path == "/openai/deployments/whisper-dep/audio/transcriptions"
