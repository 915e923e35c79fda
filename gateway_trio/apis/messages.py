"""Anthropic's Messages API (`/v1/messages`): Anthropic's bodies, events and error shape.

Its clients send their key as `x-api-key`.  Its stream (message_start, content_block_*,
message_delta, message_stop) is assembled back into the `message` an unstreamed call answers,
for logging hooks; its closing events are held back while end-of-stream guardrails decide.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_trio.apis.base import Api
from gateway_trio.apis.checks import require_field, require_model
from gateway_trio.apis.slots import Slot, message_slots, string_slots
from gateway_trio.apis.wires import ANTHROPIC
from gateway_trio.calls import Call
from gateway_trio.errors import BadRequest

CLOSING_EVENTS = frozenset({"message_delta", "message_stop"})


class MessagesApi(Api):
    def parse(self, content: Any) -> Call:
        require_model(content)
        messages = require_field(content, "messages", (list,), "a non-empty array")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise BadRequest(f"'messages[{index}]' must be an object with role 'user' or 'assistant'",
                                 param=f"messages[{index}]")
        if "max_tokens" in content and not isinstance(content["max_tokens"], int):
            raise BadRequest("'max_tokens' must be an integer", param="max_tokens")
        return self.new_call(content)

    def upstream_body(self, call: Call) -> Any:
        """The body with Anthropic's `metadata.user_id` back in it: the gateway took `metadata`
        as its own (tags, guardrails), but that one field is the upstream's (and becomes a chat
        upstream's `user`)."""
        user_id = call.metadata.get("user_id")
        if isinstance(user_id, str):
            return {**call.body, "metadata": {"user_id": user_id}}
        return call.body

    def request_slots(self, body: Any) -> list[Slot]:
        if not isinstance(body, dict):
            return []
        system = list(string_slots(body, "system")) if "system" in body else []
        return system + message_slots(body.get("messages"))

    def response_slots(self, body: Any) -> list[Slot]:
        if not isinstance(body, dict):
            return []
        return [(block, "text") for block in body.get("content") or ()
                if isinstance(block, dict) and isinstance(block.get("text"), str)]

    def chunk_slots(self, chunk: Any) -> list[Slot]:
        if not isinstance(chunk, dict) or chunk.get("type") != "content_block_delta":
            return []
        delta = chunk.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("text"), str):
            return [(delta, "text")]
        return []

    def is_closing_event(self, chunk: Any) -> bool:
        return isinstance(chunk, dict) and chunk.get("type") in CLOSING_EVENTS

    def assembler(self) -> MessageAssembler:
        return MessageAssembler()


class MessageAssembler:
    """The `message` rebuilt from its events: blocks in order, text and tool input joined,
    the stop reason and usage of `message_delta` merged into those of `message_start`."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {"id": None, "type": "message", "role": "assistant", "content": [],
                                        "model": None, "stop_reason": None, "stop_sequence": None, "usage": {}}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.tool_input: dict[int, list[str]] = {}

    def add(self, payload: bytes) -> None:
        event = orjson.loads(payload)
        kind = event.get("type")
        if kind == "content_block_delta":
            self._delta(event.get("index", 0), event.get("delta") or {})
        elif kind == "content_block_start":
            block = dict(event.get("content_block") or {})
            if block.get("type") == "tool_use":
                block["input"] = {}
            self.blocks[event.get("index", len(self.blocks))] = block
        elif kind == "message_start":
            started = event.get("message") or {}
            self.message.update({k: v for k, v in started.items() if k != "content"})
            self.message["usage"] = dict(started.get("usage") or {})
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            for key in ("stop_reason", "stop_sequence"):
                if key in delta:
                    self.message[key] = delta[key]
            self.message["usage"] = {**self.message.get("usage", {}), **(event.get("usage") or {})}

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + (delta.get("text") or "")
        elif kind == "input_json_delta":
            self.tool_input.setdefault(index, []).append(delta.get("partial_json") or "")
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + (delta.get("thinking") or "")

    def result(self, usage: dict[str, Any] | None) -> dict[str, Any]:
        content = []
        for index in sorted(self.blocks):
            block = self.blocks[index]
            if index in self.tool_input:
                try:
                    block = {**block, "input": orjson.loads("".join(self.tool_input[index]) or "{}")}
                except orjson.JSONDecodeError:
                    pass  # a stream cut inside the input: the block keeps what parsed (nothing)
            content.append(block)
        return {**self.message, "content": content}


MESSAGES = MessagesApi("messages", "anthropic_messages", ("/v1/messages", "/messages"), adapter_method="messages",
                       wire=ANTHROPIC, x_api_key=True)
