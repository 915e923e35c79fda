"""What the decoders that retell a chat stream in another wire format share.

They wrap the provider's own chat decoder, so errors, usage and the end of the stream are seen
exactly as on a chat call.  The base walks each chat chunk; a subclass opens its format in
`_start` (on the first chunk, or at the end if none came), turns text and tool-call deltas into
its own events (`_push`), and closes its format in `_end`, once the chat stream is done.
A thinking model's `reasoning_content` deltas go to `_reasoning`, which formats without a
place for them leave alone.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_trio.adapters.base import Decoder, StreamDecoder


class FromChatStream(Decoder):
    def __init__(self, chat: StreamDecoder, model: str) -> None:
        self._chat = chat
        self._model = model
        self.usage_chunk: bytes | None = None  # chat's usage chunk means nothing to this client
        self.done = False
        self._events: list[bytes] = []
        self._started = False
        self._finish: Any = None  # the chat finish reason, once one came

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._chat.usage

    def limit_event_size(self, max_bytes: int) -> None:
        self._chat.limit_event_size(max_bytes)

    def feed_into(self, data: bytes, out: list[bytes]) -> None:
        chunks: list[bytes] = []
        try:
            self._chat.feed_into(data, chunks)
        finally:  # the chunks ahead of a fault are translated and passed on all the same
            for payload in chunks:
                self._translate(orjson.loads(payload))
            if self._chat.done and not self.done:
                self._begin({})
                self._end()
                self.done = True
            out.extend(self._events)
            self._events.clear()

    def _push(self, event: dict[str, Any]) -> None:
        self._events.append(orjson.dumps(event))

    def _begin(self, chunk: dict[str, Any]) -> None:
        if not self._started:
            self._started = True
            self._start(chunk)

    def _translate(self, chunk: dict[str, Any]) -> None:
        self._begin(chunk)
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # the other formats carry one answer; n > 1 was not asked for
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                self._reasoning(reasoning)
            text = delta.get("content") or delta.get("refusal")
            if isinstance(text, str) and text:
                self._text(text)
            for call in delta.get("tool_calls") or ():
                self._tool_call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    def _start(self, chunk: dict[str, Any]) -> None:
        raise NotImplementedError

    def _text(self, text: str) -> None:
        raise NotImplementedError

    def _reasoning(self, text: str) -> None:
        """A piece of the model's reasoning: dropped unless the format can show it."""

    def _tool_call(self, call: dict[str, Any]) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError
