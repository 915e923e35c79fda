"""Dispatch: routing, the attempts on deployment actors, retries, fallbacks and deadlines.

Every failure before the first chunk (or the whole answer) reaches the client is retried or
fallen back here, invisibly; `Dispatcher` hands back the first event of the winning attempt
together with the channel the rest arrives on.  Only the upstream's own failures are retried
and counted against its deployment (see `actors.deployment.blame`); an error raised on our side
of the wire, or the wait for a free slot, never is.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Mapping

import trio

from gateway_trio.actors.callbacks import CallbackActor
from gateway_trio.actors.deployment import DeploymentActor, internal_error
from gateway_trio.actors.router import RouterActor
from gateway_trio.adapters.usage import reported_tokens
from gateway_trio.apis.options import GATEWAY_FIELDS, take_options
from gateway_trio.apis.tokens import estimate_tokens
from gateway_trio.calls import Call
from gateway_trio.channels.messages import DeploymentEvent, Dispatch, Failure, Outcome, Reply
from gateway_trio.config import RouterConfig
from gateway_trio.control.admission import allows_model
from gateway_trio.deployment import Deployment
from gateway_trio.errors import (
    BadRequest,
    DeploymentBusy,
    Forbidden,
    GatewayError,
    InternalError,
    NoDeployment,
    UpstreamError,
    UpstreamTimeout,
    is_retryable,
)
from gateway_trio.guardrails.stage import GuardrailStage
from gateway_trio.pipeline import mocked
from gateway_trio.pipeline.provider_fit import fit_to_provider
from gateway_trio.pipeline.stream import CHUNK_BUFFER, Stream
from gateway_trio.pipeline.tracing import close_attempt, open_attempt
from gateway_trio.runtime import turns

log = logging.getLogger(__name__)

# What a call that found no free slot before its deadline is told to wait: slots free up as
# the calls holding them end, which no one can foresee.
BUSY_RETRY_AFTER_S = 1.0
CONTEXT_WINDOW_HINTS = ("context_length_exceeded", "maximum context length", "prompt is too long", "context window")


def is_context_window_error(error: GatewayError) -> bool:
    message = error.message.lower()
    return isinstance(error, UpstreamError) and error.status == 400 and any(h in message for h in CONTEXT_WINDOW_HINTS)


class Dispatcher:
    def __init__(
        self,
        config: RouterConfig,
        router: RouterActor,
        deployment_actors: Mapping[str, DeploymentActor],
        callbacks: CallbackActor,
        guardrails: GuardrailStage,
    ) -> None:
        self.config = config
        self.callbacks = callbacks
        self.guardrails = guardrails
        self.router = router
        self.deployment_actors = deployment_actors
        self.rng = random.Random()
        self.counts_tokens = config.pre_call_checks or any(
            actor.deployment.tpm is not None for actor in deployment_actors.values()
        )

    async def complete(self, call: Call) -> dict[str, Any]:
        """Run a non-streaming call to its answer."""
        event, events, _ = await self.first_event(call)
        events.close()
        assert isinstance(event, Reply)
        call.usage = call.api.reply_usage(call, event.body, event.usage)
        self.report(call, ok=True)
        return event.body

    async def open_stream(self, call: Call) -> Stream:
        """Run a streaming call until its first chunk; the rest is read from the `Stream`."""
        event, events, scope = await self.first_event(call)
        return Stream(self, call, event, events, scope, self.deadline(call))

    def deadline(self, call: Call) -> float:
        return call.started_at + self.timeout_s(call)

    def timeout_s(self, call: Call) -> float:
        """The whole request's time: the router's, or less if the request asks (never more)."""
        asked = call.overrides.timeout_s
        return self.config.timeout_s if asked is None else min(asked, self.config.timeout_s)

    async def first_event(
        self, call: Call
    ) -> tuple[DeploymentEvent, trio.MemoryReceiveChannel[DeploymentEvent], trio.CancelScope]:
        """Route, dispatch, retry and fall back until an attempt yields its first event."""
        if isinstance(call.body, dict) and not call.body.keys().isdisjoint(GATEWAY_FIELDS):
            take_options(call)  # a pre-call hook put some in: they are ours, not the upstream's
        deadline = self.deadline(call)
        # An unknown model has no group: it is never echoed as one (headers, records, metrics);
        # the router answers it with a 404.
        call.model_group = self.router.resolve(call.model)
        group = call.model_group or call.model
        input_tokens = estimate_tokens(call.body) if self.counts_tokens else 0
        overrides = call.overrides
        fallbacks = self.config.fallbacks.get(group, [])
        if overrides.fallbacks is not None:  # the request's own replace the router's
            fallbacks = self._requested_groups(call, overrides.fallbacks, "fallbacks")
        window_fallbacks = None
        if overrides.context_window_fallbacks is not None:
            window_fallbacks = self._requested_groups(call, overrides.context_window_fallbacks, "context_window_fallbacks")
        candidates = [group, *fallbacks]
        last_error: GatewayError | None = None
        index = 0
        while index < len(candidates):
            group = candidates[index]
            if index:
                call.attempted_fallbacks += 1
                log.info("call %s falls back to %s", call.call_id, group)
            try:
                if index == 0 and overrides.mock_failure is not None:
                    raise mocked.failure(overrides.mock_failure, group)
                return await self._try_group(call, group, input_tokens, deadline)
            except GatewayError as error:
                last_error = error
                if is_context_window_error(error):
                    if index == 0 and window_fallbacks is not None:
                        wider = window_fallbacks
                    else:
                        wider = self.config.context_window_fallbacks.get(group, [])
                    extra = [g for g in wider if g not in candidates]
                    candidates[index + 1:index + 1] = extra
                elif not (is_retryable(error) or isinstance(error, NoDeployment)):
                    raise
            index += 1
        assert last_error is not None
        raise last_error

    def _requested_groups(self, call: Call, names: tuple[str, ...], field: str) -> list[str]:
        """The model groups a request's fallbacks name, after its key's aliases; refused with a
        403 where the key may not use one (a fallback is no way around `models`), a 400 where
        one is not served here."""
        tenant = call.tenant
        groups = []
        for name in names:
            group = name
            if tenant is not None:
                if not allows_model(tenant, name):
                    raise Forbidden(f"'{field}' names model {name!r}, which key {tenant.key.key_name} may not use",
                                    param=field, code="key_model_access_denied")
                group = tenant.key.aliases.get(name, name)
            if self.router.resolve(group) is None:
                raise BadRequest(f"'{field}' names model {name!r}, which is not served here", param=field)
            groups.append(group)
        return groups

    async def _try_group(
        self, call: Call, group: str, input_tokens: int, deadline: float
    ) -> tuple[DeploymentEvent, trio.MemoryReceiveChannel[DeploymentEvent], trio.CancelScope]:
        tried: set[str] = set()
        attempt = 0
        while True:
            deployment = await self.router.pick(group, frozenset(tried), input_tokens, call.pinned_deployment)
            tried.add(deployment.id)
            call.deployment = deployment
            try:
                return await self._attempt(call, deployment, deadline)
            except Exception as raised:
                # Anything but a GatewayError raised here is a fault of ours (a guardrail, the
                # body): an internal error, and the router still hears the attempt has ended.
                error = raised if isinstance(raised, GatewayError) else internal_error(raised, deployment)
                self.report(call, ok=False, counts_as_failure=is_retryable(error), error=error)
                retries = call.overrides.num_retries
                if retries is None:
                    retries = deployment.num_retries if deployment.num_retries is not None else self.config.num_retries
                if attempt >= retries or not is_retryable(error):
                    if error is raised:
                        raise
                    raise error from raised
                await self._back_off(call, attempt + 1, error, deadline)
                attempt += 1
                call.attempted_retries += 1

    async def _back_off(self, call: Call, attempt: int, error: GatewayError, deadline: float) -> None:
        if error.retry_after is not None:
            delay = error.retry_after
        else:
            delay = self.config.retry_backoff_s * 2 ** (attempt - 1) * self.rng.uniform(0.5, 1.5)
        if trio.current_time() + delay >= deadline:
            raise error  # waiting would outlive the request: tell the client now
        call.upstream_wait_s += delay
        async with turns.off_turn():
            await trio.sleep(delay)

    async def _attempt(
        self, call: Call, deployment: Deployment, deadline: float
    ) -> tuple[DeploymentEvent, trio.MemoryReceiveChannel[DeploymentEvent], trio.CancelScope]:
        reply, events = trio.open_memory_channel[DeploymentEvent](CHUNK_BUFFER)
        # The upstream call ends at the request's deadline wherever it is; a stream's reader
        # then sees the channel close (one deadline per call, not one per chunk read).
        scope = trio.CancelScope(deadline=deadline)
        if call.stream:
            wait = deployment.stream_timeout_s or self.config.stream_timeout_s
            if call.overrides.stream_timeout_s is not None:
                wait = min(wait, call.overrides.stream_timeout_s)
        else:
            wait = deployment.timeout_s or self.config.timeout_s
        mock_text = call.overrides.mock_response
        dispatched_at = trio.current_time()
        try:
            if self.guardrails:
                # The chosen deployment's guardrails join here, after routing, for every route.
                # Masking makes a new body: the one an earlier attempt handed over stays as sent.
                call.body = await self.guardrails.check_body(call, "pre_call", call.body, response=False)
            during = bool(self.guardrails) and self.guardrails.checks_during(call)
            model = deployment.upstream_model(call.model)
            # Refused here, before anything is sent, when the provider cannot honour a parameter.
            body, client_headers = fit_to_provider(call, deployment, self.config.drop_params)
            self.callbacks.pre_api_call(call)
            traceparent = open_attempt(call, deployment) if call.trace is not None else None
            # `wait` is the upstream's, counted by the deployment actor from the moment it sends; here,
            # queued for a slot or not, only the whole request's deadline applies.
            dispatch = Dispatch(
                call.api.adapter_method, body, model, call.stream, reply, scope, wait, client_headers=client_headers,
                traceparent=traceparent,
            )
            # The dispatch seam: the call waits on the upstream off its turn, and takes it again
            # to turn the answer into the client's response.
            async with turns.off_turn():
                if mock_text is None:
                    await self.deployment_actors[deployment.id].dispatch(dispatch)
                else:  # answered here, without the upstream; the record says so
                    call.metadata["mock_response"] = True
                    await mocked.answer(dispatch, mock_text)
                with trio.move_on_at(deadline) as waiting:
                    if during:
                        event = await self._first_event_guarded(call, events)
                    else:
                        event = await _receive_first(events)
            if waiting.cancelled_caught:
                raise self._out_of_time(call, deployment, sent=dispatch.sent.is_set())
            if isinstance(event, Failure):
                raise event.error
        except BaseException:
            scope.cancel()
            events.close()
            raise
        finally:
            now = trio.current_time()
            call.upstream_wait_s += now - dispatched_at
            call.first_chunk_at = now
        return event, events, scope

    def _out_of_time(self, call: Call, deployment: Deployment, *, sent: bool) -> GatewayError:
        """The request's deadline passed before the attempt's first event.

        Sent, it is the upstream's timeout.  Still queued for one of the deployment's
        `max_parallel_requests` slots, the upstream never saw it: a 429 that says nothing of
        the deployment's health.
        """
        if sent:
            what = "first chunk" if call.stream else "answer"
            return UpstreamTimeout(f"no {what} from the upstream within the request's deadline ({self.timeout_s(call):g} s)")
        return DeploymentBusy(
            f"no free slot on deployment {deployment.id} of {deployment.group!r} (max_parallel_requests = "
            f"{deployment.max_parallel_requests}) within the request's deadline ({self.timeout_s(call):g} s)",
            retry_after=BUSY_RETRY_AFTER_S,
        )

    async def _first_event_guarded(
        self, call: Call, events: trio.MemoryReceiveChannel[DeploymentEvent]
    ) -> DeploymentEvent:
        """Wait for the first event while during-call guardrails and moderation hooks check the
        request.

        Nothing reaches the client before they pass; a block cancels the upstream call.  They
        check, they do not mask: the request is already on its way upstream (the deployment's
        task holds the body), so what they would mask is dropped, and `call.body` stays the body
        the upstream received.
        """
        outcome: dict[str, Any] = {}

        async def check(cancel: trio.CancelScope) -> None:
            try:
                await self.guardrails.check_during(call)
            except GatewayError as error:
                outcome["blocked"] = error
                cancel.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(check, nursery.cancel_scope)
            try:
                outcome["event"] = await events.receive()
            except trio.EndOfChannel:
                outcome["event"] = Failure(_ended_without_answer())
        if "blocked" in outcome:
            raise outcome["blocked"]
        return outcome["event"]

    async def probe(self, deployment: Deployment, adapter_method: str, body: dict[str, Any], timeout_s: float) -> None:
        """One bare request to one deployment (for /health): no routing, retries, hooks or records."""
        reply, events = trio.open_memory_channel[DeploymentEvent](CHUNK_BUFFER)
        scope = trio.CancelScope()
        try:
            model = deployment.upstream_model(deployment.group)
            dispatch = Dispatch(adapter_method, body, model, False, reply, scope, timeout_s)
            async with turns.off_turn():
                await self.deployment_actors[deployment.id].dispatch(dispatch)
                with trio.move_on_after(timeout_s) as waiting:
                    event = await _receive_first(events)
            if waiting.cancelled_caught:
                if not dispatch.sent.is_set():  # busy is not down
                    raise DeploymentBusy(f"every slot stayed busy for {timeout_s:g} s")
                raise UpstreamTimeout(f"no answer within {timeout_s:g} s")
            if isinstance(event, Failure):
                raise event.error
        finally:
            scope.cancel()
            events.close()

    def report(
        self, call: Call, *, ok: bool, counts_as_failure: bool = True, error: BaseException | None = None
    ) -> None:
        deployment = call.deployment
        if deployment is None:
            return
        if call.trace is not None:  # every attempt's end passes here: its span ends with it
            close_attempt(call, ok, error)
        tokens = reported_tokens(call.usage, "total_tokens") or 0
        latency = (call.first_chunk_at or trio.current_time()) - call.started_at
        rate_limited = isinstance(error, GatewayError) and error.status == 429
        self.router.report(Outcome(deployment.id, ok, latency, tokens, counts_as_failure, rate_limited))


async def _receive_first(events: trio.MemoryReceiveChannel[DeploymentEvent]) -> DeploymentEvent:
    try:
        return await events.receive()
    except trio.EndOfChannel:
        raise _ended_without_answer() from None


def _ended_without_answer() -> InternalError:
    # A deployment actor's task answers every attempt it runs, failures included; it ends silent only
    # when the gateway stops it, which is no fault of the upstream's.
    return InternalError("the deployment's actor ended the call without an answer")
