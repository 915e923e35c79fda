"""A provider actor: one per deployment, owning its HTTP client and its concurrency bound.

Each `Dispatch` becomes a task in the actor's nursery, so one slow upstream never holds the
inbox.  The task runs inside the cancel scope the caller handed over: cancelling it (client
gone, deadline, another attempt) closes the upstream connection at once.  Answers go back on
the dispatch's own reply channel, which is small: a slow client slows the upstream read.
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import AsyncIterator

import httpx
import trio

from gateway_trio import turns
from gateway_trio.channels.messages import Chunks, Dispatch, Failure, ProviderEvent, Reply, StreamEnd
from gateway_trio.channels.plumbing import hand_over
from gateway_trio.deployment import Deployment
from gateway_trio.errors import GatewayError, UpstreamError, UpstreamTimeout, clamp_retry_after
from gateway_trio.providers import adapter_for
from gateway_trio.providers.usage import chat_usage
from gateway_trio.transport import make_transport

log = logging.getLogger(__name__)

INBOX_SIZE = 256
CONNECT_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 0.5
URL_CACHE_SIZE = 256
USER_AGENT = b"gateway-trio"
_SET_HERE = frozenset({"host", "content-length", "transfer-encoding"})


class ProviderActor:
    def __init__(self, deployment: Deployment, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.deployment = deployment
        self.adapter = adapter_for(deployment.provider)
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
        # Built once: `AsyncClient.build_request` re-parses and re-merges these on every call.
        self._timeouts = {"timeout": self.client.timeout.as_dict()}
        self._urls: dict[str, tuple[httpx.URL, bytes]] = {}
        self._inbox_send, self._inbox = trio.open_memory_channel[Dispatch](INBOX_SIZE)

    async def dispatch(self, message: Dispatch) -> None:
        turns.give_back()  # the caller now waits on the upstream
        await hand_over(self._inbox_send, message)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.client, trio.open_nursery() as nursery:
            task_status.started()
            async for message in self._inbox:
                nursery.start_soon(self._attempt, message)

    async def _attempt(self, message: Dispatch) -> None:
        with message.cancel_scope, message.reply:
            try:
                async with self.slots:
                    if message.stream:
                        await self._stream(message)
                    else:
                        await self._complete(message)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the caller stopped listening: nothing left to do
            except GatewayError as error:
                await _send_quietly(message, Failure(error))
            except httpx.TimeoutException:
                await _send_quietly(message, Failure(UpstreamTimeout("upstream timed out")))
            except httpx.TransportError as error:
                await _send_quietly(message, Failure(_transport_failure(error)))
            except Exception:
                # A reply no adapter foresaw (or a bug): this call fails, the actor lives on.
                log.exception("deployment %s: unexpected error in an upstream call", self.deployment.id)
                await _send_quietly(message, Failure(UpstreamError("the upstream reply could not be handled")))

    async def _complete(self, message: Dispatch) -> None:
        response = await self.transport.handle_async_request(self._request(message))
        try:
            payload = await response.aread()
        finally:
            await _aclose_now(response)  # a no-op once read to the end
        if response.status_code >= 400:
            raise self._error(response, payload)
        body = self.adapter.response(
            message.call_type, payload, message.model, response.headers.get("content-type", "application/json")
        )
        usage = chat_usage(body.get("usage")) if isinstance(body, dict) else None
        await hand_over(message.reply, Reply(body, usage))

    async def _stream(self, message: Dispatch) -> None:
        response = await self.transport.handle_async_request(self._request(message))
        try:
            if response.status_code >= 400:
                raise self._error(response, await response.aread())
            decoder = self.adapter.stream(message.call_type, message.model)
            body = _body_of(response)
            async for raw in body:
                payloads: list[bytes] = []
                try:
                    decoder.feed_into(raw, payloads)
                finally:  # on a fault, what came before it in this read still goes out first
                    if payloads:
                        await hand_over(message.reply, Chunks(payloads))
                if decoder.done:
                    break
            if not decoder.done and not getattr(decoder, "ends_at_eof", False):
                raise UpstreamError("upstream stream ended before it was complete")
            await hand_over(message.reply, StreamEnd(decoder.usage, getattr(decoder, "usage_chunk", None)))
            await _finish_reading(body)
        finally:
            await _aclose_now(response)

    def _request(self, message: Dispatch) -> httpx.Request:
        spec = self.adapter.request(message.call_type, self.deployment, message.body, message.model, message.stream)
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
            elif lowered not in _SET_HERE:
                headers.append((name.encode("latin-1"), value.encode("latin-1")))
        headers.append((b"User-Agent", agent))
        return httpx.Request(spec.method, url, headers=headers, content=spec.content, extensions=self._timeouts)

    def _error(self, response: httpx.Response, payload: bytes) -> UpstreamError:
        status = response.status_code
        return UpstreamError(
            self.adapter.error_message(status, payload),
            upstream_status=status,
            retry_after=_retry_after(response.headers.get("retry-after")),
        )


def _body_of(response: httpx.Response) -> AsyncIterator[bytes]:
    """The response body as it arrives: straight from the transport's stream unless it must
    be decoded (two generator layers less per chunk read)."""
    if "content-encoding" in response.headers:
        return response.aiter_bytes()
    return aiter(response.stream)  # type: ignore[arg-type]  # an async transport's stream


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


async def _send_quietly(message: Dispatch, event: ProviderEvent) -> None:
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
