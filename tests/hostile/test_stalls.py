"""Event-loop stalls: a task that holds the loop is counted and named, never silent.

Real time on purpose (a stall is a blocked thread; no fake clock can show one): the blocks are
0.5 s against thresholds of 0.1-0.15 s, so load on the machine cannot hide them.
"""

from __future__ import annotations

import logging
import re
import time

import trio
from harness import chat, client_and_gateway, eventually, make_config

from gateway_trio.hooks import CustomLogger
from gateway_trio.runtime.stalls import StallWatch, user_code_of

BLOCK_S = 0.5


def hold_the_loop() -> None:
    time.sleep(BLOCK_S)  # what a careless hook does


class Careless:
    async def step(self) -> None:
        hold_the_loop()


async def test_a_task_holding_the_loop_is_counted_and_named(nursery):
    careless = Careless()
    watch = StallWatch(0.1, user_code=user_code_of([("Careless", careless)]))
    await nursery.start(watch.run)

    async def culprit_task() -> None:
        await trio.sleep(0.05)
        await careless.step()

    nursery.start_soon(culprit_task)
    await eventually(lambda: watch.stalls)
    assert watch.longest_s >= BLOCK_S - 0.15
    assert watch.last is not None
    assert "culprit_task" in watch.last.task
    assert watch.last.code == "Careless.step"
    assert watch.last.where.endswith("in hold_the_loop")


async def test_a_stall_outside_known_code_still_names_the_task_and_line(nursery):
    watch = StallWatch(0.1)
    await nursery.start(watch.run)

    async def anonymous_task() -> None:
        await trio.sleep(0.05)
        hold_the_loop()

    nursery.start_soon(anonymous_task)
    await eventually(lambda: watch.stalls)
    assert watch.last is not None and watch.last.code is None
    assert "anonymous_task" in watch.last.task and watch.last.where.endswith("in hold_the_loop")


class SleepyHook(CustomLogger):
    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        time.sleep(BLOCK_S)
        return response


async def test_a_time_sleep_in_an_async_hook_is_visible_in_logs_and_metrics(upstream, caplog):
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"}
    config = make_config(models=[model], server={"event_loop_stall_ms": 150})
    caplog.set_level(logging.WARNING, logger="gateway_trio.runtime.stalls")
    async with client_and_gateway(config, hooks=[SleepyHook()]) as (client, gateway):
        response = await client.post("/v1/chat/completions", json=chat("gpt"))
        assert response.status_code == 200
        await eventually(lambda: gateway.stalls.stalls)
        metrics = (await client.get("/metrics")).text
    stalls = float(re.search(r"^gateway_event_loop_stalls_total (\S+)$", metrics, re.M).group(1))
    longest = float(re.search(r"^gateway_event_loop_longest_stall_seconds (\S+)$", metrics, re.M).group(1))
    assert stalls >= 1 and longest >= BLOCK_S - 0.15
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway_trio.runtime.stalls"]
    assert any("SleepyHook.async_post_call_success_hook" in line and "stalled" in line for line in lines), lines
