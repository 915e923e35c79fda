"""A streaming answer after its first chunk: payload batches in, SSE frames out.

The deployment actor's chunks arrive on a small channel; `batches` hands on whatever is already
waiting in one go (one task switch per batch, not per chunk).  When the upstream is done,
`outcome` holds the `StreamEnd` or the error that ended it; the pipeline decides the tail.
Whoever holds a `Stream` closes it (`close`): the answer's frames once read, or the request's
own cleanup if they never are (pipeline/frames.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator

import trio

from gateway_trio.calls import Call
from gateway_trio.channels.messages import Chunks, DeploymentEvent, Failure, StreamEnd
from gateway_trio.errors import GatewayError, InternalError, UpstreamError, UpstreamTimeout, is_retryable

if TYPE_CHECKING:
    from gateway_trio.pipeline.dispatch import Dispatcher

# Small on purpose: a slow client must slow the upstream read, not grow a queue.
CHUNK_BUFFER = 4


class Stream:
    def __init__(
        self,
        dispatcher: Dispatcher,
        call: Call,
        first: DeploymentEvent,
        events: trio.MemoryReceiveChannel[DeploymentEvent],
        scope: trio.CancelScope,
        deadline: float,
    ) -> None:
        self.dispatcher = dispatcher
        self.call = call
        self.first: DeploymentEvent | None = first
        self.events = events
        self.scope = scope
        self.deadline = deadline
        self.outcome: StreamEnd | GatewayError | None = None
        self.relayed = 0  # chunks handed on: the usage estimate when a stream is cut short
        self.awaiting_upstream = False  # waiting for the upstream's next event (not for us)
        self.ends_early: GatewayError | None = None  # the error it ends with at `end_by`

    def close(self) -> None:
        """Stop the upstream call. Synchronous: safe in a `finally` during cancellation."""
        self.scope.cancel()
        self.events.close()
        if self.outcome is None:
            self.outcome = UpstreamError("the client went away")
            self.dispatcher.report(self.call, ok=False, counts_as_failure=False)

    async def batches(self) -> AsyncIterator[list[bytes]]:
        """Chunk payloads (JSON bytes) in arrival order, batched; ends when `outcome` is set."""
        event = self.first
        self.first = None
        while event is not None:
            payloads = self._collect(event)
            if payloads:
                self.relayed += len(payloads)
                yield payloads
            event = None if self.outcome is not None else await self._next()

    def _collect(self, event: DeploymentEvent) -> list[bytes]:
        payloads: list[bytes] = []
        while True:
            if isinstance(event, Chunks):
                payloads.extend(event.payloads)
            elif isinstance(event, StreamEnd):
                self.call.usage = event.usage
                self.outcome = event
                self.dispatcher.report(self.call, ok=True)
                return payloads
            elif isinstance(event, Failure):
                self.outcome = event.error
                self.dispatcher.report(
                    self.call, ok=False, counts_as_failure=is_retryable(event.error), error=event.error
                )
                return payloads
            try:
                event = self.events.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return payloads

    async def _next(self) -> DeploymentEvent:
        self.awaiting_upstream = True  # left set if cancelled here: `cut` then blames the upstream
        try:
            event = await self.events.receive()
        except trio.EndOfChannel:
            if trio.current_time() >= self.deadline:  # the upstream call's scope ran out
                event = Failure(UpstreamTimeout("the request deadline passed during the stream"))
            elif self.ends_early is not None and trio.current_time() >= self.scope.deadline:
                event = Failure(self.ends_early)  # ended by `end_by`, not by the upstream
            else:
                # The deployment actor tells every failure of the upstream's as a Failure; a channel closed
                # without one means the gateway stopped the call, not the upstream.
                event = Failure(InternalError("the deployment's actor ended the stream without finishing it"))
        self.awaiting_upstream = False
        return event

    def cut(self, error: GatewayError, *, blame_upstream: bool) -> None:
        """The gateway ends the stream before the upstream did (its deadline, a shutdown).

        The deployment is blamed only if `blame_upstream` and it was the one being waited
        for: time spent in our hooks or on a slow client is not its failure.
        """
        if self.outcome is None:
            self.outcome = error
            blamed = blame_upstream and self.awaiting_upstream and is_retryable(error)
            self.dispatcher.report(self.call, ok=False, counts_as_failure=blamed, error=error)
        self.close()

    def end_by(self, when: float, error: GatewayError) -> None:
        """Stop the upstream call at `when` (a shutdown): the stream then fails with `error`."""
        self.ends_early = error
        self.scope.deadline = min(self.scope.deadline, when)

    def tail(self) -> bytes:
        """The last frames: usage (if the client asked) and the end mark, or an error event."""
        outcome = self.outcome
        wire = self.call.wire
        if isinstance(outcome, StreamEnd):
            if self.call.include_usage and outcome.usage_chunk is not None:
                return wire.frames([outcome.usage_chunk]) + wire.done
            return wire.done
        assert outcome is not None
        return wire.error_frame(outcome)
