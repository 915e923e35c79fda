from collections import Counter

import pytest
import trio

from gateway_trio.actors.router import SINGLE_DEPLOYMENT_MIN_CALLS, RouterActor
from gateway_trio.channels.messages import Outcome
from gateway_trio.config import ModelConfig, RouterConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import NoDeployment, NotFound


def deployment(name: str, model: str, **extra) -> Deployment:
    return Deployment.from_config(ModelConfig(name=name, model=model, **extra))


async def start(nursery, router: RouterActor) -> RouterActor:
    await nursery.start(router.run)
    return router


async def test_weighted_shuffle_follows_weights(nursery):
    heavy = deployment("g", "openai/a", weight=3, api_base="http://a")
    light = deployment("g", "openai/b", weight=1, api_base="http://b")
    router = await start(nursery, RouterActor(RouterConfig(), [heavy, light], seed=7))
    counts = Counter()
    for _ in range(2000):
        chosen = await router.pick("g")
        counts[chosen.id] += 1
        router.report(Outcome(chosen.id, True, 0.1))
    share = counts[heavy.id] / 2000
    assert 0.70 < share < 0.80


async def test_aliases_and_wildcards_resolve(nursery):
    exact = deployment("gpt-4o", "openai/gpt-4o")
    wild = deployment("openai/*", "openai/*")
    router = await start(nursery, RouterActor(RouterConfig(aliases={"best": "gpt-4o"}), [exact, wild]))
    assert (await router.pick("best")).id == exact.id
    assert (await router.pick("gpt-4o")).id == exact.id
    chosen = await router.pick("openai/gpt-4.1-mini")
    assert chosen.id == wild.id
    assert chosen.upstream_model("openai/gpt-4.1-mini") == "gpt-4.1-mini"
    assert router.resolve("openai/") is None


async def test_unknown_model_lists_close_names(nursery):
    router = await start(nursery, RouterActor(RouterConfig(), [deployment("gpt-4o-mini", "openai/gpt-4o-mini")]))
    with pytest.raises(NotFound) as info:
        await router.pick("gpt-4o-mni")
    assert "gpt-4o-mini" in info.value.message
    assert info.value.status == 404


def pair(name: str = "g") -> list[Deployment]:
    return [deployment(name, "openai/a", api_base="http://a"), deployment(name, "openai/b", api_base="http://b")]


async def test_cooldown_after_allowed_fails_then_recovery(nursery, autojump_clock):
    both = pair()
    router = await start(nursery, RouterActor(RouterConfig(allowed_fails=2, cooldown_s=30), both))
    for d in both:
        for _ in range(2):
            router.report(Outcome(d.id, False, 0.1))
    await trio.sleep(0.001)  # let the actor take the outcomes
    with pytest.raises(NoDeployment) as info:
        await router.pick("g")
    assert info.value.status == 503
    assert 1 <= info.value.retry_after <= 30
    await trio.sleep(31)
    assert (await router.pick("g")).id in {d.id for d in both}


async def test_failures_older_than_a_minute_do_not_count(nursery, autojump_clock):
    a, b = pair()
    router = await start(nursery, RouterActor(RouterConfig(allowed_fails=2), [a, b], seed=1))
    router.report(Outcome(a.id, False, 0.1))
    await trio.sleep(61)
    router.report(Outcome(a.id, False, 0.1))
    await trio.sleep(0.001)
    assert a.id in {(await router.pick("g")).id for _ in range(50)}


async def test_client_errors_do_not_cool_a_deployment_down(nursery, autojump_clock):
    a, b = pair()
    router = await start(nursery, RouterActor(RouterConfig(allowed_fails=1), [a, b], seed=1))
    router.report(Outcome(a.id, False, 0.1, counts_as_failure=False))
    await trio.sleep(0.001)
    assert a.id in {(await router.pick("g")).id for _ in range(50)}


async def test_a_groups_only_deployment_is_not_cooled_by_429s_or_a_few_failures(nursery, autojump_clock):
    only = deployment("g", "openai/a")
    router = await start(nursery, RouterActor(RouterConfig(allowed_fails=3, cooldown_s=30), [only]))
    for _ in range(20):
        chosen = await router.pick("g")
        router.report(Outcome(chosen.id, False, 0.1, rate_limited=True))
    for _ in range(5):
        chosen = await router.pick("g")
        router.report(Outcome(chosen.id, False, 0.1))
    await trio.sleep(0.001)
    assert (await router.pick("g")).id == only.id  # LiteLLM answered 503 to everyone for 30 s here


async def test_a_groups_only_deployment_cools_down_when_most_calls_fail_at_volume(nursery, autojump_clock):
    only = deployment("g", "openai/a")
    router = await start(nursery, RouterActor(RouterConfig(allowed_fails=3, cooldown_s=30), [only]))
    for index in range(SINGLE_DEPLOYMENT_MIN_CALLS):
        chosen = await router.pick("g")
        router.report(Outcome(chosen.id, index % 4 == 0, 0.1))  # three calls in four fail
    await trio.sleep(0.001)
    with pytest.raises(NoDeployment):
        await router.pick("g")


async def test_a_429_still_cools_a_deployment_that_has_siblings(nursery, autojump_clock):
    a, b = pair()
    router = await start(nursery, RouterActor(RouterConfig(allowed_fails=1), [a, b], seed=1))
    router.report(Outcome(a.id, False, 0.1, rate_limited=True))
    await trio.sleep(0.001)
    assert {(await router.pick("g")).id for _ in range(50)} == {b.id}


async def test_cooled_deployment_is_skipped_while_another_serves(nursery, autojump_clock):
    a = deployment("g", "openai/a", api_base="http://a")
    b = deployment("g", "openai/b", api_base="http://b")
    router = await start(nursery, RouterActor(RouterConfig(allowed_fails=1), [a, b], seed=1))
    router.report(Outcome(a.id, False, 0.1))
    await trio.sleep(0.001)
    assert {(await router.pick("g")).id for _ in range(50)} == {b.id}


async def test_retry_prefers_an_untried_deployment(nursery):
    a = deployment("g", "openai/a", api_base="http://a")
    b = deployment("g", "openai/b", api_base="http://b")
    router = await start(nursery, RouterActor(RouterConfig(), [a, b]))
    for _ in range(20):
        assert (await router.pick("g", frozenset({a.id}))).id == b.id


async def test_rpm_limit_makes_a_deployment_unavailable_until_the_next_minute(nursery, autojump_clock):
    only = deployment("g", "openai/a", rpm=2)
    router = await start(nursery, RouterActor(RouterConfig(), [only]))
    await router.pick("g")
    await router.pick("g")
    with pytest.raises(NoDeployment):
        await router.pick("g")
    await trio.sleep(60)
    assert (await router.pick("g")).id == only.id


async def test_least_busy_picks_the_idlest(nursery):
    a = deployment("g", "openai/a", api_base="http://a")
    b = deployment("g", "openai/b", api_base="http://b")
    router = await start(nursery, RouterActor(RouterConfig(strategy="least-busy"), [a, b]))
    first = await router.pick("g")
    second = await router.pick("g")
    assert first.id != second.id


async def test_pre_call_checks_skip_small_context_windows(nursery):
    small = deployment("g", "openai/a", api_base="http://a", info={"max_input_tokens": 10})
    large = deployment("g", "openai/b", api_base="http://b", info={"max_input_tokens": 10000})
    router = await start(nursery, RouterActor(RouterConfig(pre_call_checks=True), [small, large]))
    for _ in range(10):
        assert (await router.pick("g", input_tokens=500)).id == large.id


async def test_a_deployment_with_a_free_slot_is_preferred_to_queueing(nursery, autojump_clock):
    # The weights alone would send nearly every call to `full` (1000 to 1).
    full = deployment("g", "openai/a", api_base="http://a", weight=1000, max_parallel_requests=1)
    free = deployment("g", "openai/b", api_base="http://b", weight=1)
    router = await start(nursery, RouterActor(RouterConfig(), [full, free], seed=3))
    first = await router.pick("g")
    assert first.id == full.id  # its one slot is now taken
    assert {(await router.pick("g")).id for _ in range(20)} == {free.id}
    router.report(Outcome(full.id, True, 0.1))  # the slot is free again
    await trio.sleep(0.01)  # virtual time: passes only once the router has taken the report in
    assert (await router.pick("g")).id == full.id


async def test_with_every_slot_taken_a_call_still_gets_a_deployment_to_queue_on(nursery):
    only = deployment("g", "openai/a", max_parallel_requests=1)
    router = await start(nursery, RouterActor(RouterConfig(), [only]))
    assert [(await router.pick("g")).id for _ in range(3)] == [only.id] * 3
