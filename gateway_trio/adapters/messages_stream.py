"""A chat-completions stream retold as Anthropic Messages events.

Chat streams text and tool-call deltas loosely; Messages wants numbered content blocks, each
opened and closed, so this keeps one block open at a time.  The closing `message_delta` waits
for the end of the upstream stream, because chat sends usage last, after the finish reason.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.adapters.base import StreamDecoder
from gateway_trio.adapters.from_chat import FromChatStream
from gateway_trio.adapters.messages_chat import message_id, stop_reason
from gateway_trio.adapters.usage import messages_usage_from_chat


class MessagesFromChatStream(FromChatStream):
    """`feed` takes upstream bytes and returns Messages event payloads (`type` first)."""

    def __init__(self, chat: StreamDecoder, model: str) -> None:
        super().__init__(chat, model)
        self._next_index = 0
        # ("text", -1), ("thinking", -1) or ("tool", chat tool index)
        self._open: tuple[str, int] | None = None
        self._tool_blocks: dict[int, int] = {}  # chat tool-call index -> content block index

    def _start(self, chunk: dict[str, Any]) -> None:
        self._model = chunk.get("model") or self._model
        # Chat reports usage at the very end, so the input count is usually unknown here (0);
        # message_delta repeats it with the real numbers.
        message = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**messages_usage_from_chat(self._chat.usage), "output_tokens": 0},
        }
        self._push({"type": "message_start", "message": message})

    def _text(self, text: str) -> None:
        if self._open is None or self._open[0] != "text":
            index = self._open_block(("text", -1), {"type": "text", "text": ""})
        else:
            index = self._next_index - 1
        self._push({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})

    def _reasoning(self, text: str) -> None:
        if self._open is None or self._open[0] != "thinking":
            index = self._open_block(("thinking", -1), {"type": "thinking", "thinking": "", "signature": ""})
        else:
            index = self._next_index - 1
        self._push({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": text}})

    def _tool_call(self, call: dict[str, Any]) -> None:
        tool = call.get("index", 0)
        function = call.get("function") or {}
        if tool not in self._tool_blocks:
            block = {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": {}}
            self._tool_blocks[tool] = self._open_block(("tool", tool), block)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            self._push({"type": "content_block_delta", "index": self._tool_blocks[tool], "delta": delta})

    def _open_block(self, key: tuple[str, int], block: dict[str, Any]) -> int:
        self._close_block()
        index = self._next_index
        self._next_index += 1
        self._open = key
        self._push({"type": "content_block_start", "index": index, "content_block": block})
        return index

    def _close_block(self) -> None:
        if self._open is not None:
            self._push({"type": "content_block_stop", "index": self._next_index - 1})
            self._open = None

    def _end(self) -> None:
        self._close_block()
        usage = messages_usage_from_chat(self._chat.usage)
        delta = {"stop_reason": stop_reason(self._finish), "stop_sequence": None}
        self._push({"type": "message_delta", "delta": delta, "usage": usage})
        self._push({"type": "message_stop"})
