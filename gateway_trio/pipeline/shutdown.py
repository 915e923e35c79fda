"""The end of a graceful shutdown, for streams: they end themselves before the server cuts them.

On SIGTERM hypercorn stops accepting, gives in-flight requests `graceful_timeout` seconds and
then cancels them.  A stream cancelled there cannot send anything more: its client would see
the body stop with neither `[DONE]` nor an error, and the call would be logged as if the client
had left.  So the gateway is told when the shutdown begins (`begin`) and ends every open stream
itself a little earlier, with an error event and a `failure` record.

Each open stream is registered here (`add`): at the shutdown its upstream call's cancel scope
gets the earlier deadline, so that a stream waiting on a silent upstream ends in time too; the
pipeline checks the same time before each batch.  No task or timer per stream.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import trio

from gateway_trio.errors import GatewayError

if TYPE_CHECKING:
    from gateway_trio.pipeline.stream import Stream

log = logging.getLogger(__name__)

MARGIN_S = 1.0  # at most this long before the server's cut; a quarter of a short graceful timeout


class ShuttingDown(GatewayError):
    status = 503
    error_type = "service_unavailable_error"
    anthropic_type = "overloaded_error"


class Shutdown:
    def __init__(self) -> None:
        self.streams_end_at = math.inf  # trio time at which open streams end themselves
        self._streams: set[Stream] = set()

    @property
    def begun(self) -> bool:
        return self.streams_end_at != math.inf

    def begin(self, graceful_timeout_s: float) -> None:
        """The server is shutting down and cuts requests after `graceful_timeout_s`."""
        margin = min(MARGIN_S, graceful_timeout_s / 4)
        self.streams_end_at = min(self.streams_end_at, trio.current_time() + graceful_timeout_s - margin)
        log.info("shutting down: %d open streams end within %.1f s", len(self._streams), graceful_timeout_s - margin)
        for stream in self._streams:
            stream.end_by(self.streams_end_at, self.error())

    def add(self, stream: Stream) -> None:
        """An open stream: its upstream call stops when the shutdown's end comes."""
        self._streams.add(stream)
        if self.begun:
            stream.end_by(self.streams_end_at, self.error())

    def discard(self, stream: Stream) -> None:
        self._streams.discard(stream)

    @staticmethod
    def error() -> ShuttingDown:
        return ShuttingDown("the gateway is shutting down", code="shutting_down")
