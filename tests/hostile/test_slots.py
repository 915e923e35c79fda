"""Waiting for a slot is not an upstream failure (issue 10, point 2).

A deployment serves at most `max_parallel_requests` calls at once; the rest queue in its actor.
The first-chunk clock (`stream_timeout_s` / `timeout_s`) starts when a request is actually sent,
a queued call waits under its whole-request deadline only, and a call whose deadline runs out
in the queue gets a 429 with `retry-after` that leaves the deployment's health alone.
"""

from functools import partial

import pytest
import trio
from harness import chat, client_and_gateway, eventually, make_config, sse_payloads

from gateway_trio.deployment import Deployment
from gateway_trio.errors import DeploymentBusy
from gateway_trio.testing import Behavior
from hostile.hostile_upstream import Request, chat_completion, json_reply


def only_load(gateway):
    (deployment,) = gateway.deployments
    return gateway.router.loads[deployment.id]


async def test_six_slow_streams_through_two_slots_all_succeed_and_nothing_cools_down(upstream):
    # Each stream takes about 0.8 s, so the last two wait about 1.6 s for a slot: far longer
    # than the 0.6 s the upstream gets for its first chunk once a request is sent.
    upstream.default = Behavior(chunks=3, chunk_delay_s=0.4)
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1",
             "max_parallel_requests": 2}
    router = {"stream_timeout_s": 0.6, "num_retries": 0, "allowed_fails": 1}
    async with client_and_gateway(make_config(models=[model], router=router)) as (client, gateway):
        answers = []

        async def stream() -> None:
            answers.append(await client.post("/v1/chat/completions", json=chat("gpt", stream=True)))

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(stream)
        load = only_load(gateway)
    assert [a.status_code for a in answers] == [200] * 6
    assert all(sse_payloads(a.text)[-1] == "[DONE]" for a in answers)
    assert upstream.max_open_connections <= 2
    assert load.cooled_until == 0 and not load.recent_failures and load.inflight == 0


async def test_a_call_whose_deadline_runs_out_in_the_queue_gets_a_429_and_cools_nothing(hostile):
    """X's first attempt fails while Y waits for the only slot; X's retry then queues behind Y
    and runs out of time there.  That wait is no failure of the deployment's."""
    released = {"X": trio.Event(), "Y": trio.Event()}

    async def script(request: Request, stream: trio.SocketStream) -> None:
        who = request.json()["messages"][0]["content"]
        if who in released:
            await released[who].wait()
        if who == "X":
            await stream.send_all(json_reply({"error": {"message": "overloaded"}}, status=500))
        else:
            await stream.send_all(json_reply(chat_completion({"prompt_tokens": 1, "completion_tokens": 1})))

    upstream = await hostile(script)
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1",
             "max_parallel_requests": 1}
    # allowed_fails = 2: X's real 500 counts once; one more failure would cool the deployment.
    router = {"timeout_s": 2, "num_retries": 1, "retry_backoff_s": 0, "allowed_fails": 2, "cooldown_s": 60}
    config = make_config(models=[model], router=router)
    slots = None
    async with client_and_gateway(config) as (client, gateway):
        slots = gateway.deployment_actors[Deployment.from_config(config.models[0]).id].slots
        answers = {}

        async def ask(who: str) -> None:
            answers[who] = await client.post("/v1/chat/completions", json=chat("gpt", who))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "X")
            await eventually(lambda: len(upstream.requests) == 1)  # X holds the only slot
            await trio.sleep(1)  # Y's deadline comes a second after X's
            nursery.start_soon(ask, "Y")
            await eventually(lambda: slots.statistics().tasks_waiting == 1)  # Y is queued
            released["X"].set()  # Y takes the slot; X's retry queues behind it
            await eventually(lambda: "X" in answers, timeout=5)
            released["Y"].set()
        after = await client.post("/v1/chat/completions", json=chat("gpt", "Z"))
        load = only_load(gateway)
    busy = answers["X"]
    assert busy.status_code == 429, busy.text
    assert busy.json()["error"]["type"] == "rate_limit_error"
    assert "max_parallel_requests" in busy.json()["error"]["message"]
    assert 1 <= int(busy.headers["retry-after"]) <= 60
    assert answers["Y"].status_code == 200
    assert after.status_code == 200, after.text  # not cooled down
    assert [r.json()["messages"][0]["content"] for r in upstream.requests] == ["X", "Y", "Z"]  # X's retry never sent
    assert load.cooled_until == 0 and len(load.recent_failures) == 1 and load.inflight == 0


async def test_a_health_probe_queued_behind_busy_slots_says_busy_not_timed_out(hostile):
    release = trio.Event()

    async def script(request: Request, stream: trio.SocketStream) -> None:
        await release.wait()
        await stream.send_all(json_reply(chat_completion({"prompt_tokens": 1, "completion_tokens": 1})))

    upstream = await hostile(script)
    model = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1",
             "max_parallel_requests": 1}
    async with client_and_gateway(make_config(models=[model])) as (client, gateway):
        (deployment,) = gateway.deployments
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(client.post, "/v1/chat/completions", json=chat("gpt")))
            await eventually(lambda: len(upstream.requests) == 1)  # the only slot is taken
            with pytest.raises(DeploymentBusy) as busy:
                await gateway.dispatcher.probe(deployment, "chat", chat("gpt-4o-mini"), 0.3)
            release.set()
    assert "busy" in busy.value.message
    assert len(upstream.requests) == 1  # the probe never went out
