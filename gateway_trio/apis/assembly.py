"""Rebuilding a whole `chat.completion` from its stream, for logging hooks and guardrails.

Used only when something needs the whole answer, so plain streams never parse their chunks.
"""

from __future__ import annotations

from typing import Any

import orjson


class StreamAssembler:
    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.text: dict[int, list[str]] = {}
        self.finish_reasons: dict[int, str | None] = {}
        self.tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.roles: dict[int, str] = {}

    def add(self, payload: bytes | dict[str, Any]) -> None:
        chunk = orjson.loads(payload) if isinstance(payload, (bytes, bytearray, memoryview)) else payload
        self.id = self.id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        self.created = self.created or chunk.get("created")
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            if delta.get("role"):
                self.roles[index] = delta["role"]
            if delta.get("content"):
                self.text.setdefault(index, []).append(delta["content"])
            for call in delta.get("tool_calls") or ():
                slot = self.tool_calls.setdefault(index, {}).setdefault(
                    call.get("index", 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reasons[index] = choice["finish_reason"]

    def content(self, index: int = 0) -> str:
        return "".join(self.text.get(index, ()))

    def result(self, usage: dict[str, Any] | None) -> dict[str, Any]:
        indexes = sorted(set(self.text) | set(self.tool_calls) | set(self.finish_reasons) | set(self.roles)) or [0]
        choices = []
        for index in indexes:
            message: dict[str, Any] = {"role": self.roles.get(index, "assistant"), "content": self.content(index) or None}
            calls = self.tool_calls.get(index)
            if calls:
                message["tool_calls"] = [calls[i] for i in sorted(calls)]
            choices.append({"index": index, "message": message, "finish_reason": self.finish_reasons.get(index)})
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage,
        }
