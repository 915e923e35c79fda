"""A streamed answer's body, and the request's cleanup that closes it if it was never read.

Between the pipeline building a streamed `Answer` and the server reading its first frame, the
request can end (the client left before the response started, a hook or the server raised):
the frames are then never iterated, so the generator's own `finally` never runs and the
upstream call would stay open.  `Frames` owns the stream until it is read; the request's task
runs `closing_unread_frames()` around everything it does, and on the way out closes the frames
it made that were never started.  No garbage collector involved: the request that opened the
upstream closes it, synchronously (safe while cancellation is under way).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_made: ContextVar[list[Frames] | None] = ContextVar("gateway_trio_frames", default=None)


class Frames:
    """An answer's SSE frames; `drop` (synchronous) ends the call if they are never read."""

    __slots__ = ("_drop", "_frames", "_started")

    def __init__(self, frames: AsyncGenerator[bytes, None], drop: Callable[[], None]) -> None:
        self._frames = frames
        self._drop = drop
        self._started = False
        made = _made.get()
        if made is not None:
            made.append(self)

    def __aiter__(self) -> Frames:
        return self

    async def __anext__(self) -> bytes:
        self._started = True  # from here the generator's own `finally` owns the cleanup
        return await self._frames.__anext__()

    async def aclose(self) -> None:
        """What the server calls when it is done with the body, read or not."""
        self.close()
        await self._frames.aclose()

    def close(self) -> None:
        """Close the upstream of frames never read; frames being read close themselves."""
        if not self._started:
            self._started = True
            self._drop()


@contextmanager
def closing_unread_frames() -> Iterator[None]:
    """Around one request: on exit, however it exits, close the frames it made but never read."""
    made: list[Frames] = []
    token = _made.set(made)
    try:
        yield
    finally:
        _made.reset(token)
        for frames in made:
            frames.close()
