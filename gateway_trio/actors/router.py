"""The router actor: owns model groups, aliases, wildcards, cooldowns and load counters.

It never does I/O and never awaits an upstream: it answers `Pick` messages with a deployment
and folds `Outcome` messages into its counters.  Being the only owner of that state, it needs
no locks; callers talk to it through `pick`, `report` and `snapshot` (what `/metrics` shows).
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import math
import random
from collections import defaultdict
from typing import Iterable, Union

import trio

from gateway_trio.actors.strategies import STRATEGIES, Load
from gateway_trio.channels.messages import (
    AskSnapshot,
    DeploymentLoad,
    ExchangeLoads,
    Health,
    LocalLoad,
    Outcome,
    Pick,
    RouterSnapshot,
    SharedLoad,
)
from gateway_trio.config import RouterConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import GatewayError, InternalError, NoDeployment, NotFound
from gateway_trio.runtime.handoff import hand_over

log = logging.getLogger(__name__)

FAILURE_WINDOW_S = 60.0
# A group's only deployment is cooled down only at volume, when most of its calls fail
# (LiteLLM's rule too): cooling it answers 503 to every caller of the group, which a few
# failures, or an upstream's 429s, never justify.
SINGLE_DEPLOYMENT_MIN_CALLS = 100
SINGLE_DEPLOYMENT_FAILURE_SHARE = 0.5
LATENCY_SMOOTHING = 0.3
INBOX_SIZE = 1024


class RouterActor:
    def __init__(self, config: RouterConfig, deployments: Iterable[Deployment], *, seed: int | None = None) -> None:
        self.config = config
        self.groups: dict[str, list[Deployment]] = defaultdict(list)
        for deployment in deployments:
            self.groups[deployment.group].append(deployment)
        self.wildcards = sorted(
            (name for name in self.groups if "*" in name), key=lambda name: -len(name.split("*", 1)[0])
        )
        self.loads: dict[str, Load] = {d.id: Load() for group in self.groups.values() for d in group}
        self.alone = frozenset(group[0].id for group in self.groups.values() if len(group) == 1)
        self.choose = STRATEGIES[config.strategy]
        self.rng = random.Random(seed)
        self.dropped_outcomes = 0
        # Deployments the background health check found down (`Health`): skipped while another
        # of their group is up; a group with none up is tried anyway (the probe may be wrong).
        self.unhealthy: set[str] = set()
        self._inbox_send, self._inbox = trio.open_memory_channel[
            Union[Pick, Outcome, Health, AskSnapshot, ExchangeLoads]
        ](INBOX_SIZE)
        self._running = False

    # --- the caller's side ---------------------------------------------------------------

    async def pick(
        self, group: str, tried: frozenset[str] = frozenset(), input_tokens: int = 0, pinned: str | None = None
    ) -> Deployment:
        """Ask for a deployment of `group` (a name, alias or wildcard match), or the pinned one."""
        reply_send, reply = trio.open_memory_channel[Union[Deployment, GatewayError]](1)
        await hand_over(self._inbox_send, Pick(group, tried, input_tokens, pinned, reply_send))
        answer = await reply.receive()
        if isinstance(answer, GatewayError):
            raise answer
        return answer

    def report(self, outcome: Outcome) -> None:
        """Tell the router how an attempt went; never blocks the request path."""
        try:
            self._inbox_send.send_nowait(outcome)
        except trio.WouldBlock:
            self.dropped_outcomes += 1
            log.warning("router inbox full: dropped an outcome (%d so far)", self.dropped_outcomes)

    def report_health(self, health: Health) -> None:
        """Tell the router how a background probe went; never blocks."""
        try:
            self._inbox_send.send_nowait(health)
        except trio.WouldBlock:
            log.warning("router inbox full: dropped a health check result of %s", health.deployment_id)

    async def snapshot(self) -> RouterSnapshot:
        """The loads and cooldowns, as the router's own task sees them.

        Asked through the inbox, not read from here: the answer comes after every `Outcome`
        already queued (a direct read would show calls long ended as still in flight), and the
        state is read only by its owner.  It costs a hop per scrape, nothing per call (a
        published snapshot would cost a copy per message).  A router not running (not started,
        or stopped) has no owner to ask: its state is read as it was left.
        """
        if not self._running:
            return self._snapshot()
        reply_send, reply = trio.open_memory_channel[RouterSnapshot](1)
        await self._inbox_send.send(AskSnapshot(reply_send))
        return await reply.receive()

    async def exchange(self, shared: dict[str, SharedLoad]) -> dict[str, LocalLoad]:
        """With [redis]: hand the router the other instances' loads; get this one's since the
        last exchange.  Through the inbox, like everything that touches the router's state."""
        reply_send, reply = trio.open_memory_channel[dict[str, LocalLoad]](1)
        await self._inbox_send.send(ExchangeLoads(shared, reply_send))
        return await reply.receive()

    def resolve(self, name: str) -> str | None:
        """The group a client's model name refers to, or None.  Pure: safe from any task."""
        name = self.config.aliases.get(name, name)
        if name in self.groups:
            return name
        for pattern in self.wildcards:
            prefix, _, suffix = pattern.partition("*")
            if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix) + len(suffix):
                return pattern
        return None

    def group_names(self) -> list[str]:
        return sorted(self.groups)

    # --- the actor -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._running = True
        try:
            task_status.started()
            await self._serve()
        finally:
            self._running = False

    async def _serve(self) -> None:
        async for message in self._inbox:
            if isinstance(message, AskSnapshot):
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    message.reply.send_nowait(self._snapshot())  # room for one: never blocks
            elif isinstance(message, ExchangeLoads):
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    message.reply.send_nowait(self._exchange(message.shared))
            elif isinstance(message, Pick):
                try:
                    answer = self._pick(message)
                except Exception:  # one bad pick must not take the router down
                    log.exception("router: picking a deployment of %r failed", message.group)
                    answer = InternalError("the router could not pick a deployment")
                try:
                    message.reply.send_nowait(answer)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    # The caller was cancelled while waiting: give the slot back.
                    if isinstance(answer, Deployment):
                        self.loads[answer.id].inflight -= 1
            elif isinstance(message, Health):
                self._health(message)
            else:
                self._record(message)

    def _exchange(self, shared: dict[str, SharedLoad]) -> dict[str, LocalLoad]:
        now = trio.current_time()
        mine: dict[str, LocalLoad] = {}
        for deployment_id, load in self.loads.items():
            others = shared.get(deployment_id)
            if others is not None:
                load.others_inflight, load.others_requests = others.inflight, others.requests
                load.others_tokens, load.others_failures = others.tokens, others.failures
                if others.cooled_for_s > 0 and load.cooled_until < now + others.cooled_for_s - 0.5:
                    load.cooled_until = now + others.cooled_for_s  # another instance cooled it down
            mine[deployment_id] = LocalLoad(load.inflight, load.unsynced_requests, load.unsynced_tokens,
                                            load.unsynced_failures, load.unsynced_cooldown_s)
            load.unsynced_requests = load.unsynced_tokens = load.unsynced_failures = 0
            load.unsynced_cooldown_s = 0.0
        return mine

    def _snapshot(self) -> RouterSnapshot:
        now = trio.current_time()
        return RouterSnapshot(tuple(
            _load_of(group, d.id, self.loads[d.id], now, unhealthy=d.id in self.unhealthy)
            for group, deployments in sorted(self.groups.items()) for d in deployments
        ))

    def _pick(self, pick: Pick) -> Deployment | GatewayError:
        group = self.resolve(pick.group)
        if group is None:
            return self._unknown_model(pick.group)
        now = trio.current_time()
        minute = int(now // 60)
        candidates = self.groups[group]
        if pick.pinned is not None:
            # Only a deployment of the group called: a pin into another group would serve this
            # call with another model (and fallback groups never hold the pinned one).
            candidates = [d for d in candidates if d.id == pick.pinned] or candidates
        healthy = [d for d in candidates if self._available(d, now, minute, pick.input_tokens)]
        if self.unhealthy and healthy:
            healthy = [d for d in healthy if d.id not in self.unhealthy] or healthy
        if not healthy:
            return self._nothing_available(group, now)
        fresh = [d for d in healthy if d.id not in pick.tried] or healthy
        # A deployment whose `max_parallel_requests` slots are all taken would queue the call:
        # another with a free slot serves it now.  Only when none has one does the call queue.
        free = [d for d in fresh if self._inflight(d) < d.max_parallel_requests] or fresh
        chosen = self.choose(free, self.loads, self.rng)
        load = self.loads[chosen.id]
        load.inflight += 1
        load.requests_this_minute += 1
        load.unsynced_requests += 1
        return chosen

    def _inflight(self, deployment: Deployment) -> int:
        """Its calls in flight: this instance's, and (with [redis]) the others' as last synced."""
        load = self.loads[deployment.id]
        return load.inflight + load.others_inflight

    def _available(self, deployment: Deployment, now: float, minute: int, input_tokens: int) -> bool:
        load = self.loads[deployment.id]
        if load.cooled_until > now:
            return False
        if load.minute != minute:
            load.minute, load.tokens_this_minute, load.requests_this_minute = minute, 0, 0
        if deployment.rpm is not None and load.requests_this_minute + load.others_requests >= deployment.rpm:
            return False
        if deployment.tpm is not None and (
            load.tokens_this_minute + load.others_tokens + input_tokens > deployment.tpm
        ):
            return False
        max_input = deployment.info.max_input_tokens
        if self.config.pre_call_checks and max_input is not None and input_tokens > max_input:
            return False
        return True

    def _unknown_model(self, name: str) -> GatewayError:
        known = self.group_names() + sorted(self.config.aliases)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return NotFound(f"model {name!r} is not served here.{hint}", param="model", code="model_not_found")

    def _nothing_available(self, group: str, now: float) -> GatewayError:
        cooling = [self.loads[d.id].cooled_until for d in self.groups[group] if self.loads[d.id].cooled_until > now]
        if cooling:
            wait = min(cooling) - now
        else:
            wait = 60 - now % 60  # rate limits reset at the next minute
        return NoDeployment(
            f"no deployment of {group!r} is available right now", retry_after=max(1.0, math.ceil(wait))
        )

    def _record(self, outcome: Outcome) -> None:
        load = self.loads.get(outcome.deployment_id)
        if load is None:
            return
        load.inflight = max(0, load.inflight - 1)
        load.tokens_this_minute += outcome.tokens
        load.unsynced_tokens += outcome.tokens
        if outcome.ok:
            previous = load.latency_s
            load.latency_s = outcome.latency_s if previous is None else (
                previous + LATENCY_SMOOTHING * (outcome.latency_s - previous)
            )
            return
        if not outcome.counts_as_failure:
            return
        alone = outcome.deployment_id in self.alone
        if alone and outcome.rate_limited:
            return  # the caller gets the upstream's 429 and its retry-after; nobody else is cut off
        now = trio.current_time()
        load.recent_failures = [t for t in load.recent_failures if now - t < FAILURE_WINDOW_S]
        load.recent_failures.append(now)
        load.unsynced_failures += 1
        failures = len(load.recent_failures) + load.others_failures
        if failures < self.config.allowed_fails:
            return
        if alone and (
            load.requests_this_minute < SINGLE_DEPLOYMENT_MIN_CALLS
            or failures <= SINGLE_DEPLOYMENT_FAILURE_SHARE * load.requests_this_minute
        ):
            return
        self.cool_down(outcome.deployment_id, now)

    def _health(self, health: Health) -> None:
        if health.deployment_id not in self.loads:
            return
        if health.healthy:
            if health.deployment_id in self.unhealthy:
                self.unhealthy.discard(health.deployment_id)
                log.info("health check: deployment %s answers again", health.deployment_id)
        elif health.deployment_id not in self.unhealthy:
            self.unhealthy.add(health.deployment_id)
            log.warning("health check: deployment %s marked unhealthy", health.deployment_id)

    def cool_down(self, deployment_id: str, now: float) -> None:
        load = self.loads[deployment_id]
        load.cooled_until = now + self.config.cooldown_s
        load.unsynced_cooldown_s = self.config.cooldown_s  # the other instances cool it down too
        load.recent_failures.clear()
        log.warning("deployment %s cooled down for %.0f s", deployment_id, self.config.cooldown_s)
        load.cooldowns += 1


def _load_of(group: str, deployment_id: str, load: Load, now: float, *, unhealthy: bool = False) -> DeploymentLoad:
    cooling = load.cooled_until > now
    failing = not cooling and any(now - t < FAILURE_WINDOW_S for t in load.recent_failures)
    return DeploymentLoad(group, deployment_id, load.inflight, cooling, load.cooldowns, failing, unhealthy)
