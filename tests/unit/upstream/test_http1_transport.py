"""The lean HTTP/1.1 transport: reuse, stale keep-alive connections, errors, and the https fallback."""

import time

import httpx
import pytest
import trio

from gateway_trio.testing import Behavior
from gateway_trio.upstream.http1_transport import Http1Transport

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi there"}]}


def unused_fallback() -> httpx.AsyncBaseTransport:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("plain http must not reach the fallback")
    return httpx.MockTransport(refuse)


async def test_requests_reuse_one_connection(upstream):
    async with httpx.AsyncClient(transport=Http1Transport(4, unused_fallback()), base_url=upstream.base_url) as client:
        for stream in (False, True, False):
            response = await client.post("/v1/chat/completions", json={**BODY, "stream": stream})
            assert response.status_code == 200 and "hi" in response.text
    assert len({r.connection_id for r in upstream.received}) == 1


async def test_an_abandoned_body_closes_its_connection(upstream):
    upstream.default = Behavior(chunks=10, stall_after=2)
    async with httpx.AsyncClient(transport=Http1Transport(4, unused_fallback()), base_url=upstream.base_url) as client:
        async with client.stream("POST", "/v1/chat/completions", json={**BODY, "stream": True}) as response:
            async for _ in response.aiter_bytes():
                break
        record = upstream.received[0]
        await upstream.wait_for(lambda: record.closed_at is not None, timeout=10)


async def test_a_drop_mid_body_is_a_protocol_error(upstream):
    upstream.default = Behavior(chunks=10, drop_after=2)
    async with httpx.AsyncClient(transport=Http1Transport(4, unused_fallback()), base_url=upstream.base_url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/v1/chat/completions", json={**BODY, "stream": True})


async def test_a_connection_the_server_closed_while_idle_is_replaced(nursery):
    """A server that answers once per connection and then hangs up, without saying so."""
    connections = []

    async def one_answer(stream: trio.SocketStream) -> None:
        connections.append(stream)
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(4096)
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await stream.aclose()

    listeners = await nursery.start(trio.serve_tcp, one_answer, 0)
    port = listeners[0].socket.getsockname()[1]
    async with httpx.AsyncClient(transport=Http1Transport(4, unused_fallback())) as client:
        for _ in range(3):
            response = await client.get(f"http://127.0.0.1:{port}/")
            assert response.text == "ok"
            await trio.sleep(0.05)  # let the server's close arrive
    assert len(connections) == 3


async def test_connect_errors_and_https_fallback():
    seen = []

    def fallback(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, text="via fallback")

    async with httpx.AsyncClient(transport=Http1Transport(4, httpx.MockTransport(fallback))) as client:
        assert (await client.get("https://example.test/x")).text == "via fallback"
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()  # nothing listens there now
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
    assert seen == ["https://example.test/x"]


class Dripping:
    """A socket stream that gives its bytes one at a time, as a dripping server would."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    async def receive_some(self, max_bytes: int) -> bytes:
        self.at += 1
        return self.data[self.at - 1:self.at]


async def test_a_head_dripped_a_byte_per_read_is_searched_once():
    # Each read used to search the whole head again: 3 s of CPU for a head just under the cap.
    from gateway_trio.upstream.http1 import MAX_HEAD_BYTES
    from gateway_trio.upstream.http1_transport import _Connection

    lines = [b"HTTP/1.1 200 OK"] + [b"x-filler-%04d: %s" % (i, b"v" * 40) for i in range((MAX_HEAD_BYTES - 200) // 58)]
    data = b"\r\n".join(lines) + b"\r\n\r\n"
    connection = _Connection(Dripping(data))  # type: ignore[arg-type]
    started = time.process_time()
    head = await connection.head(None)
    assert time.process_time() - started < 1
    assert head.status == 200 and len(head.headers) == len(lines) - 1
