"""The gateway: builds the actors from a config and runs them under one nursery."""

from __future__ import annotations

import logging
from typing import Mapping

import httpx
import trio

from gateway_trio.actors.provider import ProviderActor
from gateway_trio.actors.router import RouterActor
from gateway_trio.config import GatewayConfig
from gateway_trio.deployment import Deployment
from gateway_trio.pipeline import Pipeline

log = logging.getLogger(__name__)


class Gateway:
    """Owns the router and provider actors and the pipeline that uses them.

    `transports` lets tests put an `httpx.MockTransport` in front of chosen deployments.
    """

    def __init__(
        self, config: GatewayConfig, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
    ) -> None:
        self.config = config
        self.deployments = [Deployment.from_config(model) for model in config.models]
        ids = [d.id for d in self.deployments]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate deployment ids: {', '.join(duplicates)}")
        transports = transports or {}
        self.router = RouterActor(config.router, self.deployments)
        self.providers = {d.id: ProviderActor(d, transport=transports.get(d.id)) for d in self.deployments}
        self.pipeline = Pipeline(config.router, self.router, self.providers)
        self.ready = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every actor; returns only when they are all cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.router.run)
            for provider in self.providers.values():
                await nursery.start(provider.run)
            self.ready.set()
            log.info("gateway ready: %d deployments in %d groups", len(self.deployments), len(self.router.groups))
            task_status.started()
