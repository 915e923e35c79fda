"""Driving an adapter through httpx.MockTransport: the request as the wire sees it, the answer
(JSON or a stream cut into awkward pieces) decoded the way the deployment actor decodes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from gateway_trio.adapters.base import UpstreamRequest
from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment


def deployment(model: str, **overrides: Any) -> Deployment:
    fields = {"name": "group", "model": model, "api_key": "sk-test-0123456789abcdef", **overrides}
    return Deployment.from_config(ModelConfig(**fields))


async def send(req: UpstreamRequest, reply: httpx.Response) -> tuple[httpx.Request, httpx.Response]:
    """Send `req` to an upstream that answers `reply`; what the upstream saw, and the answer."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        response = await client.send(httpx.Request(req.method, req.url, headers=req.headers, content=req.content))
        await response.aread()
    return seen[0], response


class Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


def splits(data: bytes) -> list[list[bytes]]:
    """Whole, byte by byte, and in pieces of 7 and 13 bytes (cutting events, lines and UTF-8)."""
    return [[data]] + [[data[i : i + n] for i in range(0, len(data), n)] for n in (1, 7, 13)]


def sse(events: list[tuple[str | None, bytes | str]]) -> bytes:
    out = b""
    for name, data in events:
        raw = data.encode() if isinstance(data, str) else data
        out += (f"event: {name}\n".encode() if name else b"") + b"data: " + raw + b"\n\n"
    return out


class Exchange:
    """One call: `seen` is the request the transport got, `body` its JSON."""

    def __init__(self) -> None:
        self.seen: httpx.Request | None = None

    @property
    def body(self) -> Any:
        assert self.seen is not None
        return orjson.loads(self.seen.content)

    async def call(
        self,
        adapter: Any,
        call_type: str,
        dep: Deployment,
        body: dict[str, Any],
        stream: bool,
        reply: bytes | list[bytes],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Any:
        """The decoded answer: a dict, or (payloads, decoder) for a stream."""
        spec = adapter.request(call_type, dep, body, dep.model, stream)

        def handler(request: httpx.Request) -> httpx.Response:
            self.seen = request
            pieces = reply if isinstance(reply, list) else [reply]
            kind = "text/event-stream" if stream else "application/json"
            return httpx.Response(200, headers={"content-type": kind}, stream=Pieces(pieces))

        async with httpx.AsyncClient(transport=transport or httpx.MockTransport(handler)) as client:
            request = client.build_request(spec.method, spec.url, headers=spec.headers, content=spec.content)
            if transport is not None:
                self.seen = request
            response = await client.send(request, stream=True)
            try:
                assert response.status_code == 200, await response.aread()
                if not stream:
                    return adapter.response(call_type, await response.aread(), dep.model)
                decoder = adapter.stream(call_type, dep.model)
                payloads: list[bytes] = []
                async for raw in response.aiter_raw():
                    payloads.extend(decoder.feed(raw))
                    if decoder.done:
                        break
                return payloads, decoder
            finally:
                await response.aclose()


def decode_all(adapter: Any, call_type: str, model: str, pieces: list[bytes]) -> tuple[list[bytes], Any]:
    decoder = adapter.stream(call_type, model)
    payloads = [payload for piece in pieces for payload in decoder.feed(piece)]
    return payloads, decoder


def assert_type_first(payloads: list[bytes]) -> list[dict[str, Any]]:
    """The framing convention: every payload is an object whose first key is `type`."""
    events = [orjson.loads(payload) for payload in payloads]
    for event in events:
        assert isinstance(event, dict) and next(iter(event)) == "type", event
    return events
