"""Probing deployments: once per `/health`, and now and then in the background.

A probe is one bare request to one deployment, through the API of its mode with that API's
probe body: no routing, retries, hooks or records.  The background check tells the router how
each probe went, so a deployment whose upstream is down is skipped before a user's call finds
out, and taken again once it answers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio

from gateway_trio.actors.router import RouterActor
from gateway_trio.apis import APIS
from gateway_trio.channels.messages import Health
from gateway_trio.config import RouterConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import GatewayError
from gateway_trio.pipeline.dispatch import Dispatcher

log = logging.getLogger(__name__)

# Each deployment mode's probe: the API it is probed through, with that API's probe body.
PROBES = {api.probe[0]: api for api in APIS if api.probe is not None}
PROBE_CONCURRENCY = 16

Entry = dict[str, object]


def probed(deployments: Sequence[Deployment]) -> list[Deployment]:
    """The deployments a probe can call: not pass-through routes, wildcards or unprobed modes."""
    return [d for d in deployments if d.provider != "pass_through" and "*" not in d.model and d.info.mode in PROBES]


async def probe_all(
    dispatcher: Dispatcher, deployments: Sequence[Deployment], timeout_s: float
) -> tuple[list[Entry], list[Entry]]:
    """Call every deployment once, a few at a time, each within `timeout_s`: which answered and
    which did not, each entry with the probe's latency in milliseconds."""
    healthy: list[Entry] = []
    unhealthy: list[Entry] = []
    limit = trio.CapacityLimiter(PROBE_CONCURRENCY)

    async def probe(deployment: Deployment) -> None:
        entry: Entry = {
            "model_group": deployment.group,
            "model_id": deployment.id,
            "provider": deployment.provider,
            "api_base": deployment.public_api_base,
        }
        api = PROBES[deployment.info.mode]
        body = {"model": deployment.model, **api.probe[1]}
        async with limit:
            started = trio.current_time()
            try:
                await dispatcher.probe(deployment, api.adapter_method, body, timeout_s)
            except GatewayError as error:
                entry["latency_ms"] = latency_ms(started)
                unhealthy.append({**entry, "error": error.message})
                return
            entry["latency_ms"] = latency_ms(started)
        healthy.append(entry)

    async with trio.open_nursery() as nursery:
        for deployment in probed(deployments):
            nursery.start_soon(probe, deployment)
    return healthy, unhealthy


def latency_ms(started: float) -> float:
    return round((trio.current_time() - started) * 1000, 1)


class HealthChecks:
    """The background check (`[router] health_check_interval_s`): every interval, probe every
    deployment and tell the router which answered."""

    def __init__(
        self, dispatcher: Dispatcher, router: RouterActor, deployments: Sequence[Deployment], config: RouterConfig
    ) -> None:
        self.dispatcher = dispatcher
        self.router = router
        self.deployments = probed(deployments)
        self.interval_s = config.health_check_interval_s
        self.timeout_s = min(config.health_check_timeout_s, config.health_check_interval_s or float("inf"))
        self.rounds = 0  # completed rounds: a test and the logs read it

    async def run(self) -> None:
        while True:
            await self.check()
            await trio.sleep(self.interval_s)

    async def check(self) -> None:
        """One round: probe all, report each result to the router."""
        healthy, unhealthy = await probe_all(self.dispatcher, self.deployments, self.timeout_s)
        for entry in healthy:
            self.router.report_health(Health(str(entry["model_id"]), True))
        for entry in unhealthy:
            self.router.report_health(Health(str(entry["model_id"]), False))
            log.warning(
                "health check: deployment %s of %s failed its probe: %s",
                entry["model_id"],
                entry["model_group"],
                entry["error"],
            )
        self.rounds += 1
