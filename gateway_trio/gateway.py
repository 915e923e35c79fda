"""The gateway: builds the actors from a config and runs them under one nursery."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import httpx
import trio

from gateway_trio.actors.callbacks import CallbackActor
from gateway_trio.actors.provider import ProviderActor
from gateway_trio.actors.router import RouterActor
from gateway_trio.actors.spend import SpendWriter
from gateway_trio.attempts import Dispatcher
from gateway_trio.auth import Authenticator
from gateway_trio.config import GatewayConfig
from gateway_trio.deployment import Deployment
from gateway_trio.guardrails.base import CustomGuardrail
from gateway_trio.guardrails.stage import GuardrailStage, configure
from gateway_trio.hooks import CustomLogger
from gateway_trio.hookset import HookSet, hook_name
from gateway_trio.loader import allow_imports_beside, load_hook, load_object
from gateway_trio.pipeline import Pipeline
from gateway_trio.stalls import StallWatch, user_code_of
from gateway_trio.turns import Turnstile

log = logging.getLogger(__name__)


class Gateway:
    """Owns every actor and the pipeline that uses them.

    `transports` lets tests put an `httpx.MockTransport` in front of chosen deployments;
    `hooks` adds hook objects on top of those named in the config.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        hooks: list[Any] | None = None,
    ) -> None:
        self.config = config
        master_key = config.server.master_key
        self.authenticate = Authenticator(master_key.get_secret_value() if master_key else None)
        self.deployments = [Deployment.from_config(model) for model in config.models]
        self.deployments += [Deployment.for_pass_through(route) for route in config.pass_through]
        ids = [d.id for d in self.deployments]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate deployment ids: {', '.join(duplicates)}")
        transports = transports or {}
        hook_config = config.hooks
        allow_imports_beside(config.source)
        self.guardrails = GuardrailStage([configure(g) for g in config.guardrails])
        self.hooks = HookSet([*(load_hook(name) for name in hook_config.callbacks), *(hooks or [])],
                             timeout_s=hook_config.timeout_s, scoped=self.guardrails.hook_implementers())
        self.spend = SpendWriter(config.database.url, config.database.flush_interval_s)
        self.callbacks = CallbackActor(
            self.hooks,
            input_callbacks=[load_object(n) for n in hook_config.input_callback],
            success_callbacks=[load_object(n) for n in hook_config.success_callback],
            failure_callbacks=[load_object(n) for n in hook_config.failure_callback],
            actors=[(n, load_object(n, what="actor")) for n in hook_config.actors],
            spend=self.spend,
            guardrails=self.guardrails,
            timeout_s=hook_config.timeout_s,
        )
        self.router = RouterActor(config.router, self.deployments)
        self.providers = {d.id: ProviderActor(d, transport=transports.get(d.id)) for d in self.deployments}
        self.dispatcher = Dispatcher(config.router, self.router, self.providers, self.callbacks, self.guardrails)
        self.pipeline = Pipeline(self.dispatcher, self.hooks, self.callbacks, self.guardrails)
        self.turnstile = Turnstile()
        stall_s = config.server.event_loop_stall_ms / 1000
        self.stalls = StallWatch(stall_s, user_code=self._user_code()) if stall_s else None
        self.ready = trio.Event()
        self._callbacks_done = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every actor; returns only when they are all cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.turnstile.run)
            if self.stalls is not None:
                await nursery.start(self.stalls.run)
            await nursery.start(self.spend.run)
            await nursery.start(self._run_callbacks)
            await nursery.start(self.router.run)
            for provider in self.providers.values():
                await nursery.start(provider.run)
            self.ready.set()
            log.info("gateway ready: %d deployments in %d groups", len(self.deployments), len(self.router.groups))
            task_status.started()

    def _user_code(self) -> dict[Any, str]:
        """The code operators bring (hooks, guardrails, callbacks, actors): a stall names it."""
        callbacks = self.callbacks
        named: list[tuple[str, Any]] = [(hook_name(hook), hook) for hook in self.hooks.hooks]
        named += [(f"guardrail {g.name}", g.impl) for g in self.guardrails.by_name.values()]
        functions = [*callbacks.input_callbacks, *callbacks.success_callbacks, *callbacks.failure_callbacks]
        named += [(getattr(fn, "__qualname__", repr(fn)), fn) for fn in functions]
        named += [(f"actor {actor.name}", actor.fn) for actor in callbacks.actors]
        return user_code_of(named, skip=(CustomLogger, CustomGuardrail))

    async def _run_callbacks(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self.callbacks.run(task_status=task_status)
        finally:
            self._callbacks_done.set()

    def begin_shutdown(self) -> None:
        """The server stops: open streams end themselves before its graceful timeout cuts them."""
        self.pipeline.shutdown.begin(self.config.server.graceful_timeout_s)

    async def drain(self) -> None:
        """After the last request: deliver pending events, then write every spend record."""
        self.callbacks.close()
        await self._callbacks_done.wait()
        await self.spend.flush()
        await self.guardrails.aclose()
