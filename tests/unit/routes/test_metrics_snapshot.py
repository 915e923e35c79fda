"""`/metrics` shows the actors' snapshots, not their live state read from outside."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import trio
from harness import make_config

from gateway_trio.channels.messages import Outcome
from gateway_trio.gateway import Gateway
from gateway_trio.routes.metrics import gateway_snapshot, metrics_text


def a_gateway() -> Gateway:
    return Gateway(make_config(models=[{"name": "gpt", "model": "openai/gpt-4o", "api_base": "http://up.test/v1"}]))


async def test_the_router_snapshot_counts_every_outcome_sent_before_it(autojump_clock: Any) -> None:
    gateway = a_gateway()
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.router.run)
        deployment = await gateway.router.pick("gpt")
        gateway.router.report(Outcome(deployment.id, True, 0.1))  # queued, not yet folded in
        text = (await metrics_text(gateway)).decode()
        nursery.cancel_scope.cancel()
    line = f'gateway_deployment_in_flight{{model_group="gpt",model_id="{deployment.id}"}} 0.0'
    assert line in text  # read directly, the router's state still says 1 in flight


async def test_a_snapshot_is_frozen_and_does_not_follow_the_actors(autojump_clock: Any) -> None:
    gateway = a_gateway()
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.router.run)
        await gateway.router.pick("gpt")
        snapshot = await gateway_snapshot(gateway)
        await gateway.router.pick("gpt")
        gateway.callbacks.dropped += 5
        gateway.pipeline.finished["completion", "success"] += 1
        nursery.cancel_scope.cancel()
    assert [load.inflight for load in snapshot.router.loads] == [1]
    assert snapshot.callbacks.dropped == 0 and snapshot.finished == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.spend.written = 1  # type: ignore[misc]


async def test_a_stopped_router_is_read_as_it_was_left(autojump_clock: Any) -> None:
    gateway = a_gateway()
    text = (await metrics_text(gateway)).decode()  # no router task: the scrape must not hang
    assert "gateway_deployment_in_flight{" in text
