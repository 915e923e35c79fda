"""The mock upstream's `POST /v1/responses`: OpenAI's Responses JSON and event stream, and faults."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import trio

from gateway_trio.adapters import PROVIDERS
from gateway_trio.errors import UpstreamError
from gateway_trio.testing import Behavior, MockUpstream

RESPONSES = "/v1/responses"


def request(text: str = "hello there world", model: str = "gpt-4.1", **extra: Any) -> dict[str, Any]:
    return {"model": model, "input": text, **extra}


def events(raw: str) -> list[tuple[str, Any]]:
    """(event name, parsed data) pairs; undecodable data is kept as a string."""
    out: list[tuple[str, Any]] = []
    for block in filter(None, raw.split("\n\n")):
        event_line, data_line = block.split("\n")
        data = data_line.removeprefix("data: ")
        try:
            out.append((event_line.removeprefix("event: "), orjson.loads(data)))
        except orjson.JSONDecodeError:
            out.append((event_line.removeprefix("event: "), data))
    return out


def deltas(pairs: list[tuple[str, Any]]) -> list[str]:
    return [data["delta"] for name, data in pairs if name == "response.output_text.delta" and isinstance(data, dict)]


async def test_json_response(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    body = request(instructions="Be brief.", input=[
        {"role": "user", "content": "first question"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "an answer"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say hi please"}]},
    ])
    response = await client.post(RESPONSES, json=body, headers={"Authorization": "Bearer sk-x"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    reply = response.json()
    assert reply["object"] == "response" and reply["status"] == "completed" and reply["model"] == "gpt-4.1"
    assert reply["id"].startswith("resp_")
    [item] = reply["output"]
    assert item["type"] == "message" and item["role"] == "assistant" and item["status"] == "completed"
    assert item["content"] == [{"type": "output_text", "text": "say hi please", "annotations": []}]
    assert reply["usage"] == {
        "input_tokens": 9, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12,
    }
    rec = await mock.wait_for_request(1)
    assert (rec.path, rec.model, rec.status) == (RESPONSES, "gpt-4.1", 200)
    # What the OpenAI adapter accepts as a Response.
    assert PROVIDERS["openai"].response("responses", response.content, "gpt-4.1") == reply


async def test_event_stream(client: httpx.AsyncClient) -> None:
    response = await client.post(RESPONSES, json=request("one two  three", stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    pairs = events(response.text)
    names = [name for name, _ in pairs]
    assert names == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
    ]
    assert all(data["type"] == name and next(iter(data)) == "type" for name, data in pairs)
    assert [data["sequence_number"] for _, data in pairs] == list(range(len(pairs)))
    assert deltas(pairs) == ["one ", "two  ", "three"]
    item_id = pairs[2][1]["item"]["id"]
    assert all(data["item_id"] == item_id for _, data in pairs[3:-2])
    assert pairs[0][1]["response"]["status"] == "in_progress" and pairs[0][1]["response"]["usage"] is None
    final = pairs[-1][1]["response"]
    assert final["status"] == "completed" and final["output"][0]["content"][0]["text"] == "one two  three"
    assert final["usage"]["input_tokens"] == 3 and final["usage"]["output_tokens"] == 3


async def test_stream_through_the_openai_adapter(client: httpx.AsyncClient) -> None:
    decoder = PROVIDERS["openai"].stream("responses", "gpt-4.1")
    payloads: list[bytes] = []
    async with client.stream("POST", RESPONSES, json=request("a b c d e", stream=True)) as response:
        async for raw in response.aiter_raw():
            payloads.extend(decoder.feed(raw))
    assert decoder.done and len(payloads) == 13  # 4 opening, 5 deltas, 4 closing
    assert decoder.usage == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}


async def test_azure_resource_path(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.behaviors["my-dep"] = Behavior(content="from azure")
    url = "/openai/responses?api-version=2025-03-01-preview"
    response = await client.post(url, json=request(model="my-dep"), headers={"api-key": "k"})
    assert response.status_code == 200
    assert response.json()["output"][0]["content"][0]["text"] == "from azure"
    assert mock.received[0].params == {"api-version": "2025-03-01-preview"}
    assert (await client.post("/openai/responses", json=request(model="my-dep"))).status_code == 404
    per_deployment = "/openai/deployments/my-dep/responses?api-version=2025-03-01-preview"
    assert (await client.post(per_deployment, json=request())).status_code == 404


async def test_missing_input_and_plain_path(client: httpx.AsyncClient) -> None:
    response = await client.post(RESPONSES, json={"model": "m"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"
    assert (await client.post("/responses", json=request())).status_code == 200


async def test_status_fault_with_retry_after(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.behaviors["limited"] = Behavior(status=429, retry_after=2, fail_times=1)
    first = await client.post(RESPONSES, json=request(model="limited"))
    assert first.status_code == 429 and first.headers["retry-after"] == "2"
    assert first.json()["error"]["code"] == "rate_limit_exceeded"
    assert (await client.post(RESPONSES, json=request(model="limited"))).status_code == 200


async def test_delays(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(first_byte_delay_s=0.2, chunk_delay_s=0.05)
    start = trio.current_time()
    async with client.stream("POST", RESPONSES, json=request("a b", stream=True)) as response:
        headers_at = trio.current_time()
        await response.aread()
    assert headers_at - start >= 0.2
    rec = mock.received[0]
    assert rec.finished_at is not None and rec.first_byte_at is not None
    assert rec.finished_at - rec.first_byte_at >= 0.05


async def test_error_after(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(error_after=1, content="x y z")
    raw = (await client.post(RESPONSES, json=request(stream=True))).text
    pairs = events(raw)
    assert deltas(pairs) == ["x "]
    name, data = pairs[-1]
    assert name == "error" and data["type"] == "error" and data["message"] == "Mock upstream failed mid-stream"
    assert "response.completed" not in raw
    with pytest.raises(UpstreamError, match="failed mid-stream"):
        PROVIDERS["openai"].stream("responses", "m").feed(raw.encode())


async def test_malformed_after(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(malformed_after=1, content="x y z")
    pairs = events((await client.post(RESPONSES, json=request(stream=True))).text)
    assert ("response.output_text.delta", "{not json") in pairs
    assert deltas(pairs) == ["x ", "y ", "z"] and pairs[-1][0] == "response.completed"


async def test_drop_mid_stream(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(drop_after=2, content="a b c d")
    raw = b""
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        async with client.stream("POST", RESPONSES, json=request(stream=True)) as response:
            async for data in response.aiter_bytes():
                raw += data
    assert deltas(events(raw.decode())) == ["a ", "b "]
    mock.default = Behavior(drop_after=0)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(RESPONSES, json=request())


async def test_stall_then_client_close(mock: MockUpstream, client: httpx.AsyncClient) -> None:
    mock.default = Behavior(stall_after=1, content="w1 w2 w3")
    async with client.stream("POST", RESPONSES, json=request(stream=True)) as response:
        raw = ""
        chunks = response.aiter_text()
        while deltas(events(raw.rpartition("\n\n")[0] + "\n\n")) != ["w1 "]:
            raw += await chunks.__anext__()
        with trio.move_on_after(0.2) as idle:
            await chunks.__anext__()
        assert idle.cancelled_caught
    rec = await mock.wait_for(lambda: mock.received[0].closed_at and mock.received[0], timeout=10)
    assert rec.disconnected_early and rec.finished_at is None
    mock.reset()
    with trio.move_on_after(0.2) as idle:
        await client.post(RESPONSES, json=request())
    assert idle.cancelled_caught  # a non-streaming request never gets its answer
