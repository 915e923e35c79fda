"""Calls made by hand, for unit tests that drive one stage without a route: the one place
that knows how a chat `Call` is built, so a change to `Call` is made here once."""

from __future__ import annotations

from typing import Any

from gateway_trio.apis.chat import CHAT
from gateway_trio.calls import Call


def chat_call(text: str = "hi", *, stream: bool = False, **fields: Any) -> Call:
    """A /v1/chat/completions call for model `m` with one user message (needs a trio run: clock)."""
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}
    return Call(CHAT, "m", body, stream=stream, **fields)
