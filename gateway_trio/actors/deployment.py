"""A deployment actor: one per deployment, owning its HTTP client and its concurrency bound.

Each `Dispatch` becomes a task in the actor's nursery, so one slow upstream never holds the
inbox.  The task runs inside the cancel scope the caller handed over: cancelling it (client
gone, deadline, another attempt) closes the upstream connection at once.  Answers go back on
the dispatch's own reply channel, which is small: a slow client slows the upstream read.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from typing import Any, AsyncIterator

import httpx
import trio

from gateway_trio.adapters import adapter_for
from gateway_trio.adapters.base import NO_TOKENS, UNCOUNTED, UpstreamRequest, with_client_headers
from gateway_trio.adapters.depth import MAX_JSON_DEPTH, too_deep
from gateway_trio.adapters.usage import UsageCheck, chat_usage
from gateway_trio.channels.messages import Chunks, DeploymentEvent, Dispatch, Failure, Reply, StreamEnd
from gateway_trio.deployment import Deployment
from gateway_trio.errors import (
    GatewayError,
    InternalError,
    UpstreamError,
    UpstreamTimeout,
    clamp_retry_after,
    is_retryable,
)
from gateway_trio.runtime.handoff import hand_over
from gateway_trio.upstream.body import ACCEPT_IDENTITY, DEFAULT_MAX_RESPONSE_BYTES, read_reply, stream_body
from gateway_trio.upstream.redaction import Redactor, credential_values
from gateway_trio.upstream.transport import make_transport

log = logging.getLogger(__name__)

INBOX_SIZE = 256
CONNECT_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 0.5
URL_CACHE_SIZE = 256
USER_AGENT = b"gateway-trio"
_SET_HERE = frozenset({"host", "content-length", "transfer-encoding", "accept-encoding"})


class DeploymentActor:
    def __init__(
        self, deployment: Deployment, *, transport: httpx.AsyncBaseTransport | None = None,
        redactor: Redactor | None = None, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.deployment = deployment
        self.max_response_bytes = max_response_bytes
        # Every error this actor sends back passes here: what the upstream said never carries a
        # configured secret (by default, this deployment's own) on to clients, records or logs.
        if redactor is None:
            redactor = Redactor({deployment.api_key or "", *credential_values(deployment.headers)})
        self.redactor = redactor
        self.adapter = adapter_for(deployment.provider, responses_api=deployment.info.responses_api)
        limit = deployment.max_parallel_requests
        self.transport = transport or self.adapter.local_transport(deployment) or make_transport(limit)
        # The client owns the transport's lifetime and the timeouts; requests go straight to the
        # transport, skipping the client's per-request auth, redirect and cookie layers (a
        # gateway must not carry one caller's upstream cookies into another's call anyway).
        self.client = httpx.AsyncClient(
            transport=self.transport,
            timeout=httpx.Timeout(CONNECT_TIMEOUT_S, read=None, write=WRITE_TIMEOUT_S, pool=None),
        )
        self.slots = trio.Semaphore(limit)
        # Usage is checked here, where it enters the gateway, whatever the adapter and route.
        self.check_usage = UsageCheck(deployment.id)
        # Built once: `AsyncClient.build_request` re-parses and re-merges these on every call.
        self._timeouts = {"timeout": self.client.timeout.as_dict()}
        self._urls: dict[str, tuple[httpx.URL, bytes]] = {}
        self._inbox_send, self._inbox = trio.open_memory_channel[Dispatch](INBOX_SIZE)
        # A `traceparent` the operator configured for the deployment is never replaced by ours.
        self._sends_traceparent = not any(name.lower() == "traceparent" for name in deployment.headers)

    async def dispatch(self, message: Dispatch) -> None:
        """Queue an attempt (the caller waits off its turn: see `Dispatcher._attempt`)."""
        await hand_over(self._inbox_send, message)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.client, trio.open_nursery() as nursery:
            task_status.started()
            async for message in self._inbox:
                nursery.start_soon(self._attempt, message)

    async def _attempt(self, message: Dispatch) -> None:
        """Run one attempt and answer on its channel whatever happens; `blame` decides how a
        failure is told.

        The first-event clock (`first_event_within`) starts once a slot is ours and the request
        goes out: time spent queued behind `max_parallel_requests` is the caller's to bound
        under its whole-request deadline, never a timeout of the upstream.
        """
        with message.cancel_scope, message.reply:
            try:
                spec = self.adapter.request(
                    message.adapter_method, self.deployment, message.body, message.model, message.stream
                )
                if spec.local_answer is not None:  # answered by the adapter: no slot, no upstream
                    body = self.adapter.response(message.adapter_method, spec.local_answer, message.model)
                    await hand_over(message.reply, Reply(body, self._usage(message.adapter_method, body)))
                    return
                traceparent = message.traceparent if self._sends_traceparent else None
                request = self._request(spec, message.client_headers, traceparent)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the caller stopped listening
            except Exception as error:  # before the slot: what cannot be sent need not queue
                await _send_quietly(message, Failure(self.redactor.error(unsendable(error, self.deployment))))
                return
            try:
                async with self.slots:
                    message.sent.set()
                    clock = trio.CancelScope(deadline=trio.current_time() + message.first_event_within)
                    with clock:
                        if message.stream:
                            await self._stream(message, request, clock)
                        else:
                            await self._complete(message, request)
                    if clock.cancelled_caught:
                        what = "first chunk" if message.stream else "answer"
                        raise UpstreamTimeout(f"no {what} from the upstream within {message.first_event_within:g} s")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the caller stopped listening: nothing left to do
            except Exception as error:
                await _send_quietly(message, Failure(self.redactor.error(blame(error, self.deployment))))

    async def _complete(self, message: Dispatch, request: httpx.Request) -> None:
        response = await self.transport.handle_async_request(request)
        try:
            payload = await read_reply(response, self.max_response_bytes)
        finally:
            await _aclose_now(response)  # a no-op once read to the end
        if response.status_code >= 400:
            raise self._error(response, payload)
        body = self.adapter.response(
            message.adapter_method, payload, message.model, response.headers.get("content-type", "application/json")
        )
        if isinstance(body, dict) and too_deep(body):  # it could not be encoded for the client
            raise UpstreamError(f"malformed upstream reply: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        await hand_over(message.reply, Reply(body, self._usage(message.adapter_method, body)))

    def _usage(self, method: str, body: Any) -> dict[str, Any] | None:
        if method in UNCOUNTED:
            return dict(NO_TOKENS)
        return self.check_usage(chat_usage(body.get("usage"))) if isinstance(body, dict) else None

    async def _stream(self, message: Dispatch, request: httpx.Request, clock: trio.CancelScope) -> None:
        """Relay a stream; `clock` (the first-event deadline) stops once the first chunk is out."""
        response = await self.transport.handle_async_request(request)
        try:
            if response.status_code >= 400:
                raise self._error(response, await read_reply(response, self.max_response_bytes))
            decoder = self.adapter.stream(message.adapter_method, message.model, max_event_bytes=self.max_response_bytes)
            body = stream_body(response)
            async for raw in body:
                payloads: list[bytes] = []
                try:
                    decoder.feed_into(raw, payloads)
                finally:  # on a fault, what came before it in this read still goes out first
                    if payloads:
                        _disarm(clock)
                        await hand_over(message.reply, Chunks(payloads))
                if decoder.done:
                    break
            _disarm(clock)  # the end (or the fault) below is the answer, in time
            if not decoder.done and not getattr(decoder, "ends_at_eof", False):
                raise UpstreamError("upstream stream ended before it was complete")
            usage = self.check_usage(decoder.usage)
            await hand_over(message.reply, StreamEnd(usage, getattr(decoder, "usage_chunk", None)))
            await _finish_reading(body)
        finally:
            await _aclose_now(response)

    def _request(
        self, spec: UpstreamRequest, client_headers: dict[str, str], traceparent: str | None = None
    ) -> httpx.Request:
        if client_headers:
            spec.headers = with_client_headers(spec.headers, client_headers)
        known = self._urls.get(spec.url)
        if known is None:
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()  # pass-through query strings vary: keep the cache bounded
            url = httpx.URL(spec.url)
            known = self._urls[spec.url] = (url, url.netloc)
        url, host = known
        # Host and Content-Length given up front: httpx would otherwise look each one up,
        # miss (an exception apiece) and insert it, on every call.
        headers = [(b"Host", host), (b"Content-Length", b"%d" % len(spec.content))]
        agent = USER_AGENT
        for name, value in spec.headers.items():
            lowered = name.lower()
            if lowered == "user-agent":
                agent = value.encode("latin-1")
            elif lowered == "traceparent" and traceparent is not None:
                continue  # a forwarded client's: the attempt's own, below, continues its trace
            elif lowered not in _SET_HERE:
                headers.append((name.encode("latin-1"), value.encode("latin-1")))
        if traceparent is not None:
            headers.append((b"traceparent", traceparent.encode("latin-1")))
        headers.append((b"User-Agent", agent))
        headers.append(ACCEPT_IDENTITY)  # a compressed reply is refused (see upstream_body)
        return httpx.Request(spec.method, url, headers=headers, content=spec.content, extensions=self._timeouts)

    def _error(self, response: httpx.Response, payload: bytes) -> UpstreamError:
        status = response.status_code
        return UpstreamError(
            self.adapter.error_message(status, payload),
            upstream_status=status,
            retry_after=_retry_after(response.headers.get("retry-after")),
        )


async def _finish_reading(body: AsyncIterator[bytes]) -> None:
    """Read what follows the end-of-stream event (the chunked body's terminator), briefly, so
    the connection goes back to the pool instead of being closed and opened again."""
    with trio.move_on_after(DRAIN_TIMEOUT_S):
        async for _ in body:
            pass


async def _aclose_now(response: httpx.Response) -> None:
    """Close the upstream response even when our scope is already cancelled."""
    with trio.CancelScope(shield=True):
        with trio.move_on_after(1.0):
            await response.aclose()


async def _send_quietly(message: Dispatch, event: DeploymentEvent) -> None:
    try:
        await message.reply.send(event)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


def _transport_failure(error: httpx.TransportError) -> UpstreamError:
    if isinstance(error, httpx.ConnectError):
        return UpstreamError("could not connect to the upstream")
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError)):
        return UpstreamError("the upstream connection dropped")
    return UpstreamError(f"upstream transport error ({type(error).__name__})")


def _disarm(clock: trio.CancelScope) -> None:
    """Stop the first-event clock; once, as moving a deadline costs more than reading it."""
    if clock.deadline != math.inf:
        clock.deadline = math.inf


def blame(error: Exception, deployment: Deployment) -> GatewayError:
    """The error an attempt that raised `error` reports; its type says whose fault it was.

    The upstream is blamed (a retryable `UpstreamError` or `UpstreamTimeout`, which counts
    towards `allowed_fails` and cooldowns) only for what it did: a connection, write or read
    that failed or timed out, an error status (see `_error`), a reply an adapter found malformed
    (adapters raise `UpstreamError` for bad JSON or a missing field themselves).  Everything
    else raised here comes from our side of the wire: building or encoding the request (nothing
    was sent), translating a reply, a bug.  That is an `InternalError`: not retried, not fallen
    back from, never counted.  In doubt the deployment is not blamed, since a cooldown for our
    own fault takes a healthy model group away from every caller.
    """
    if isinstance(error, GatewayError):
        return error
    if isinstance(error, httpx.TimeoutException):
        return UpstreamTimeout("upstream timed out")
    ours = isinstance(error, (httpx.LocalProtocolError, httpx.UnsupportedProtocol))  # a request we built wrong
    if isinstance(error, httpx.TransportError) and not ours:
        return _transport_failure(error)
    if isinstance(error, httpx.HTTPError) and not ours:  # e.g. a body that does not decode
        return UpstreamError(f"the upstream reply could not be read ({type(error).__name__})")
    return internal_error(error, deployment)


def unsendable(error: Exception, deployment: Deployment) -> GatewayError:
    """The error for a request that could not even be built: nothing was sent, so nothing is
    the upstream's fault, whatever the type.  Only a refusal of the client's request (a call
    type this provider does not serve, say) is passed on as it is."""
    if isinstance(error, GatewayError) and not is_retryable(error):
        return error
    return internal_error(error, deployment)


def internal_error(error: Exception, deployment: Deployment) -> InternalError:
    """`error`, raised on our side of a call to `deployment`, as the client is told it; the
    traceback goes to the log, never the exception's own text to the client."""
    log.error("internal error in a call to deployment %s", deployment.id, exc_info=error)
    return InternalError(
        f"internal gateway error ({type(error).__name__}) in the call to deployment {deployment.id}; "
        "the upstream is not at fault"
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), clamped to a sane
    wait: an upstream's `inf`, `nan` or `1e308` is no number to sleep on or to pass on."""
    if not value:
        return None
    try:
        return clamp_retry_after(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return clamp_retry_after(when.timestamp() - time.time())
