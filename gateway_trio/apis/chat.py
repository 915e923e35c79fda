"""The Chat Completions API (`/v1/chat/completions`): OpenAI's, and the gateway's lingua franca.

Its stream is assembled back into a `chat.completion` for logging hooks, and it is the one
API where a pre-call hook's refusal is answered as the assistant's reply (as LiteLLM does).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway_trio.adapters.chat_chunks import chunk_envelope
from gateway_trio.apis.base import Api
from gateway_trio.apis.checks import require_model
from gateway_trio.apis.choices import ChoicesAssembler
from gateway_trio.apis.slots import Slot, message_slots
from gateway_trio.calls import Call
from gateway_trio.errors import BadRequest


class ChatApi(Api):
    def parse(self, content: Any) -> Call:
        require_model(content)
        messages = content.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' is required and must be a non-empty array", param="messages")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise BadRequest(f"'messages[{index}]' must be an object with a 'role'", param=f"messages[{index}]")
        return self.new_call(content)

    def request_slots(self, body: Any) -> list[Slot]:
        return message_slots(body.get("messages")) if isinstance(body, dict) else []

    def response_slots(self, body: Any) -> list[Slot]:
        if not isinstance(body, dict):
            return []
        slots: list[Slot] = []
        for choice in body.get("choices") or ():
            message = choice.get("message") or {}
            if isinstance(message.get("content"), str):
                slots.append((message, "content"))
        return slots

    def chunk_slots(self, chunk: Any) -> list[Slot]:
        if not isinstance(chunk, dict):
            return []
        return [(choice["delta"], "content") for choice in chunk.get("choices") or ()
                if isinstance((choice.get("delta") or {}).get("content"), str)]

    def assembler(self) -> ChatAssembler:
        return ChatAssembler()

    def refusal_body(self, call: Call, text: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{call.call_id}", "object": "chat.completion", "created": int(time.time()),
            "model": call.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }

    def refusal_chunks(self, call: Call, text: str) -> list[bytes]:
        ident, created = f"chatcmpl-{call.call_id}", int(time.time())
        choices = ([{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
                   [{"index": 0, "delta": {}, "finish_reason": "stop"}])
        return [orjson.dumps(chunk_envelope(ident, "chat.completion.chunk", created, call.model, c)) for c in choices]


class ChatAssembler(ChoicesAssembler):
    """A `chat.completion` rebuilt from its chunks: text, tool calls and finish reason per choice,
    and the reasoning (`reasoning_content`, `thinking_blocks`) of a model that thinks."""

    object_name = "chat.completion"

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[int, list[str]] = {}
        self.tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.roles: dict[int, str] = {}
        self.reasoning: dict[int, list[str]] = {}
        self.thinking_blocks: dict[int, list[Any]] = {}

    def add_choice(self, index: int, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        if delta.get("role"):
            self.roles[index] = delta["role"]
        if delta.get("content"):
            self.text.setdefault(index, []).append(delta["content"])
        if delta.get("reasoning_content"):
            self.reasoning.setdefault(index, []).append(delta["reasoning_content"])
        if delta.get("thinking_blocks"):
            self.thinking_blocks.setdefault(index, []).extend(delta["thinking_blocks"])
        for call in delta.get("tool_calls") or ():
            slot = self.tool_calls.setdefault(index, {}).setdefault(
                call.get("index", 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
            )
            slot["id"] = call.get("id") or slot["id"]
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""

    def whole_choice(self, index: int) -> dict[str, Any]:
        content = "".join(self.text.get(index, ()))
        message: dict[str, Any] = {"role": self.roles.get(index, "assistant"), "content": content or None}
        calls = self.tool_calls.get(index)
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        if index in self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning[index])
        if index in self.thinking_blocks:
            message["thinking_blocks"] = self.thinking_blocks[index]
        return {"index": index, "message": message, "finish_reason": self.finish_reasons.get(index)}


CHAT = ChatApi("chat", "completion", ("/v1/chat/completions", "/chat/completions"), adapter_method="chat",
               probe=("chat", {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}))
