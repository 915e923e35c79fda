"""A request's body comes in whole, within `server.max_request_mb` and `server.request_body_timeout_s`.

hypercorn hands a request to the app as soon as its head is in; the body follows at the
client's pace.  This middleware, the outermost, reads the whole body before anything else
runs, so that what a client may cost us is settled in one place:

- a body declared (`content-length`) larger than the limit is answered 413 at once, before a
  byte of it is read: waiting for a body we will refuse only holds the connection;
- a body that turns out larger than the limit (chunked, no length declared) is answered 413
  as soon as it passes the limit;
- a body not all in within the deadline (counted from the end of the head) is answered 408.

Each of these closes the connection (the rest of the body is never read).  The head's own
deadline is the connection's, see `serving.py`.  The app behind it gets the body replayed from
memory, so no later reader (the turns middleware, Quart) ever waits on the client.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Awaitable, Callable

import trio

from gateway_trio.errors import BadRequest, GatewayError, PayloadTooLarge

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]


def too_large(max_request_mb: float) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {max_request_mb:g} MB")


def too_slow(body_timeout_s: float) -> GatewayError:
    return BadRequest(f"the request body did not arrive within {body_timeout_s:g} s", status=408)


def reading_bodies(app: ASGIApp, *, max_request_mb: float, body_timeout_s: float) -> ASGIApp:
    """ASGI middleware: the app is called once the request's body is all in, within bounds."""
    max_bytes = int(max_request_mb * 1024 * 1024)

    async def bounded(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > max_bytes:
            await refuse(send, too_large(max_request_mb))
            return
        messages: deque[Message] = deque()
        fits = False
        with trio.move_on_after(body_timeout_s) as waiting:
            fits = await read_body(receive, messages, max_bytes)
        if waiting.cancelled_caught:
            await refuse(send, too_slow(body_timeout_s))
        elif not fits:
            await refuse(send, too_large(max_request_mb))
        else:
            await app(scope, replaying(messages, receive), send)

    return bounded


async def read_body(receive: Receive, messages: deque[Message], max_bytes: int) -> bool:
    """Collect the request's messages up to the end of its body; False once it passes `max_bytes`."""
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return True  # the client left: the app sees the disconnect as always
        size += len(message.get("body", b""))
        if size > max_bytes:
            return False
        if not message.get("more_body", False):
            return True


def declared_length(scope: Message) -> int | None:
    """The request's `content-length` (h11 has checked it is one decimal number), if any."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def replaying(messages: deque[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        return messages.popleft() if messages else await receive()

    return replay


async def refuse(send: Send, error: GatewayError) -> None:
    """Answer without reading further; `connection: close`, since the body's rest is unread."""
    body = error.openai_json()
    await send({
        "type": "http.response.start",
        "status": error.status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body})
