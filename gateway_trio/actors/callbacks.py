"""The callback actor: logging events leave the request path here.

The pipeline posts an event to the bounded mailbox and returns at once.  The actor fans each
event out to hook objects, plain callback functions and user actors, each delivery a task
bounded by a semaphore and a per-hook timeout.  Sync callables run in worker threads with a
bounded limiter.  A hook that raises, hangs or is slow is counted and logged; a full mailbox
drops the event and counts it.  Nothing here can fail or delay a request.

Spend records do not pass through here: the pipeline hands them to the spend writer itself,
so a hook that cannot keep up costs hook events (dropped and counted), never a record.  At
shutdown `drain` delivers what it can within a bound, then drops the rest and says how many.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import trio

from gateway_trio.channels.events import HookEvent
from gateway_trio.errors import GatewayError
from gateway_trio.guardrails.stage import GuardrailStage
from gateway_trio.hooks.inline import HookSet, bind, hook_name
from gateway_trio.hooks.kwargs import hidden_params, logging_kwargs, pre_api_call_kwargs
from gateway_trio.hooks.views import response_object
from gateway_trio.runtime.histogram import Histogram, HistogramSnapshot
from gateway_trio.runtime.supervision import SupervisedState, supervise
from gateway_trio.spend.records import SpendRecord

if TYPE_CHECKING:
    from gateway_trio.calls import Call, CallSnapshot

log = logging.getLogger(__name__)

INBOX_SIZE = 10_000
ACTOR_INBOX_SIZE = 1_000
CONCURRENT_DELIVERIES = 64
HOOK_THREADS = 8


@dataclass(frozen=True, slots=True)
class CallbackCounters:
    """What the callback actor has counted, at one moment (for `/metrics`)."""

    dropped: int
    dropped_at_shutdown: int
    delivered: int
    failures: Mapping[str, int]
    runs: tuple[tuple[tuple[str, str], int], ...] = ()  # (callback, outcome): ran, failed, timed_out
    durations: tuple[tuple[str, HistogramSnapshot], ...] = ()


class UserActor:
    """A user's `async def actor(events)`, its channel and its supervision state."""

    def __init__(self, name: str, fn: Callable[[trio.MemoryReceiveChannel[HookEvent]], Any]) -> None:
        self.name = name
        self.fn = fn
        self.send, self.receive = trio.open_memory_channel[HookEvent](ACTOR_INBOX_SIZE)
        self.state = SupervisedState(name)
        self.dropped = 0

    async def run(self) -> None:
        await self.fn(self.receive)


class CallbackActor:
    def __init__(
        self,
        hooks: HookSet,
        *,
        input_callbacks: Sequence[Callable[..., Any]] = (),
        success_callbacks: Sequence[Callable[..., Any]] = (),
        failure_callbacks: Sequence[Callable[..., Any]] = (),
        actors: Sequence[tuple[str, Callable[..., Any]]] = (),
        guardrails: GuardrailStage | None = None,
        timeout_s: float = 5.0,
        inbox_size: int = INBOX_SIZE,
    ) -> None:
        self.hooks = hooks
        self.input_callbacks = list(input_callbacks)
        self.success_callbacks = list(success_callbacks)
        self.failure_callbacks = list(failure_callbacks)
        self.actors = [UserActor(name, fn) for name, fn in actors]
        self.guardrails = guardrails
        self.timeout_s = timeout_s
        self.dropped = 0
        self.dropped_at_shutdown = 0  # events shutdown could not deliver in time (also in `dropped`)
        self.cut_short = 0  # hook calls still running when shutdown gave up on them
        self.failures: Counter[str] = Counter()
        self.delivered = 0
        self.runs: Counter[tuple[str, str]] = Counter()  # (callback, outcome), for /metrics
        self.durations: dict[str, Histogram] = {}
        self._slots = trio.Semaphore(CONCURRENT_DELIVERIES)
        self._threads = trio.CapacityLimiter(HOOK_THREADS)
        self._inbox_send, self._inbox = trio.open_memory_channel[HookEvent](inbox_size)
        self._delivering = trio.CancelScope()  # cancelled when shutdown stops waiting for hooks
        self._running = False
        self._fanning_out = False
        self._stopped = trio.Event()
        by_method = hooks.by_method
        self.wants_pre_api_call = bool(
            by_method["log_pre_api_call"] or by_method["async_log_pre_api_call"] or self.input_callbacks or self.actors
        )
        self.wants_chunks = bool(self.actors)
        self.wants_responses = bool(hooks.logs or self.success_callbacks or self.failure_callbacks or self.actors)

    # --- the pipeline's side: never blocks ---------------------------------------------------

    def post(self, event: HookEvent) -> None:
        try:
            self._inbox_send.send_nowait(event)
        except trio.WouldBlock:
            self._count_drop(event.kind)
        except trio.ClosedResourceError:
            self._count_drop(event.kind)

    # Events carry a `CallSnapshot`, never the live `Call`: the request goes on (a retry picks
    # another deployment) while the event waits in the mailbox.

    def pre_api_call(self, call: Call) -> None:
        call.api_call_start_time = time.time()  # the attempt goes upstream now (kwargs' `api_call_start_time`)
        if self.wants_pre_api_call:
            self.post(HookEvent("pre_api_call", {"call": call.snapshot()}))

    def stream_chunk(self, call: Call, chunk: bytes) -> None:
        if self.wants_chunks:
            self.post(HookEvent("stream_chunk", {"call_id": call.call_id, "chunk": chunk}))

    def finished(self, call: Call, record: SpendRecord, response: dict[str, Any] | None, error: BaseException | None) -> None:
        if self.wants_responses:
            kind = "success" if record.status == "success" else "failure"
            self.post(HookEvent(kind, {"call": call.snapshot(), "record": record, "response": response, "error": error}))

    def counters(self) -> CallbackCounters:
        """A frozen copy of the counters.  Synchronous, not asked through the mailbox: request
        tasks count drops here too, and a scrape must not queue behind (or be dropped from) a
        backlog of events; one synchronous read on the loop's thread is consistent."""
        return CallbackCounters(self.dropped, self.dropped_at_shutdown, self.delivered,
                                MappingProxyType(dict(self.failures)), tuple(sorted(self.runs.items())),
                                tuple((name, h.snapshot()) for name, h in sorted(self.durations.items())))

    def _count_drop(self, kind: str) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning("callback mailbox full: dropped a %s event (%d dropped so far)", kind, self.dropped)

    # --- the actor ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                for actor in self.actors:
                    nursery.start_soon(self._run_user_actor, actor)
                task_status.started()
                with self._inbox:
                    with self._delivering:
                        # Mailbox closed (shutdown): the nursery lets deliveries in flight finish.
                        async with trio.open_nursery() as deliveries:
                            async for event in self._inbox:
                                self._fanning_out = True
                                try:
                                    await self._fan_out(deliveries, event)
                                except Exception:  # an event we cannot expand is lost, counted, and logged
                                    self.failures["fan_out"] += 1
                                    log.exception("callback actor: could not deliver a %s event", event.kind)
                                self._fanning_out = False
                    if self._delivering.cancelled_caught:
                        self._drop_undelivered()
                for actor in self.actors:
                    actor.send.close()  # user actors see the end of their events
        finally:
            self._stopped.set()

    def close(self) -> None:
        """No more events: the actor delivers what it has and returns."""
        self._inbox_send.close()

    async def drain(self, timeout_s: float) -> None:
        """Stop taking events and deliver what is queued, waiting at most `timeout_s`.

        A hook may sleep or hang, and a backlog may be long: shutdown waits for neither without
        end.  What is still undelivered then is dropped, counted and logged.
        """
        self.close()
        if not self._running:
            return
        with trio.move_on_after(timeout_s):
            await self._stopped.wait()
            return
        self._delivering.cancel()
        await self._stopped.wait()

    def _drop_undelivered(self) -> None:
        """Shutdown gave up on the hooks: count what never reached them (the event being fanned
        out when it did, and those still queued) and say so once."""
        undelivered = 1 if self._fanning_out else 0  # the event whose fan-out was cut
        while True:
            try:
                self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            undelivered += 1
        self.dropped += undelivered
        self.dropped_at_shutdown += undelivered
        if undelivered or self.cut_short:
            log.warning(
                "shutdown: %d logging events were not delivered to hooks in time and were dropped "
                "(%d hook calls cut short, %d events dropped in all); spend records are not affected",
                undelivered, self.cut_short, self.dropped,
            )

    async def _run_user_actor(self, actor: UserActor) -> None:
        await supervise(actor.name, actor.run, actor.state)
        if actor.state.stopped:
            actor.receive.close()  # further events are dropped and counted

    async def _fan_out(self, nursery: trio.Nursery, event: HookEvent) -> None:
        payload = event.payload
        if event.kind == "stream_chunk":
            self._to_actors(event)
            return
        call: CallSnapshot = payload["call"]
        if event.kind == "pre_api_call":
            kwargs = pre_api_call_kwargs(call)
            model, messages = kwargs["model"], kwargs["messages"]
            self._to_actors(HookEvent("pre_api_call", {"model": model, "messages": messages, "kwargs": kwargs}))
            for hook in self.hooks.by_method["log_pre_api_call"]:
                await self._deliver(nursery, hook_name(hook) + ".log_pre_api_call", bind(hook, "log_pre_api_call", model=model, messages=messages, kwargs=kwargs), (), sync=True)
            for hook in self.hooks.by_method["async_log_pre_api_call"]:
                await self._deliver(nursery, hook_name(hook) + ".async_log_pre_api_call", bind(hook, "async_log_pre_api_call", model=model, messages=messages, kwargs=kwargs), (), sync=False)
            for fn in self.input_callbacks:
                await self._deliver(nursery, _fn_name(fn), fn, (kwargs,), sync=not _is_async(fn))
            return

        record: SpendRecord = payload["record"]
        error = payload["error"]
        body = payload["response"]
        if self.guardrails and self.guardrails.active(call, "logging_only"):
            call, body = await self._mask_for_logging(call, body)
        kwargs = logging_kwargs(call, record, error, body)
        response = response_object(body, hidden_params(call, record.cost)) if body is not None else None
        args = (kwargs, response, kwargs["start_time"], kwargs["end_time"])
        logged = {"kwargs": kwargs, "response_obj": response, "start_time": args[2], "end_time": args[3]}
        self._to_actors(HookEvent(event.kind, {"kwargs": kwargs, "response_obj": response,
                                               "start_time": args[2], "end_time": args[3]}))
        success = event.kind == "success"
        sync_method = "log_success_event" if success else "log_failure_event"
        async_method = "async_log_success_event" if success else "async_log_failure_event"
        for hook in self.hooks.by_method["log_post_api_call"]:
            await self._deliver(nursery, hook_name(hook) + ".log_post_api_call", bind(hook, "log_post_api_call", **logged), (), sync=True)
        for hook in self.hooks.by_method[sync_method]:
            await self._deliver(nursery, f"{hook_name(hook)}.{sync_method}", bind(hook, sync_method, **logged), (), sync=True)
        for hook in self.hooks.by_method[async_method]:
            await self._deliver(nursery, f"{hook_name(hook)}.{async_method}", bind(hook, async_method, **logged), (), sync=False)
        for fn in self.success_callbacks if success else self.failure_callbacks:
            await self._deliver(nursery, _fn_name(fn), fn, args, sync=not _is_async(fn))

    async def _mask_for_logging(
        self, call: CallSnapshot, body: dict[str, Any] | None
    ) -> tuple[CallSnapshot, dict[str, Any] | None]:
        """`logging_only` guardrails mask what hooks log, never the client's answer: masking makes
        new bodies (copy-on-write), and runs on a scratch call whose runs are not recorded."""
        assert self.guardrails is not None
        scratch = call.scratch_call(call.body)
        logged_body = body
        try:
            scratch.body = await self.guardrails.check_body(scratch, "logging_only", scratch.body, response=False)
            if logged_body is not None:
                logged_body = await self.guardrails.check_body(scratch, "logging_only", logged_body, response=True)
        except GatewayError as error:
            log.warning("logging_only guardrail on call %s: %s", call.call_id, error.message)
        return scratch.snapshot(), logged_body

    def _to_actors(self, event: HookEvent) -> None:
        for actor in self.actors:
            if actor.state.stopped:
                continue
            try:
                actor.send.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                actor.dropped += 1
                self._count_drop(event.kind)

    async def _deliver(self, nursery: trio.Nursery, name: str, fn: Callable[..., Any], args: tuple[Any, ...], *, sync: bool) -> None:
        await self._slots.acquire()
        nursery.start_soon(self._run_one, name, fn, args, sync)

    async def _run_one(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...], sync: bool) -> None:
        ended = False  # delivered, failed or timed out; not ended: cut short by shutdown
        started = trio.current_time()
        outcome = "ran"
        try:
            with trio.move_on_after(self.timeout_s) as waiting:
                try:
                    if sync:
                        await trio.to_thread.run_sync(fn, *args, limiter=self._threads, abandon_on_cancel=True)
                    else:
                        await fn(*args)
                    self.delivered += 1
                except Exception as error:
                    outcome = "failed"
                    self.failures[name] += 1
                    log.warning("callback %s failed: %r (%d failures)", name, error, self.failures[name])
            if waiting.cancelled_caught:
                outcome = "timed_out"
                self.failures[name] += 1
                log.warning("callback %s timed out after %.1f s", name, self.timeout_s)
            ended = True
            self.runs[name, outcome] += 1
            timing = self.durations.get(name)
            if timing is None:
                timing = self.durations[name] = Histogram()
            timing.observe(trio.current_time() - started)
        finally:
            if not ended:
                self.cut_short += 1
            self._slots.release()


_ASYNC_CACHE: dict[Any, bool] = {}


def _is_async(fn: Callable[..., Any]) -> bool:
    known = _ASYNC_CACHE.get(fn)
    if known is None:
        known = _ASYNC_CACHE[fn] = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)
        )
    return known


def _fn_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__
