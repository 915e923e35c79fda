"""Deployment loads shared through Redis (control.routing_sync): the router of one instance
sees the other's calls in flight, per-minute usage and cooldowns, and routes around them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
from redis_server import RedisServer, running_redis

from gateway_trio.actors.router import RouterActor
from gateway_trio.channels.messages import Outcome, SharedLoad
from gateway_trio.config import RedisConfig, parse_config
from gateway_trio.control.redis_client import RedisLink
from gateway_trio.control.routing_sync import RoutingSync
from gateway_trio.gateway import deployments_of


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


def router(strategy: str) -> RouterActor:
    models = [
        {"name": "pair", "model": "openai/a", "api_base": "http://127.0.0.1:9/v1", "info": {"id": name}, "tpm": 1000}
        for name in ("one", "two")
    ]
    config = parse_config({"models": models, "router": {"strategy": strategy}})
    return RouterActor(config.router, deployments_of(config), seed=1)


async def test_least_busy_counts_the_other_instances_calls_in_flight(redis_server):
    first, second = router("least-busy"), router("least-busy")
    async with trio.open_nursery() as nursery:
        syncs = []
        for actor in (first, second):
            link = RedisLink(RedisConfig(url=redis_server.url))
            await nursery.start(link.run)
            await nursery.start(actor.run)
            sync = RoutingSync(link, actor, interval_s=0.02)
            await nursery.start(sync.run)
            syncs.append(sync)
        held = [await first.pick("pair") for _ in range(4)]  # least-busy: two on each
        assert sorted(d.id for d in held) == ["one", "one", "two", "two"]
        # The two on "two" end: `first` still holds two calls on "one", none on "two".
        for deployment in [d for d in held if d.id == "two"]:
            first.report(Outcome(deployment.id, ok=True, latency_s=0.01))
        target = syncs[1].syncs + 3
        with trio.fail_after(5):
            while syncs[1].syncs < target:
                await trio.sleep(0.01)
        # Alone, `second` would pick either; knowing `first` holds two on "one", it picks "two".
        assert (await second.pick("pair")).id == "two"
        assert second.loads["one"].others_inflight == 2 and second.loads["two"].others_inflight == 0
        nursery.cancel_scope.cancel()


async def test_usage_based_and_tpm_see_the_others_share():
    actor = router("usage-based")
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await actor.exchange({"one": SharedLoad(tokens=900), "two": SharedLoad(tokens=100)})
        # Alone, both are unused (a tie); with the others' tokens "two" has the most room.
        assert {(await actor.pick("pair")).id for _ in range(5)} == {"two"}
        # The others have used "two" up to its tpm: only "one" can take a call now.
        await actor.exchange({"one": SharedLoad(tokens=0), "two": SharedLoad(tokens=1000)})
        assert (await actor.pick("pair", input_tokens=10)).id == "one"
        nursery.cancel_scope.cancel()


async def test_a_cooldown_from_another_instance_is_applied():
    actor = router("simple-shuffle")
    mine = actor._exchange({"one": SharedLoad(cooled_for_s=30.0)})
    assert actor.loads["one"].cooled_until > trio.current_time() + 29
    assert mine["one"].cooled_for_s == 0.0  # not this instance's cooldown: not sent back as one
    actor.cool_down("two", trio.current_time())
    assert actor._exchange({})["two"].cooled_for_s == actor.config.cooldown_s


async def test_max_parallel_requests_counts_the_others_calls_in_flight():
    models = [
        {
            "name": "pair",
            "model": "openai/a",
            "api_base": "http://127.0.0.1:9/v1",
            "info": {"id": name},
            "max_parallel_requests": 2,
        }
        for name in ("one", "two")
    ]
    config = parse_config({"models": models})
    actor = RouterActor(config.router, deployments_of(config), seed=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await actor.exchange({"one": SharedLoad(inflight=2)})  # the others fill "one"
        assert {(await actor.pick("pair")).id for _ in range(2)} == {"two"}
        nursery.cancel_scope.cancel()
