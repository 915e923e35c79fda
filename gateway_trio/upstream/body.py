"""Reading an upstream's reply body: never compressed, never larger than the configured cap.

The gateway asks every upstream for `Accept-Encoding: identity` and refuses any other content
coding instead of decoding it.  Refusing is the simplest safe policy: a 1 MB gzip body inflates
to 1 GiB, and inflating it took 2 GB of memory and stalled the event loop for seconds; a
decoder would need its own cap and a thread to run in, to save bytes on replies whose time is
spent generating text, not sending it.  An upstream (or a proxy in front of it) that compresses
anyway is misbehaving, and says so in a 502.

A whole reply is read raw from the transport's stream (skipping httpx's decoders), counted as
it arrives, and refused once it passes `router.max_response_mb`; a declared Content-Length
over the cap is refused before a byte of the body is read.  An error reply is read only as far
as its message needs: its status decides the outcome, and a compressed or huge error body is
dropped unread rather than turning a 429 into a 502.

These refusals are the upstream's fault, so they are `UpstreamError`s like a malformed reply:
retried elsewhere in the group and counted against the deployment's health.
"""

from __future__ import annotations

from typing import AsyncIterator

import httpx

from gateway_trio.config import RouterConfig
from gateway_trio.errors import UpstreamError

CAP_SETTING = "router.max_response_mb"
DEFAULT_MAX_RESPONSE_BYTES = RouterConfig().max_response_bytes
ACCEPT_IDENTITY = (b"Accept-Encoding", b"identity")
# An error body is read for its message, which is short; past this it is not worth reading.
ERROR_BODY_BYTES = 1 << 20


def megabytes(size: int) -> str:
    """A byte cap as the operator wrote it: `64 MB`, `0.05 MB`."""
    return f"{size / (1 << 20):.3g} MB"


async def read_reply(response: httpx.Response, max_bytes: int) -> bytes:
    """The reply's whole body as sent; for an error reply, as much of it as is worth reading."""
    if response.status_code >= 400:
        if _compressed(response):
            return b""
        return await _read_at_most(response, min(max_bytes, ERROR_BODY_BYTES)) or b""
    refuse_compressed(response)
    body = await _read_at_most(response, max_bytes)
    if body is None:
        raise UpstreamError(f"the upstream's reply is larger than the {megabytes(max_bytes)} limit ({CAP_SETTING})")
    return body


def stream_body(response: httpx.Response) -> AsyncIterator[bytes]:
    """A streamed reply's bytes as they arrive, straight from the transport's stream."""
    refuse_compressed(response)
    return aiter(response.stream)  # type: ignore[arg-type]  # an async transport's stream


def refuse_compressed(response: httpx.Response) -> None:
    if _compressed(response):
        raise UpstreamError("the upstream sent a compressed reply we did not ask for (its Content-Encoding "
                            "is not identity)")


def _compressed(response: httpx.Response) -> bool:
    coding = response.headers.get("content-encoding")
    return bool(coding) and any(c.strip().lower() not in ("", "identity") for c in coding.split(","))


async def _read_at_most(response: httpx.Response, max_bytes: int) -> bytes | None:
    """The raw body, or None as soon as it is known to be over `max_bytes` (the rest unread)."""
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > max_bytes):
        return None
    pieces: list[bytes] = []
    size = 0
    async for piece in response.stream:  # type: ignore[union-attr]  # an async transport's stream
        size += len(piece)
        if size > max_bytes:
            return None
        pieces.append(piece)
    return b"".join(pieces)
