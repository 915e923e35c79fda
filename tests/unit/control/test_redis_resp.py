"""The lean RESP connection (control.resp) against a real Redis: every reply type, errors,
AUTH and SELECT from the url, and a connection that heals after Redis restarts."""

from __future__ import annotations

import pytest
import trio
from redis_server import running_redis

from gateway_trio.control.resp import RespConnection, RespConnectionError, RespError, encode


def test_commands_are_resp_arrays_of_bulk_strings():
    assert encode("SET", "k", b"\x00v") == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\x00v\r\n"


async def test_every_reply_type_and_an_error_reply():
    with running_redis() as server:
        resp = RespConnection(server.url, connect_timeout_s=2)
        assert await resp.call("PING") == b"PONG"
        assert await resp.call("INCR", "n") == 1
        assert await resp.call("GET", "missing") is None
        assert await resp.call("ECHO", "a\r\nb") == b"a\r\nb"
        await resp.call("RPUSH", "list", "x", "y")
        assert await resp.call("LRANGE", "list", "0", "-1") == [b"x", b"y"]
        with pytest.raises(RespError, match="WRONGTYPE"):
            await resp.call("INCR", "list")
        assert await resp.call("PING") == b"PONG"  # an error reply leaves the connection usable
        big = "x" * 200_000
        await resp.call("SET", "big", big)
        assert await resp.call("GET", "big") == big.encode()
        server.restart()
        with pytest.raises(RespConnectionError):
            await resp.call("PING")  # the old connection is gone: this call fails, and closes it
        assert await resp.call("PING") == b"PONG"  # the next one reconnects
        resp.close()


async def test_auth_and_database_from_the_url():
    with running_redis(password="s3cret") as server:
        url = server.url.replace("/0", "/3")
        resp = RespConnection(url, connect_timeout_s=2)
        await resp.call("SET", "where", "three")
        other = RespConnection(server.url, connect_timeout_s=2)
        assert await other.call("GET", "where") is None  # database 0
        with trio.fail_after(5):
            assert await resp.call("GET", "where") == b"three"
        wrong = RespConnection(server.url.replace("s3cret", "nope"), connect_timeout_s=2)
        with pytest.raises(RespError):
            await wrong.call("PING")
        for connection in (resp, other, wrong):
            connection.close()
