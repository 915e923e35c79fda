"""A lean HTTP/1.1 transport for plain-http upstreams: trio sockets, h11, a list of idle
connections per origin, and nothing else.

httpcore's pool costs a scan of every connection per request and per release, plus several
layers of wrappers per read; here a request pops an idle connection (or opens one), writes
its head and body in one send, and the body stream puts the connection back when h11 says
the exchange is complete.  Anything else (https) goes to the transport given as `fallback`.
"""

from __future__ import annotations

from typing import AsyncIterator

import h11
import httpx
import trio

READ_SIZE = 65536


class _Connection:
    __slots__ = ("stream", "h11", "reused")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.reused = False

    def idle_and_open(self) -> bool:
        """An idle connection whose socket reads as ready has been closed by the server."""
        return not self.stream.socket.is_readable()

    async def next_event(self, read_timeout: float | None) -> object:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.fail_after(read_timeout if read_timeout is not None else float("inf")):
                data = await self.stream.receive_some(READ_SIZE)
            self.h11.receive_data(data)


class H11Transport(httpx.AsyncBaseTransport):
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
        head = self._head(request)
        body = await request.aread()
        for attempt in (0, 1):
            connection = await self._connection(origin, timeouts.get("connect"))
            try:
                return await self._exchange(connection, origin, head, body, timeouts.get("read"), request)
            except _StaleConnection:
                # The server closed a kept-alive connection as we reused it: once more, fresh.
                self._discard(connection)
                if attempt:
                    raise httpx.RemoteProtocolError("the upstream closed the connection") from None
            except BaseException:
                self._discard(connection)
                raise
        raise AssertionError("unreachable")

    def _head(self, request: httpx.Request) -> h11.Request:
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in (b"connection", b"keep-alive")]
        return h11.Request(method=request.method, target=request.url.raw_path, headers=headers)

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

    async def _exchange(self, connection: _Connection, origin: tuple[str, int], head: h11.Request, body: bytes,
                        read_timeout: float | None, request: httpx.Request) -> httpx.Response:
        conn = connection.h11
        data = conn.send(head) + (conn.send(h11.Data(data=body)) if body else b"") + conn.send(h11.EndOfMessage())
        try:
            await connection.stream.send_all(data)
            event = await connection.next_event(read_timeout)
        except trio.TooSlowError:
            raise httpx.ReadTimeout("timed out reading from the upstream") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, h11.RemoteProtocolError) as error:
            if connection.reused:
                raise _StaleConnection() from None
            raise httpx.RemoteProtocolError(f"the upstream connection failed: {type(error).__name__}") from None
        if not isinstance(event, h11.Response):
            raise httpx.RemoteProtocolError("the upstream sent no response")
        stream = _Body(self, connection, origin, read_timeout)
        return httpx.Response(event.status_code, headers=event.headers, stream=stream, request=request,
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason})

    def release(self, connection: _Connection, origin: tuple[str, int]) -> None:
        conn = connection.h11
        idle = self.idle.setdefault(origin, [])
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE and len(idle) < self.max_connections:
            conn.start_next_cycle()
            idle.append(connection)
        else:
            self._discard(connection)

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
    def __init__(self, owner: H11Transport, connection: _Connection, origin: tuple[str, int],
                 read_timeout: float | None) -> None:
        self.owner, self.connection, self.origin, self.read_timeout = owner, connection, origin, read_timeout
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.done:
            try:
                event = await self.connection.next_event(self.read_timeout)
            except trio.TooSlowError:
                raise httpx.ReadTimeout("timed out reading from the upstream") from None
            except h11.RemoteProtocolError:
                raise httpx.RemoteProtocolError("the upstream broke off its answer") from None
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                raise httpx.ReadError("the upstream connection dropped") from None
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.done = True
            elif event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError("the upstream broke off its answer")

    async def aclose(self) -> None:
        connection, self.connection = self.connection, None  # type: ignore[assignment]
        if connection is None:
            return
        if self.done:
            self.owner.release(connection, self.origin)
        else:
            self.owner._discard(connection)
