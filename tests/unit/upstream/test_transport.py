"""The sharded transport: bounded shards, slots given back, and real calls through it."""

import httpx
import trio

from gateway_trio.testing import Behavior
from gateway_trio.upstream.transport import ShardedTransport


def test_shards_are_small_and_cover_the_limit():
    transport = ShardedTransport(1000, shard_size=32)
    assert len(transport.shards) == 32
    assert all(shard._pool._max_connections == 32 for shard in transport.shards)
    assert len(ShardedTransport(10, shard_size=32).shards) == 1
    assert len(ShardedTransport(10, shard_size=8).shards) == 2


async def test_requests_spread_and_slots_come_back(upstream):
    # An upstream slower than any test: the peak is read with all eight in flight, however
    # loaded the machine, and cancelling them must give every slot back too.
    upstream.default = Behavior(delay_s=60)
    transport = ShardedTransport(8, shard_size=2)
    async with httpx.AsyncClient(transport=transport, base_url=upstream.base_url) as client:
        peak = []

        async def ask():
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            response = await client.post("/v1/chat/completions", json=body)
            assert response.status_code == 200

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(ask)
            await upstream.wait_for(lambda: len(upstream.received) == 8, timeout=30)
            peak = list(transport.in_flight)
            nursery.cancel_scope.cancel()
    assert peak == [2, 2, 2, 2]
    assert transport.in_flight == [0, 0, 0, 0]
    assert upstream.max_open_connections == 8


async def test_a_stream_closed_early_gives_its_slot_back(upstream):
    upstream.default = Behavior(chunks=10, stall_after=2)
    transport = ShardedTransport(4, shard_size=2)
    async with httpx.AsyncClient(transport=transport, base_url=upstream.base_url) as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            async for _ in response.aiter_bytes():
                break
        assert transport.in_flight == [0, 0]
