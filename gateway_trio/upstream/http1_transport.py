"""A lean HTTP/1.1 transport for plain-http upstreams: trio sockets, `http1`'s codec, a list of
idle connections per origin, and nothing else.

httpcore's pool costs a scan of every connection per request and per release, plus several
layers of wrappers per read; here a request pops an idle connection (or opens one), writes its
head and body in one send, and the body stream puts the connection back once the response is
complete.  Anything else (https) goes to the transport given as `fallback`.
"""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import trio

from gateway_trio.upstream.http1 import (
    CHUNKED,
    UNTIL_CLOSE,
    ChunkedDecoder,
    Head,
    ProtocolError,
    body_length,
    encode_request,
    parse_head,
)

READ_SIZE = 65536
MAX_INTERIM_HEADS = 16  # 1xx answers ahead of the real one; a server needs one or two


class _Connection:
    __slots__ = ("stream", "buffer", "reused")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.reused = False

    def idle_and_open(self) -> bool:
        """An idle connection whose socket reads as ready has been closed by the server."""
        return not self.stream.socket.is_readable()

    async def fill(self, read_timeout: float | None) -> bool:
        """Read more into the buffer; False at the end of the stream."""
        if read_timeout is None:
            data = await self.stream.receive_some(READ_SIZE)
        else:
            with trio.fail_after(read_timeout):
                data = await self.stream.receive_some(READ_SIZE)
        self.buffer += data
        return bool(data)

    async def head(self, read_timeout: float | None) -> Head:
        searched = 0  # how much of the buffer holds no blank line: each byte is searched once
        for _ in range(MAX_INTERIM_HEADS + 1):
            while (head := parse_head(self.buffer, searched)) is None:
                searched = len(self.buffer)
                if not await self.fill(read_timeout):
                    raise EOFError
            if head.status >= 200 or head.status == 101:
                return head
            searched = 0  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        raise ProtocolError("the upstream sent interim answers without end")


class Http1Transport(httpx.AsyncBaseTransport):
    def __init__(self, max_connections: int, fallback: httpx.AsyncBaseTransport) -> None:
        self.max_connections = max_connections
        self.fallback = fallback
        self.idle: dict[tuple[str, int], list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            return await self.fallback.handle_async_request(request)
        timeouts = request.extensions.get("timeout", {})
        origin = (url.host, url.port or 80)
        data = encode_request(request.method, url.raw_path, request.headers.raw, await request.aread())
        for attempt in (0, 1):
            connection = await self._connection(origin, timeouts.get("connect"))
            try:
                return await self._exchange(connection, origin, data, timeouts.get("read"), request)
            except _StaleConnection:
                # The server closed a kept-alive connection as we reused it: once more, fresh.
                self._discard(connection)
                if attempt:
                    raise httpx.RemoteProtocolError("the upstream closed the connection") from None
            except BaseException:
                self._discard(connection)
                raise
        raise AssertionError("unreachable")

    async def _connection(self, origin: tuple[str, int], connect_timeout: float | None) -> _Connection:
        idle = self.idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.idle_and_open():
                connection.reused = True
                return connection
            self._discard(connection)
        try:
            with trio.fail_after(connect_timeout if connect_timeout is not None else float("inf")):
                stream = await trio.open_tcp_stream(*origin)
        except trio.TooSlowError:
            raise httpx.ConnectTimeout("timed out connecting to the upstream") from None
        except OSError as error:
            raise httpx.ConnectError(f"could not connect: {error.strerror or type(error).__name__}") from None
        return _Connection(stream)

    async def _exchange(self, connection: _Connection, origin: tuple[str, int], data: bytes,
                        read_timeout: float | None, request: httpx.Request) -> httpx.Response:
        try:
            await connection.stream.send_all(data)
            head = await connection.head(read_timeout)
            length = body_length(request.method, head)
        except trio.TooSlowError:
            raise httpx.ReadTimeout("timed out reading from the upstream") from None
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            if connection.reused and not connection.buffer:
                raise _StaleConnection() from None
            raise httpx.RemoteProtocolError(f"the upstream connection failed: {type(error).__name__}") from None
        except ProtocolError as error:
            raise httpx.RemoteProtocolError(f"the upstream's answer is malformed: {error}") from None
        stream = _Body(self, connection, origin, read_timeout, length, head.reusable and length != UNTIL_CLOSE)
        return httpx.Response(head.status, headers=head.headers, stream=stream, request=request,
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason})

    def release(self, connection: _Connection, origin: tuple[str, int]) -> None:
        idle = self.idle.setdefault(origin, [])
        if not connection.buffer and len(idle) < self.max_connections:
            idle.append(connection)
        else:
            self._discard(connection)  # the server sent more than its answer, or the pool is full

    def _discard(self, connection: _Connection) -> None:
        connection.stream.socket.close()

    async def aclose(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                connection.stream.socket.close()
        self.idle.clear()
        await self.fallback.aclose()


class _StaleConnection(Exception):
    pass


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives: one piece per socket read."""

    def __init__(self, owner: Http1Transport, connection: _Connection, origin: tuple[str, int],
                 read_timeout: float | None, length: int, reusable: bool) -> None:
        self.owner, self.connection, self.origin, self.read_timeout = owner, connection, origin, read_timeout
        self.length, self.reusable = length, reusable
        self.done = length == 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self.length == CHUNKED:
                pieces = self._chunked()
            elif self.length == UNTIL_CLOSE:
                pieces = self._until_close()
            else:
                pieces = self._counted(self.length)
            async for piece in pieces:
                yield piece
        except trio.TooSlowError:
            raise httpx.ReadTimeout("timed out reading from the upstream") from None
        except ProtocolError as error:
            raise httpx.RemoteProtocolError(f"the upstream's answer is malformed: {error}") from None
        except EOFError:
            raise httpx.RemoteProtocolError("the upstream broke off its answer") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            raise httpx.ReadError("the upstream connection dropped") from None

    async def _chunked(self) -> AsyncIterator[bytes]:
        connection, decoder = self.connection, ChunkedDecoder()
        while True:
            piece = decoder.decode(connection.buffer)
            if piece:
                yield piece
            if decoder.done:
                self.done = True
                return
            if not await connection.fill(self.read_timeout):
                raise EOFError

    async def _counted(self, length: int) -> AsyncIterator[bytes]:
        connection, buffer = self.connection, self.connection.buffer
        while length:
            if not buffer and not await connection.fill(self.read_timeout):
                raise EOFError
            piece = bytes(buffer[:length])
            del buffer[:len(piece)]
            length -= len(piece)
            yield piece
        self.done = True

    async def _until_close(self) -> AsyncIterator[bytes]:
        connection, buffer = self.connection, self.connection.buffer
        while True:
            if buffer:
                piece = bytes(buffer)
                buffer.clear()
                yield piece
            if not await connection.fill(self.read_timeout):
                self.done = True
                return

    async def aclose(self) -> None:
        connection, self.connection = self.connection, None  # type: ignore[assignment]
        if connection is None:
            return
        if self.done and self.reusable:
            self.owner.release(connection, self.origin)
        else:
            self.owner._discard(connection)
