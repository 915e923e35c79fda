"""Health (SPEC §11): `/health` probes concurrently, each within `[router] health_check_timeout_s`,
reporting its latency; the background check (`health_check_interval_s`) tells the router which
deployments are down before a user's call finds out."""

import trio
from harness import chat, client_and_gateway, eventually, make_config

from gateway_trio.deployment import Deployment
from gateway_trio.testing import Behavior

MASTER = "sk-master-health"
ADMIN = {"authorization": f"Bearer {MASTER}"}


def model(upstream, name, upstream_model, **extra):
    return {"name": name, "model": f"openai/{upstream_model}", "api_base": f"{upstream.base_url}/v1", **extra}


async def test_health_probes_run_concurrently_within_the_timeout_and_report_latency(upstream):
    # Three deployments that each answer after 3 s, one that answers at once; a 1 s timeout.
    for slow in ("slow-a", "slow-b", "slow-c"):
        upstream.behaviors[slow] = Behavior(delay_s=3)
    models = [model(upstream, "slow", name) for name in ("slow-a", "slow-b", "slow-c")]
    models.append(model(upstream, "quick", "quick-model"))
    config = make_config(models=models, server={"master_key": MASTER}, router={"health_check_timeout_s": 1})
    async with client_and_gateway(config) as (client, _):
        started = trio.current_time()
        report = (await client.get("/health", headers=ADMIN)).json()
        took = trio.current_time() - started
    assert took < 2.5  # one timeout, not three (concurrent), and not the 3 s answers
    assert report["healthy_count"] == 1 and report["unhealthy_count"] == 3
    quick = report["healthy_endpoints"][0]
    assert quick["model_group"] == "quick" and 0 <= quick["latency_ms"] < 1000
    for entry in report["unhealthy_endpoints"]:
        assert entry["error"] == "no answer within 1 s"
        assert 1000 <= entry["latency_ms"] < 2500


async def test_background_checks_mark_a_down_deployment_unhealthy_before_users_call_it(upstream):
    upstream.behaviors["sick-model"] = Behavior(status=500)
    models = [model(upstream, "gpt", "well-model"), model(upstream, "gpt", "sick-model")]
    config = make_config(models=models, router={"health_check_interval_s": 0.2, "num_retries": 0})
    sick = Deployment.from_config(config.models[1]).id
    async with client_and_gateway(config) as (client, gateway):
        router = gateway.router
        await eventually(lambda: sick in router.unhealthy, timeout=10)
        metrics = (await client.get("/metrics")).text
        assert f'gateway_deployment_unhealthy{{model_group="gpt",model_id="{sick}"}} 1.0' in metrics
        probes = len(upstream.received)
        # Without the check half of these would go to the sick deployment and fail (no retries).
        answers = [await client.post("/v1/chat/completions", json=chat("gpt")) for _ in range(12)]
        assert [a.status_code for a in answers] == [200] * 12
        user_calls = [r for r in upstream.received[probes:] if r.json.get("max_tokens") != 1]
        assert {r.model for r in user_calls} == {"well-model"}
        # It answers again: the next round takes it back.
        del upstream.behaviors["sick-model"]
        await eventually(lambda: not router.unhealthy, timeout=10)
        seen = set()
        with trio.fail_after(10):
            while "sick-model" not in seen:
                await client.post("/v1/chat/completions", json=chat("gpt"))
                seen.add(upstream.received[-1].model)


async def test_a_group_whose_every_deployment_failed_its_probe_is_still_tried(upstream):
    """A probe can be wrong (a flaky network to the probe, not to the caller): a group with no
    healthy deployment is routed as if unchecked, the call's own failure then tells."""
    upstream.behaviors["only-model"] = Behavior(status=500, fail_times=3)
    config = make_config(
        models=[model(upstream, "only", "only-model")],
        router={"health_check_interval_s": 30, "health_check_timeout_s": 5},
    )
    only = Deployment.from_config(config.models[0]).id
    async with client_and_gateway(config) as (client, gateway):
        await eventually(lambda: only in gateway.router.unhealthy, timeout=10)
        answers = [await client.post("/v1/chat/completions", json=chat("only")) for _ in range(3)]
    assert answers[-1].status_code == 200  # tried, not refused as unavailable


async def test_health_check_settings_are_checked():
    import pytest

    from gateway_trio.config import ConfigError

    with pytest.raises(ConfigError, match="health_check_timeout_s"):
        make_config(router={"health_check_timeout_s": 0})
    with pytest.raises(ConfigError, match="health_check_interval_s"):
        make_config(router={"health_check_interval_s": -1})
