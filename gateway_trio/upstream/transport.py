"""The HTTP transport each deployment actor's client uses: several small pools, not one big one.

httpcore's pool re-scans every connection on each request and release, and does so once per
idle connection, so its cost grows with the square of its size: measured with py-spy at
1,000 open calls, 90 % of the event loop went to `_assign_requests_to_connections`.
Spreading the connections over shards of at most `SHARD_SIZE` keeps each scan short; a
request goes to the shard with the fewest calls in flight.
"""

from __future__ import annotations

import functools
import math
import os
import ssl
from typing import AsyncIterator

import certifi
import httpx

SHARD_SIZE = 8


class ShardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, max_connections: int, *, shard_size: int = SHARD_SIZE) -> None:
        count = max(1, math.ceil(max_connections / shard_size))
        per_shard = math.ceil(max_connections / count)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        tls = shared_tls_context()  # one CA bundle in memory, not one per shard
        self.shards = [httpx.AsyncHTTPTransport(verify=tls, limits=limits, retries=0) for _ in range(count)]
        self.in_flight = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        in_flight = self.in_flight
        index = in_flight.index(min(in_flight)) if len(in_flight) > 1 else 0
        in_flight[index] += 1
        try:
            response = await self.shards[index].handle_async_request(request)
        except BaseException:
            in_flight[index] -= 1
            raise
        response.stream = _CountedStream(response.stream, self, index)  # type: ignore[arg-type]
        return response

    def release(self, index: int) -> None:
        self.in_flight[index] -= 1

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())


class _CountedStream(httpx.AsyncByteStream):
    """The response body; closing it gives the shard its slot back (once)."""

    def __init__(self, inner: httpx.AsyncByteStream, owner: ShardedTransport, index: int) -> None:
        self.inner = inner
        self.owner = owner
        self.index = index
        self.open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        if self.open:
            self.open = False
            self.owner.release(self.index)
        await self.inner.aclose()


def make_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """Plain-http upstreams (vLLM, Ollama, local proxies) through the lean HTTP/1.1 transport;
    https through httpx's own TLS-capable pools, sharded."""
    from gateway_trio.upstream.http1_transport import Http1Transport

    return Http1Transport(max_connections, fallback=ShardedTransport(max_connections))
