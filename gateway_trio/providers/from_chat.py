"""What the decoders that retell a chat stream in another wire format share.

They wrap the provider's own chat decoder, so errors, usage and the end of the stream are seen
exactly as on a chat call.  A subclass turns each chat chunk into its own events (`_push`) and
closes its format in `_end`, once the chat stream is done.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_trio.providers.base import Decoder, StreamDecoder


class FromChatStream(Decoder):
    def __init__(self, chat: StreamDecoder, model: str) -> None:
        self._chat = chat
        self._model = model
        self.usage_chunk: bytes | None = None  # chat's usage chunk means nothing to this client
        self.done = False
        self._events: list[bytes] = []

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._chat.usage

    def feed_into(self, data: bytes, out: list[bytes]) -> None:
        chunks: list[bytes] = []
        try:
            self._chat.feed_into(data, chunks)
        finally:  # the chunks ahead of a fault are translated and passed on all the same
            for payload in chunks:
                self._translate(orjson.loads(payload))
            if self._chat.done and not self.done:
                self._end()
                self.done = True
            out.extend(self._events)
            self._events.clear()

    def _push(self, event: dict[str, Any]) -> None:
        self._events.append(orjson.dumps(event))

    def _translate(self, chunk: dict[str, Any]) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError
