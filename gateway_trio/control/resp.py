"""A minimal RESP2 connection on a trio socket: the shared ledger's one command per batch.

Measured here (scripts/bench's gw-key-redis rows, and a sequential loop): a command through
coredis on trio costs about 0.27 ms of CPU (anyio's streams and task groups, its command and
response machinery), which at low concurrency — one call per round trip, nothing to batch
with — is more than the 25 % of a call's CPU that Redis may add.  The same command written
as RESP bytes on a trio socket costs a third of that.  So the limits actor and the routing
sync send their scripts through this, one connection, one command at a time (the actor is
its only user at any moment), while coredis keeps everything else: health pings, pub/sub,
publishing.

Only what those scripts need: AUTH and SELECT from the url, TLS for `rediss://`, and replies
of every RESP2 type.  A connection that fails or is cancelled mid-command is closed (its
stream could be mid-reply) and opened again on the next command.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

import trio

_CRLF = b"\r\n"


class RespError(Exception):
    """An error reply (`-ERR ...`, `-NOSCRIPT ...`): the server is fine, the command is not."""


class RespConnectionError(Exception):
    """The connection closed or sent something that is not RESP."""


def encode(*args: str | bytes) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespConnection:
    def __init__(self, url: str, *, connect_timeout_s: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.tls = parts.scheme == "rediss"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        path = parts.path.strip("/")
        self.db = int(path) if path.isdigit() else 0
        self.connect_timeout_s = connect_timeout_s
        self._stream: trio.abc.Stream | None = None
        self._buffer = bytearray()
        self._lock = trio.Lock()  # one command at a time, whoever calls

    async def call(self, *args: str | bytes) -> Any:
        """Send one command and read its reply; RespError for an error reply."""
        async with self._lock:
            done = False
            try:
                if self._stream is None:
                    await self._connect()
                reply = await self._round_trip(encode(*args))
                done = True
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as error:
                raise RespConnectionError(f"{type(error).__name__}: {error}") from None
            finally:
                if not done:  # failed or cancelled mid-command: the stream may hold half a reply
                    self.close()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def close(self) -> None:
        stream, self._stream = self._stream, None
        self._buffer.clear()
        if stream is not None:
            socket = getattr(stream, "socket", None) or getattr(
                getattr(stream, "transport_stream", None), "socket", None
            )
            if socket is not None:
                socket.close()

    async def _connect(self) -> None:
        with trio.fail_after(self.connect_timeout_s):
            stream: trio.abc.Stream = await trio.open_tcp_stream(self.host, self.port)
            if self.tls:
                stream = trio.SSLStream(stream, ssl.create_default_context(), server_hostname=self.host)
                await stream.do_handshake()
            self._stream = stream
            try:
                if self.password is not None:
                    auth = (self.username, self.password) if self.username else (self.password,)
                    await self._expect_ok(await self._round_trip(encode("AUTH", *auth)))
                if self.db:
                    await self._expect_ok(await self._round_trip(encode("SELECT", str(self.db))))
            except BaseException:
                self.close()
                raise

    @staticmethod
    async def _expect_ok(reply: Any) -> None:
        if isinstance(reply, RespError):
            raise reply

    async def _round_trip(self, command: bytes) -> Any:
        assert self._stream is not None
        await self._stream.send_all(command)
        return await self._reply()

    async def _line(self) -> bytes:
        buffer = self._buffer
        while True:
            end = buffer.find(_CRLF)
            if end >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 2]
                return line
            await self._fill()

    async def _exactly(self, size: int) -> bytes:
        buffer = self._buffer
        while len(buffer) < size + 2:
            await self._fill()
        data = bytes(buffer[:size])
        del buffer[: size + 2]
        return data

    async def _fill(self) -> None:
        assert self._stream is not None
        data = await self._stream.receive_some(65536)
        if not data:
            raise RespConnectionError("Redis closed the connection")
        self._buffer += data

    async def _reply(self) -> Any:
        line = await self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else await self._exactly(size)
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [await self._reply() for _ in range(count)]
        raise RespConnectionError(f"not a RESP reply: {line[:40]!r}")
