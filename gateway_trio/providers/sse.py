"""Incremental server-sent-events parsing for upstream streams.

This runs once per socket read on every streaming call, so it works on whole events: the
buffer is split on blank lines with `bytes.split`, never walked byte by byte, and the common
single-line `data: {...}` event takes a shortcut that avoids splitting into lines at all.
"""

from __future__ import annotations

SSEEvent = tuple[bytes | None, bytes]

_DATA_PREFIX = b"data: "


class SSEParser:
    """Turns arbitrarily split stream bytes into complete `(event name, data)` pairs."""

    __slots__ = ("_buffer", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        # A read may end between the `\r` and `\n` of a CRLF; hold the `\r` back so the
        # pair is not mistaken for two line endings.
        self._pending_cr = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Every event completed by `data`, in order; a partial event waits for the next feed."""
        if self._pending_cr or b"\r" in data:
            data = self._normalise(data)
        buffer = self._buffer + data if self._buffer else data
        if b"\n\n" not in buffer:
            self._buffer = buffer
            return []
        *blocks, self._buffer = buffer.split(b"\n\n")
        events: list[SSEEvent] = []
        for block in blocks:
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def _normalise(self, data: bytes) -> bytes:
        if self._pending_cr:
            data = b"\r" + data
            self._pending_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._pending_cr = True
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _parse_block(block: bytes) -> SSEEvent | None:
    if block.startswith(_DATA_PREFIX) and b"\n" not in block:
        return None, block[len(_DATA_PREFIX):]
    name: bytes | None = None
    data_lines: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data_lines.append(value)
        elif field == b"event":
            name = value
    if not data_lines:
        # The SSE rules dispatch nothing for an event without data (e.g. a bare `event:` line).
        return None
    return name, b"\n".join(data_lines)
