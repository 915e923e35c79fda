"""The gateway: builds the actors from a config and runs them under one nursery."""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import trio

from gateway_trio.actors.callbacks import CallbackActor
from gateway_trio.actors.deployment import DeploymentActor
from gateway_trio.actors.router import RouterActor
from gateway_trio.apis import APIS
from gateway_trio.auth import Authenticator
from gateway_trio.config import ConfigError, GatewayConfig, RouterConfig, load_config
from gateway_trio.control.admin import Admin
from gateway_trio.control.admission import Admitter
from gateway_trio.control.conversations import ConversationStore
from gateway_trio.control.database import SharedDatabase
from gateway_trio.control.estimate import PriceBook
from gateway_trio.control.invalidations import Invalidations
from gateway_trio.control.limits import LimitsActor
from gateway_trio.control.plane import ControlPlane
from gateway_trio.control.reconcile import reconcile
from gateway_trio.control.redis_client import RedisLink
from gateway_trio.control.routing_sync import RoutingSync
from gateway_trio.control.store import ControlStore, Store
from gateway_trio.deployment import Deployment
from gateway_trio.guardrails.base import CustomGuardrail
from gateway_trio.guardrails.stage import Guardrail, GuardrailStage, configure
from gateway_trio.hooks import CustomLogger
from gateway_trio.hooks.inline import HookSet, hook_name
from gateway_trio.hooks.loader import allow_imports_beside, load_actor, load_function, load_hook, one_line
from gateway_trio.pipeline.admission import AdmissionStage
from gateway_trio.pipeline.conversations import ConversationStage
from gateway_trio.pipeline.dispatch import Dispatcher
from gateway_trio.pipeline.health import HealthChecks
from gateway_trio.pipeline.metrics import CallMetrics
from gateway_trio.pipeline.serve import Pipeline
from gateway_trio.pipeline.tracing import check_tracing, tracing_for
from gateway_trio.runtime.histogram import Histogram
from gateway_trio.runtime.stalls import StallWatch, user_code_of
from gateway_trio.runtime.turns import Turnstile
from gateway_trio.spend.spool import Spool
from gateway_trio.spend.store import check_store
from gateway_trio.spend.writer import SpendWriter
from gateway_trio.upstream.redaction import Redactor, configured_secrets

if TYPE_CHECKING:
    from gateway_trio.runtime.tracing import Tracing

log = logging.getLogger(__name__)

T = TypeVar("T")


class Generation:
    """What a reload replaces, built from one config: deployments and their actors, the router,
    guardrails, hooks and the callback actor, the dispatcher and the pipeline over them.

    A call takes the gateway's current generation once, at its start, and keeps it to its end
    (a stream too): so a reload is one assignment between two awaits, and a call never sees half
    of one config and half of another.  The old generation retires once its calls are done.
    """

    def __init__(
        self,
        config: GatewayConfig,
        shared: Gateway,
        transports: Mapping[str, httpx.AsyncBaseTransport],
        hooks: list[Any],
    ) -> None:
        self.config = config
        self.deployments = deployments_of(config)
        hook_config = config.hooks
        allow_imports_beside(config.source)
        self.guardrails = GuardrailStage([guardrail_of(config, index) for index in range(len(config.guardrails))])
        self.hooks = HookSet([*each(hook_config.callbacks, "hooks.callbacks", load_hook), *hooks],
                             timeout_s=hook_config.timeout_s, scoped=self.guardrails.hook_implementers())
        self.guardrails.attach(self.hooks)  # the callbacks' moderation hooks run with during-call guardrails
        self.callbacks = CallbackActor(
            self.hooks,
            input_callbacks=each(hook_config.input_callback, "hooks.input_callback", load_function),
            success_callbacks=each(hook_config.success_callback, "hooks.success_callback", load_function),
            failure_callbacks=each(hook_config.failure_callback, "hooks.failure_callback", load_function),
            actors=list(zip(hook_config.actors, each(hook_config.actors, "hooks.actors", load_actor))),
            guardrails=self.guardrails,
            timeout_s=hook_config.timeout_s,
        )
        self.router = RouterActor(config.router, self.deployments)
        check_fallbacks(config.router, self.router)
        redactor = Redactor(configured_secrets(config))
        cap = config.router.max_response_bytes
        self.deployment_actors = {
            d.id: DeploymentActor(d, transport=transports.get(d.id), redactor=redactor, max_response_bytes=cap)
            for d in self.deployments
        }
        self.dispatcher = Dispatcher(
            config.router, self.router, self.deployment_actors, self.callbacks, self.guardrails
        )
        self.pipeline = Pipeline(
            self.dispatcher,
            self.hooks,
            self.callbacks,
            self.guardrails,
            shared.spend,
            AdmissionStage(shared.control),
            ConversationStage(shared.conversations),
        )
        self.pipeline.litellm_headers = config.server.litellm_headers
        self.pipeline.access_log = config.server.access_log
        # One recorder and one tracer for every generation: a reload never resets a counter.
        self.pipeline.metrics = shared.call_metrics
        self.pipeline.tracing = shared.tracing
        # `[redis]`: this router's deployment counters and cooldowns, swapped with the others'.
        self.routing_sync = RoutingSync(shared.redis, self.router) if shared.redis is not None else None
        self.health = HealthChecks(self.dispatcher, self.router, self.deployments, config.router)
        # Each API as this config serves it (a moderation route's default model, say), by name.
        self.apis = {api.name: api.configured(config) for api in APIS}
        self._scope = trio.CancelScope()
        self._checking = trio.CancelScope()  # the background health check, stopped first on retiring

    def summary(self) -> dict[str, Any]:
        """What this generation serves, as `POST /config/reload` reports it."""
        return {"groups": self.router.group_names(), "deployments": len(self.deployments)}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run this generation's actors until it is retired (or the gateway stops)."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.callbacks.run)
                await nursery.start(self.router.run)
                if self.routing_sync is not None:
                    await nursery.start(self.routing_sync.run)
                for actor in self.deployment_actors.values():
                    await nursery.start(actor.run)
                if self.config.router.health_check_interval_s:
                    nursery.start_soon(self._check_health)
                task_status.started()
                await trio.sleep_forever()

    async def _check_health(self) -> None:
        with self._checking:
            await self.health.run()

    def longest_call_s(self) -> float:
        """The longest a call of this generation can last: its deadline, then its hooks."""
        return self.config.router.timeout_s + self.config.hooks.timeout_s

    def stop(self) -> None:
        """Stop the actors at once (a generation built but never put in service)."""
        self._scope.cancel()

    async def retire(self, grace_s: float, keep: list[Any]) -> None:
        """Once its calls are done (at most `grace_s`), deliver its hook events, close its
        guardrails and the hook objects the next generation does not keep, stop its actors."""
        self._checking.cancel()
        with trio.move_on_after(grace_s):
            while self.pipeline.inflight > 0:
                await trio.sleep(RETIRE_POLL_S)
        if self.pipeline.inflight:
            log.warning("reload: %d calls of the old config still open after %g s", self.pipeline.inflight, grace_s)
        try:
            await self.callbacks.drain(self.config.hooks.timeout_s)
            await self.guardrails.aclose()
            kept = {id(hook) for hook in keep}
            for hook in self.hooks.hooks:
                if id(hook) not in kept:
                    await close_hook(hook, self.config.hooks.timeout_s)
        finally:
            self._scope.cancel()


RETIRE_POLL_S = 0.05
# What a reload cannot change in a running process: the listening sockets, the master key, the
# stores and the routes made from them.  A change there is refused, naming it: restart instead.
RESTART_ONLY = ("server", "database", "redis", "responses", "pass_through", "metrics", "otel")


async def close_hook(hook: Any, timeout_s: float) -> None:
    """Close a hook object a reload replaced, the way it offers (`aclose`, or `close`); a hook
    that fails or hangs there is logged, never the reload's failure."""
    close = getattr(hook, "aclose", None) or getattr(hook, "close", None)
    if close is None:
        return
    try:
        with trio.move_on_after(timeout_s):
            result = close()
            if inspect.isawaitable(result):
                await result
    except Exception:
        log.exception("reload: closing the replaced hook %s failed", hook_name(hook))


@dataclass(frozen=True, slots=True)
class Counts:
    """What a generation's own objects counted that `/metrics` shows as counters: carried into
    the next generation, so that no counter goes backwards at a reload."""

    hook_failures: Counter[str]
    hooks_skipped: Counter[str]
    callback_failures: Counter[str]
    hook_runs: Counter[tuple[str, str]]
    callback_runs: Counter[tuple[str, str]]
    hook_durations: dict[str, tuple[list[int], float]]
    callback_durations: dict[str, tuple[list[int], float]]
    dropped: int
    dropped_at_shutdown: int
    delivered: int
    invalid_usage: dict[str, int]

    @classmethod
    def of(cls, generation: Generation) -> Counts:
        hooks, callbacks = generation.hooks, generation.callbacks
        return cls(Counter(hooks.failures), Counter(hooks.skipped), Counter(callbacks.failures),
                   Counter(hooks.runs), Counter(callbacks.runs), _histograms(hooks.durations),
                   _histograms(callbacks.durations), callbacks.dropped,
                   callbacks.dropped_at_shutdown, callbacks.delivered,
                   {i: actor.check_usage.invalid for i, actor in generation.deployment_actors.items()})

    def add_to(self, generation: Generation, less: Counts | None = None) -> None:
        """Add these counts (less `less`, counted already) to `generation`'s."""
        hooks, callbacks = generation.hooks, generation.callbacks
        hooks.failures.update(self.hook_failures - (less.hook_failures if less else Counter()))
        hooks.skipped.update(self.hooks_skipped - (less.hooks_skipped if less else Counter()))
        callbacks.failures.update(self.callback_failures - (less.callback_failures if less else Counter()))
        hooks.runs.update(self.hook_runs - (less.hook_runs if less else Counter()))
        callbacks.runs.update(self.callback_runs - (less.callback_runs if less else Counter()))
        _add_histograms(hooks.durations, self.hook_durations, less.hook_durations if less else {})
        _add_histograms(callbacks.durations, self.callback_durations, less.callback_durations if less else {})
        callbacks.dropped += self.dropped - (less.dropped if less else 0)
        callbacks.dropped_at_shutdown += self.dropped_at_shutdown - (less.dropped_at_shutdown if less else 0)
        callbacks.delivered += self.delivered - (less.delivered if less else 0)
        for deployment_id, invalid in self.invalid_usage.items():
            if (actor := generation.deployment_actors.get(deployment_id)) is not None:
                actor.check_usage.invalid += invalid - (less.invalid_usage.get(deployment_id, 0) if less else 0)


def _histograms(durations: dict[str, Histogram]) -> dict[str, tuple[list[int], float]]:
    return {name: (list(histogram.counts), histogram.sum) for name, histogram in durations.items()}


def _add_histograms(into: dict[str, Histogram], counted: dict[str, tuple[list[int], float]],
                    less: dict[str, tuple[list[int], float]]) -> None:
    """Add the histograms `counted` (less what `less` holds of them) into `into`, by name."""
    for name, (counts, total) in counted.items():
        before, before_total = less.get(name, ([0] * len(counts), 0.0))
        histogram = into.setdefault(name, Histogram())
        for index, (count, already) in enumerate(zip(counts, before)):
            histogram.counts[index] += count - already
        histogram.sum += total - before_total


def carry_over(old: RouterActor, new: RouterActor) -> None:
    """Deployments a reload keeps (same id) stay cooled down, or unhealthy, as they were.

    Before the new router runs (nobody else touches its state then); the old one's is only read.
    """
    for deployment_id, load in new.loads.items():
        if (before := old.loads.get(deployment_id)) is not None:
            load.cooled_until = before.cooled_until
    new.unhealthy = {d for d in old.unhealthy if d in new.loads}


def restart_only_changes(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """The sections a reload cannot apply that differ between `old` and `new`."""
    return [section for section in RESTART_ONLY if getattr(old, section) != getattr(new, section)]


class Gateway:
    """Owns every actor and the pipeline that uses them.

    Building one builds everything `serve` needs, and does nothing more: it imports and
    constructs the hooks, actors and guardrails, checks the database can be opened and that
    every name the config uses resolves, but starts no actor and opens no connection.  So
    `check-config` builds one too, and every error is a `ConfigError` of one line naming the key.

    What a reload replaces lives in its `Generation` (`current`); the rest (database, spend
    writer, control plane, conversations) is built once and shared by every generation.

    `transports` lets tests put an `httpx.MockTransport` in front of chosen deployments;
    `hooks` adds hook objects on top of those named in the config.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        hooks: list[Any] | None = None,
        workers: int = 1,
    ) -> None:
        self._transports = transports or {}
        self._extra_hooks = hooks or []
        self.workers = workers  # processes serving this config (`--workers N`), this one among them
        try:
            self._build(config)
        except ConfigError as error:
            raise ConfigError(f"{config.source}: {error}") from None

    def _build(self, config: GatewayConfig) -> None:
        master_key = config.server.master_key
        self.authenticate = Authenticator(master_key.get_secret_value() if master_key is not None else None)
        check_tracing(config.otel)
        try:
            check_store(config.database.url)
        except ValueError as error:  # UnsupportedDatabaseUrl, DatabaseUnavailable: never the url itself
            raise ConfigError(f"database.url: {error}") from None
        database = config.database
        self.database = SharedDatabase(
            database.url, pool_size=database.pool_size, pool_timeout_s=database.pool_timeout_s
        )
        self.spend = SpendWriter(
            self.database.spend_store,
            database.flush_interval_s,
            inbox_size=database.queue_size,
            limiter=self.database.limiter,
            spool=Spool(database.spool_dir),
        )
        self.control = ControlPlane(self.authenticate, PriceBook({}))
        # The Responses conversations kept for deployments served through chat (`[responses]`).
        self.conversations = ConversationStore(config.responses, self.database)
        self.redis = self._shared_state(config) if config.redis is not None else None
        self.call_metrics = CallMetrics.configured(
            (route.path for route in config.pass_through), end_user_labels=config.metrics.end_user_labels
        )
        self.tracing: Tracing | None = None  # `[otel]`, made by `run` (pipeline/tracing.py)
        self.current = Generation(config, self, self._transports, self._extra_hooks)
        self._priced(self.current)
        # Every generation's pipeline shares these: one shutdown, one count of finished calls.
        self._shutdown = self.current.pipeline.shutdown
        self._finished = self.current.pipeline.finished
        self.turnstile = Turnstile()
        stall_s = config.server.event_loop_stall_ms / 1000
        self.stalls = StallWatch(stall_s, user_code=self._user_code()) if stall_s else None
        self.ready = trio.Event()
        # The admin operations of the control plane (SPEC §9), over the store `run` opens.
        self.admin: Admin | None = None
        self._store: Store | None = None
        self._nursery: trio.Nursery | None = None
        self._reloading = trio.Lock()

    def _shared_state(self, config: GatewayConfig) -> RedisLink:
        """`[redis]`: the link, the limits actor and the invalidations, built (not connected:
        `check-config` builds a gateway too) and handed to the control plane."""
        assert config.redis is not None
        try:
            import coredis  # noqa: F401
        except ImportError:
            raise ConfigError("redis: coredis is not installed (pip install 'gateway-trio[redis]')") from None
        link = RedisLink(config.redis)
        control = self.control
        # A reservation's key only makes its settlement count once; it must outlive any call
        # (a settlement that finds it gone changes nothing), so a day, or more with long timeouts.
        lease_s = max(86400.0, 4 * config.router.timeout_s)
        control.limits = LimitsActor(link, control.ledger, lease_s=lease_s)
        control.invalidations = Invalidations(link, control.apply_change)
        return link

    @property
    def limits_scope(self) -> str:
        """Who counts limits, budgets and cooldowns: "shared" (Redis), "per worker", "per instance"."""
        if self.redis is not None:
            return "shared"
        return "per worker" if self.workers > 1 else "per instance"

    # What a call or a route reads is the current generation's, read once where it is used.

    @property
    def config(self) -> GatewayConfig:
        return self.current.config

    @property
    def deployments(self) -> list[Deployment]:
        return self.current.deployments

    @property
    def guardrails(self) -> GuardrailStage:
        return self.current.guardrails

    @property
    def hooks(self) -> HookSet:
        return self.current.hooks

    @property
    def callbacks(self) -> CallbackActor:
        return self.current.callbacks

    @property
    def router(self) -> RouterActor:
        return self.current.router

    @property
    def deployment_actors(self) -> dict[str, DeploymentActor]:
        return self.current.deployment_actors

    @property
    def dispatcher(self) -> Dispatcher:
        return self.current.dispatcher

    @property
    def pipeline(self) -> Pipeline:
        return self.current.pipeline

    @property
    def routing_sync(self) -> RoutingSync | None:
        return self.current.routing_sync

    def _priced(self, generation: Generation) -> None:
        """Admission prices and resolves model names by the generation's groups."""
        self.control.admitter = Admitter(self.control.ledger, PriceBook(generation.router.groups),
                                         generation.router.resolve)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every actor; returns only when they are all cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.turnstile.run)
            if self.redis is not None:
                await nursery.start(self.redis.run)
                assert self.control.limits is not None and self.control.invalidations is not None
                await nursery.start(self.control.limits.run)
                await nursery.start(self.control.invalidations.run)
            if self.stalls is not None:
                await nursery.start(self.stalls.run)
            database = await self.database.open()
            store = self._store = Store(ControlStore(database), limiter=self.database.limiter)
            await nursery.start(self.control.run, store, self.config)
            self.admin = Admin(store, clock=time.time, changed=self.control.changed)
            await nursery.start(self.spend.run)
            await nursery.start(self.conversations.run)
            await nursery.start(self.current.run)
            self.tracing = self.pipeline.tracing = tracing_for(self.config.otel)
            self.ready.set()
            if self.authenticate.master_key is None:
                log.warning("no server.master_key configured: every caller is admitted")
                if self.config.server.response_id_secret is None:
                    log.warning("no server.response_id_secret and no master key: response ids are signed with a "
                                "key of this process only; previous_response_id will not survive a restart or "
                                "reach another worker")
            if self.limits_scope == "per worker" and has_limits(self.config):
                log.warning("%d workers and no [redis]: rate limits, budgets and cooldowns are counted by each "
                            "worker on its own, so a limit admits up to %d times its value; configure [redis] "
                            "url to share them", self.workers, self.workers)
            log.info("gateway ready: %d deployments in %d groups", len(self.deployments), len(self.router.groups))
            task_status.started()

    async def reload(self, config: GatewayConfig | None = None) -> dict[str, Any]:
        """Serve `config` (by default: the config file read again) from the next call on.

        All or nothing: the new generation is built and its actors started, the config's keys
        and teams reconciled, and only then is it swapped in; any error (a `ConfigError` naming
        the key) leaves the old config serving.  Calls under way finish on the old generation,
        which then retires (its hooks and guardrails closed).  Returns what is now served.
        """
        if self._nursery is None or self._store is None:
            raise ConfigError("the gateway is not running yet")
        async with self._reloading:
            old = self.current
            if config is None:
                config = await trio.to_thread.run_sync(load_config, old.config.source)
            if changed := restart_only_changes(old.config, config):
                raise ConfigError(f"{config.source}: {', '.join(changed)}: changed, which a reload cannot apply; "
                                  "restart the gateway for it")
            try:
                generation = Generation(config, self, self._transports, self._extra_hooks)
            except ConfigError as error:
                raise ConfigError(f"{config.source}: {error}") from None
            carry_over(old.router, generation.router)
            await self._nursery.start(generation.run)
            try:
                done = await self._store.run(lambda blocking: reconcile(blocking, config))
            except Exception as error:  # ReconcileError names the entry; a store that is away too
                generation.stop()
                raise ConfigError(f"{config.source}: keys and teams: {one_line(error)}") from None
            generation.pipeline.shutdown = self._shutdown
            generation.pipeline.finished = self._finished
            at_swap = Counts.of(old)
            at_swap.add_to(generation)
            self.current = generation  # the swap: the next call takes this one
            self._priced(generation)
            if self.stalls is not None:
                self.stalls.user_code = {**self.stalls.user_code, **self._user_code()}
            self.control.forget_all_keys()  # a config key's record may have changed
            self._nursery.start_soon(self._retire, old, at_swap, generation.hooks.hooks)
            log.info("config reloaded from %s: %d deployments in %d groups; keys and teams: %s",
                     config.source, len(generation.deployments), len(generation.router.groups), done)
            return generation.summary()

    async def _retire(self, old: Generation, at_swap: Counts, keep: list[Any]) -> None:
        """Retire `old`; what it counted since the swap (its last calls) goes to the current one."""
        try:
            await old.retire(old.longest_call_s(), keep)
        finally:
            Counts.of(old).add_to(self.current, less=at_swap)

    def _user_code(self) -> dict[Any, str]:
        """The code operators bring (hooks, guardrails, callbacks, actors): a stall names it."""
        callbacks = self.callbacks
        named: list[tuple[str, Any]] = [(hook_name(hook), hook) for hook in self.hooks.hooks]
        named += [(f"guardrail {g.name}", g.impl) for g in self.guardrails.by_name.values()]
        functions = [*callbacks.input_callbacks, *callbacks.success_callbacks, *callbacks.failure_callbacks]
        named += [(getattr(fn, "__qualname__", repr(fn)), fn) for fn in functions]
        named += [(f"actor {actor.name}", actor.fn) for actor in callbacks.actors]
        return user_code_of(named, skip=(CustomLogger, CustomGuardrail))

    def begin_shutdown(self) -> None:
        """The server stops: open streams end themselves before its graceful timeout cuts them."""
        self._shutdown.begin(self.config.server.graceful_timeout_s)

    async def drain(self) -> None:
        """After the last request: write every spend record, and deliver to hooks what they
        take within one hook timeout (the rest is dropped and counted)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.spend.flush)
            nursery.start_soon(self.conversations.drain)
            nursery.start_soon(self.callbacks.drain, self.config.hooks.timeout_s)
            if self.control.limits is not None:
                nursery.start_soon(self.control.limits.flush, 2.0)
        await self.guardrails.aclose()
        await self.database.aclose()
        if self.tracing is not None:  # after the last call's span has ended
            await self.tracing.aclose()


# --- building from the config: every failure names its key ------------------------------------


@contextmanager
def naming(key: str) -> Iterator[None]:
    """A config error raised while building what `key` configures names `key`."""
    try:
        yield
    except ConfigError as error:
        raise ConfigError(f"{key}: {error}") from None


def each(names: list[str], key: str, load: Callable[[str], T]) -> list[T]:
    """`load` every name of the list at `key`, naming the entry that fails."""
    loaded = []
    for index, name in enumerate(names):
        with naming(f"{key}[{index}]"):
            loaded.append(load(name))
    return loaded


def guardrail_of(config: GatewayConfig, index: int) -> Guardrail:
    with naming(f"guardrails[{index}]"):
        try:
            return configure(config.guardrails[index])
        except (TypeError, ValueError) as error:  # a param of the wrong type, e.g. sample_every = "x"
            raise ConfigError(f"params: {one_line(error)}") from None


def deployments_of(config: GatewayConfig) -> list[Deployment]:
    """The configured deployments and pass-through routes; two with one id would share counters."""
    deployments: list[Deployment] = []
    owner: dict[str, str] = {}
    for index, model in enumerate(config.models):
        deployment = Deployment.from_config(model)
        if deployment.id in owner:
            if model.info.id is not None:
                raise ConfigError(f"models[{index}].info.id: {deployment.id!r} is already the id of {owner[deployment.id]}")
            raise ConfigError(f"models[{index}]: the same deployment as {owner[deployment.id]} (same name, model, "
                              "api_base and api_version); give each an info.id if both are meant")
        owner[deployment.id] = f"models[{index}]"
        deployments.append(deployment)
    for index, route in enumerate(config.pass_through):
        deployment = Deployment.for_pass_through(route)
        if deployment.id in owner:
            raise ConfigError(f"pass_through[{index}].path: {route.path!r} is already routed by {owner[deployment.id]}")
        owner[deployment.id] = f"pass_through[{index}]"
        deployments.append(deployment)
    return deployments


def has_limits(config: GatewayConfig) -> bool:
    """Whether anything in `config` is limited or budgeted: deployment rpm/tpm, keys and teams the
    config declares with limits, or a master key (the virtual keys it makes may have them)."""
    if config.server.master_key is not None:
        return True
    if any(model.rpm or model.tpm for model in config.models):
        return True
    return any(entry.max_budget is not None or entry.rpm_limit or entry.tpm_limit
               for entry in (*config.keys, *config.teams))


def check_fallbacks(config: RouterConfig, router: RouterActor) -> None:
    """Fallbacks are looked up by the group a call resolved to, and each target is routed like a
    client's model name: a name that is neither would only be found out when a call fails."""
    for section in ("fallbacks", "context_window_fallbacks"):
        for group, targets in getattr(config, section).items():
            if group not in router.groups:
                hint = f" ({group!r} is an alias: name its group {config.aliases[group]!r})" if group in config.aliases else ""
                raise ConfigError(f"router.{section}.{group}: unknown model group {group!r}{hint}")
            for index, target in enumerate(targets):
                if router.resolve(target) is None:
                    raise ConfigError(f"router.{section}.{group}[{index}]: unknown model group {target!r}")
