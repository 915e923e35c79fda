"""The router and the background health check's `Health` messages."""

from gateway_trio.actors.router import RouterActor
from gateway_trio.channels.messages import Health, Outcome
from gateway_trio.config import ModelConfig, RouterConfig
from gateway_trio.deployment import Deployment


def deployment(model: str) -> Deployment:
    return Deployment.from_config(ModelConfig(name="g", model=model, api_base=f"http://{model[7:]}"))


async def picks(router: RouterActor, n: int = 50) -> set[str]:
    chosen = set()
    for _ in range(n):
        picked = await router.pick("g")
        chosen.add(picked.id)
        router.report(Outcome(picked.id, True, 0.1))
    return chosen


async def test_an_unhealthy_deployment_is_skipped_until_it_answers_again(nursery):
    up, down = deployment("openai/up"), deployment("openai/down")
    router = RouterActor(RouterConfig(), [up, down], seed=1)
    await nursery.start(router.run)
    assert await picks(router) == {up.id, down.id}
    router.report_health(Health(down.id, False))
    assert await picks(router) == {up.id}
    assert {load.deployment_id for load in (await router.snapshot()).loads if load.unhealthy} == {down.id}
    router.report_health(Health(down.id, True))
    assert await picks(router) == {up.id, down.id}


async def test_a_group_with_no_healthy_deployment_is_still_routed(nursery):
    up, down = deployment("openai/up"), deployment("openai/down")
    router = RouterActor(RouterConfig(), [up, down], seed=1)
    await nursery.start(router.run)
    router.report_health(Health(up.id, False))
    router.report_health(Health(down.id, False))
    assert await picks(router) == {up.id, down.id}  # the probes may be the ones that are wrong
    router.report_health(Health("no-such-deployment", False))  # a reload removed it: ignored
    assert router.unhealthy == {up.id, down.id}
