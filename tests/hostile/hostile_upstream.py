"""A hostile upstream: an HTTP/1.1 server on 127.0.0.1 that answers whatever bytes a test scripts.

The project's mock upstream speaks the real wire formats correctly; this one exists to break
the rules: gzip bombs, absurd or non-numeric usage, endless SSE lines, headers dripped a byte
at a time, replies that never end.  Each test hands it a `Script`: an async function given the
request that was received and the raw socket stream to write to.  Nothing here parses more of
the request than it needs (the request line, headers, a Content-Length body).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import orjson
import trio

MAX_HEAD = 64 * 1024


@dataclass
class Request:
    """What the gateway sent: the request line, lower-cased headers, the body."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return orjson.loads(self.body)


Script = Callable[[Request, trio.SocketStream], Awaitable[None]]


@dataclass
class HostileUpstream:
    script: Script
    requests: list[Request] = field(default_factory=list)
    base_url: str = ""
    open_connections: int = 0

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._connection, listeners)
            task_status.started(self.base_url)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.open_connections += 1
        buffer = bytearray()
        try:
            while True:
                request = await _read_request(stream, buffer)
                if request is None:
                    return
                self.requests.append(request)
                await self.script(request, stream)
                if request.headers.get("connection", "").lower() == "close":
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        finally:
            self.open_connections -= 1
            await trio.aclose_forcefully(stream)


async def _read_request(stream: trio.SocketStream, buffer: bytearray) -> Request | None:
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some(65536)
        if not data:
            return None
        buffer += data
        if len(buffer) > MAX_HEAD:
            raise ConnectionError("request head too large")
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = bytearray(rest)
    while len(body) < length:
        data = await stream.receive_some(65536)
        if not data:
            return None
        body += data
    buffer[:] = body[length:]
    return Request(method, target, headers, bytes(body[:length]))


# --- building replies ----------------------------------------------------------------------


def head(status: int = 200, headers: dict[str, str] | None = None, *, length: int | None = None,
         chunked: bool = False) -> bytes:
    """A response head; give `length` for a Content-Length body or `chunked` for chunked framing."""
    lines = [f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if length is not None:
        lines.append(f"content-length: {length}")
    if chunked:
        lines.append("transfer-encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_reply(body: bytes | dict, status: int = 200, headers: dict[str, str] | None = None) -> bytes:
    """A whole JSON response with a Content-Length."""
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return head(status, {"content-type": "application/json", **(headers or {})}, length=len(payload)) + payload


def chunk(data: bytes) -> bytes:
    """One piece of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def chat_completion(usage: object = None, *, content: str = "hello", choices: object = ...) -> dict:
    """A chat.completion body; `usage` and `choices` may be set to anything, however wrong."""
    body: dict = {
        "id": "chatcmpl-hostile", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]
        if choices is ... else choices,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chat_chunk(content: str | None = None, *, finish: str | None = None, usage: object = None) -> bytes:
    """One chat.completion.chunk as JSON bytes."""
    delta = {} if content is None else {"content": content}
    body: dict = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else []}
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def sse_event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def gzip_bomb(inflated_mb: int) -> bytes:
    """Zeros that inflate to `inflated_mb` MiB from about a thousandth of that on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip container
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(inflated_mb)]
    parts.append(compressor.flush())
    return b"".join(parts)


def gunzip(data: bytes) -> bytes:
    return gzip.decompress(data)


# --- ready-made scripts ---------------------------------------------------------------------


def always(reply: bytes) -> Script:
    """Answer every request with the same bytes."""

    async def script(request: Request, stream: trio.SocketStream) -> None:
        await stream.send_all(reply)

    return script


def sse_stream(payloads: list[bytes], *, done: bool = True, headers: dict[str, str] | None = None) -> Script:
    """A chunked SSE stream of the given payloads, each in its own chunk."""

    async def script(request: Request, stream: trio.SocketStream) -> None:
        await stream.send_all(head(200, {"content-type": "text/event-stream", **(headers or {})}, chunked=True))
        for payload in payloads:
            await stream.send_all(chunk(sse_event(payload)))
        if done:
            await stream.send_all(chunk(b"data: [DONE]\n\n"))
        await stream.send_all(LAST_CHUNK)

    return script


def quick_gzip_bomb(inflated_mb: int) -> bytes:
    """The same bomb as `gzip_bomb`, built in a tenth of the time: after a full flush the
    compressor starts afresh, so one compressed MiB of zeros repeats byte for byte; only the
    gzip trailer (CRC-32 and length of the whole) is computed."""
    block = b"\0" * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)  # with the gzip header
    unit = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    last_block = compressor.flush()[:-8]  # the empty final block, without its trailer
    crc = 0
    for _ in range(inflated_mb):
        crc = zlib.crc32(block, crc)
    trailer = (crc.to_bytes(4, "little") + ((inflated_mb << 20) & 0xFFFFFFFF).to_bytes(4, "little"))
    return first + unit * (inflated_mb - 1) + last_block + trailer
