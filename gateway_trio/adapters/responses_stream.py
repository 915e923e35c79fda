"""A chat-completions stream retold as OpenAI Responses events (the chat chunks come from
the mock, or from Anthropic's events already turned into chunks).

Responses streams name every step: an output item is added, its content part added, text
deltas flow, then each is marked done, and the terminal event carries the whole Response with
usage; that last one waits for the end of the upstream stream, because chat sends usage after
the finish reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway_trio.adapters.base import StreamDecoder
from gateway_trio.adapters.from_chat import FromChatStream
from gateway_trio.adapters.responses_chat import (
    chat_body_from_responses,
    final_status,
    function_call_item,
    item_id,
    message_item,
    output_text_part,
    response_from_completion,
    response_id,
    response_object,
)
from gateway_trio.adapters.usage import responses_usage_from_chat


@dataclass(slots=True)
class _Item:
    """One output item being streamed; `pieces` collects its text or arguments."""

    kind: str  # "message" or "function_call"
    id: str
    index: int
    call_id: Any = None
    name: Any = None
    pieces: list[str] = field(default_factory=list)
    done: bool = False

    def final(self) -> dict[str, Any]:
        status = "completed" if self.done else "in_progress"
        if self.kind == "message":
            return message_item(self.id, "".join(self.pieces), status)
        return function_call_item(self.id, self.call_id, self.name, "".join(self.pieces), status)


class ResponsesFromChatStream(FromChatStream):
    """`feed` takes upstream bytes and returns Responses event payloads (`type` first)."""

    def __init__(self, chat: StreamDecoder, model: str) -> None:
        super().__init__(chat, model)
        self._id: str | None = None
        self._created = int(time.time())
        self._sequence = 0
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}  # chat tool-call index -> its item

    def _emit(self, kind: str, **fields: Any) -> None:
        self._push({"type": kind, "sequence_number": self._sequence, **fields})
        self._sequence += 1

    def _start(self, chunk: dict[str, Any]) -> None:
        self._id = response_id(chunk.get("id"))
        self._model = chunk.get("model") or self._model
        if isinstance(chunk.get("created"), int):
            self._created = chunk["created"]
        for kind in ("response.created", "response.in_progress"):
            self._emit(kind, response=self._response("in_progress", None))

    def _response(self, status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
        output = [item.final() for item in self._items]
        assert self._id is not None
        return response_object(self._id, self._created, self._model, output, status, usage, self._finish)

    def _text(self, text: str) -> None:
        item = self._open
        if item is None or item.kind != "message":
            item = self._add(_Item("message", item_id("msg"), len(self._items)))
            self._emit(
                "response.content_part.added",
                item_id=item.id,
                output_index=item.index,
                content_index=0,
                part=output_text_part(""),
            )
        item.pieces.append(text)
        self._emit(
            "response.output_text.delta",
            item_id=item.id,
            output_index=item.index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _tool_call(self, call: dict[str, Any]) -> None:
        function = call.get("function") or {}
        tool = call.get("index", 0)
        item = self._calls.get(tool)
        if item is None:
            item = _Item("function_call", item_id("fc"), len(self._items), call.get("id"), function.get("name"))
            self._calls[tool] = self._add(item)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.pieces.append(arguments)
            where = {"item_id": item.id, "output_index": item.index}
            self._emit("response.function_call_arguments.delta", **where, delta=arguments)

    def _add(self, item: _Item) -> _Item:
        self._close()
        self._items.append(item)
        self._open = item
        added = item.final()
        if item.kind == "message":
            added["content"] = []  # its part is announced by response.content_part.added
        self._emit("response.output_item.added", output_index=item.index, item=added)
        return item

    def _close(self) -> None:
        item = self._open
        if item is None:
            return
        self._open = None
        text = "".join(item.pieces)
        where = {"item_id": item.id, "output_index": item.index}
        if item.kind == "message":
            self._emit("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
            self._emit("response.content_part.done", **where, content_index=0, part=output_text_part(text))
        else:
            self._emit("response.function_call_arguments.done", **where, name=item.name, arguments=text)
        item.done = True
        self._emit("response.output_item.done", output_index=item.index, item=item.final())

    def _end(self) -> None:
        self._close()
        status = final_status(self._finish)
        terminal = "response.completed" if status == "completed" else "response.incomplete"
        self._emit(terminal, response=self._response(status, responses_usage_from_chat(self._chat.usage)))


class ResponsesThroughChat:
    """For providers without a Responses API: serve `/v1/responses` through their chat methods."""

    def responses_request(self, deployment: Any, body: dict[str, Any], model: str, stream: bool) -> Any:
        return self.chat_request(deployment, chat_body_from_responses(body), model, stream)  # type: ignore[attr-defined]

    def responses_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return response_from_completion(self.chat_response(payload, model), model)  # type: ignore[attr-defined]

    def responses_stream(self, model: str) -> ResponsesFromChatStream:
        return ResponsesFromChatStream(self.chat_stream(model), model)  # type: ignore[attr-defined]
