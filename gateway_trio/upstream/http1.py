"""HTTP/1.1 for the client side, by hand: a request's bytes out, a response's head and body in.

The relay's upstream hop is the hottest code in the gateway: every chunk of every stream comes
through it.  h11 runs each event through a general state machine with validation on both
sides of the conversation; this reads what an upstream sends with a few `find`s and slices,
and decodes all of a chunked body that has arrived in one go (one piece per socket read, not
one per chunk).  It is checked against h11 on randomly split input (`tests/test_http1.py`).

Framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; chunked when it is the last
transfer coding; else Content-Length (repeated values must agree); else until the close.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
MAX_LINE_BYTES = 8 * 1024  # a chunk-size line or a trailer line
_HEX = frozenset(b"0123456789abcdefABCDEF")
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class ProtocolError(Exception):
    """The upstream's bytes are not HTTP/1.1 we can trust."""


@dataclass(slots=True)
class Head:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]  # names lower-cased, values without surrounding blanks
    reusable: bool  # HTTP/1.1 without `Connection: close`


def encode_request(method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """The request's bytes: the head as given (framing headers replaced by the body's length)."""
    lines = [b"%s %s HTTP/1.1" % (method.encode("ascii"), target)]
    for name, value in headers:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding", b"connection", b"keep-alive"):
            continue
        if not _is_token(name) or b"\r" in value or b"\n" in value or b"\0" in value:
            raise ValueError(f"header {name!r} cannot be sent")
        lines.append(name + b": " + value)
    if body or method not in ("GET", "HEAD"):
        lines.append(b"content-length: %d" % len(body))
    if b" " in target or b"\r" in target or b"\n" in target:
        raise ValueError("the request target cannot be sent")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def parse_head(buffer: bytearray, searched: int = 0) -> Head | None:
    """Take a whole response head off the front of `buffer`; None until it has all arrived.

    `searched` is how much of `buffer` an earlier call already found no blank line in (its
    length then): a head dripped a byte per read is then searched once, not once per read.
    """
    start = max(0, searched - 3)
    end, skip = buffer.find(b"\r\n\r\n", start), 4
    # A bare LF as line end is allowed (RFC 9112 §2.2); only an earlier blank line counts.
    bare = buffer.find(b"\n\n", start, end if end >= 0 else len(buffer))
    if bare >= 0:
        end, skip = bare, 2
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise ProtocolError("the response head is too large")
        return None
    if end > MAX_HEAD_BYTES:
        raise ProtocolError("the response head is too large")
    lines = bytes(buffer[:end]).split(b"\n")
    del buffer[:end + skip]
    version, _, rest = lines[0].rstrip(b"\r").partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise ProtocolError("the response does not start with an HTTP/1.x status line")
    headers = []
    for line in lines[1:]:
        line = line.rstrip(b"\r")
        name, colon, value = line.partition(b":")
        if not colon or not _is_token(name):
            raise ProtocolError("a response header line is malformed")
        headers.append((name.lower(), value.strip(b" \t")))
    reusable = version == b"HTTP/1.1" and not any(
        name == b"connection" and b"close" in value.lower() for name, value in headers
    )
    return Head(int(code), reason, headers, reusable)


def body_length(method: str, head: Head) -> int | None:
    """Bytes of body to read: a count, CHUNKED, or UNTIL_CLOSE."""
    if method == "HEAD" or head.status < 200 or head.status in (204, 304):
        return 0
    codings = [c.strip().lower() for n, v in head.headers if n == b"transfer-encoding" for c in v.split(b",")]
    if codings:
        if codings[-1] == b"chunked":
            return CHUNKED
        return UNTIL_CLOSE
    lengths = {v.strip() for n, value in head.headers if n == b"content-length" for v in value.split(b",")}
    if not lengths:
        return UNTIL_CLOSE
    if len(lengths) != 1 or not next(iter(lengths)).isdigit():
        raise ProtocolError("the response's Content-Length is not one number")
    return int(next(iter(lengths)))


CHUNKED = -1
UNTIL_CLOSE = -2

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """Decodes a chunked body incrementally: `decode` takes what it can off the buffer."""

    __slots__ = ("state", "remaining", "trailer_bytes")

    def __init__(self) -> None:
        self.state = _SIZE
        self.remaining = 0
        # Trailers are a header block like the head, and bounded like it: each line is short,
        # but an upstream could send them without end.
        self.trailer_bytes = 0

    @property
    def done(self) -> bool:
        return self.state == _DONE

    def decode(self, buffer: bytearray) -> bytes:
        """The body bytes in `buffer` (consumed), as far as they go; b"" if none yet."""
        pieces = []
        pos, size = 0, len(buffer)
        state, remaining = self.state, self.remaining
        while True:
            if state == _DATA:
                take = min(remaining, size - pos)
                if not take:
                    break
                pieces.append(buffer[pos:pos + take])
                pos += take
                remaining -= take
                if remaining:
                    break
                state = _DATA_END
            elif state == _DATA_END:
                if size - pos < 2:
                    if size - pos == 1 and buffer[pos] != 13:
                        raise ProtocolError("a chunk is longer than its size")
                    break
                if buffer[pos:pos + 2] != b"\r\n":
                    raise ProtocolError("a chunk is longer than its size")
                pos += 2
                state = _SIZE
            elif state == _SIZE or state == _TRAILER:
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    if size - pos > MAX_LINE_BYTES:
                        raise ProtocolError("a chunk-size or trailer line is too long")
                    break
                line = buffer[pos:end]
                pos = end + 2
                if state == _TRAILER:
                    if not line:
                        state = _DONE
                        break
                    self.trailer_bytes += len(line) + 2
                    if self.trailer_bytes > MAX_HEAD_BYTES:
                        raise ProtocolError("the chunked body's trailers are too large")
                    continue
                remaining = _chunk_size(line)
                state = _DATA if remaining else _TRAILER
            else:
                break
        self.state, self.remaining = state, remaining
        del buffer[:pos]
        return b"".join(pieces)


def _chunk_size(line: bytearray) -> int:
    digits = bytes(line).split(b";", 1)[0].strip(b" \t")
    if not digits or len(digits) > 16 or not _HEX.issuperset(digits):
        raise ProtocolError("a chunk size is not a hex number")
    return int(digits, 16)


def _is_token(name: bytes) -> bool:
    return bool(name) and _TOKEN.issuperset(name)
