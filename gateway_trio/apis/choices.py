"""What the chat and legacy completions assemblers share: OpenAI's chunk format.

Both formats stream chunks that repeat an envelope (id, model, created) around a list of
choices, each with its index and, once, its finish reason; they differ only in what a
choice adds (a delta of a message, or a piece of text) and what a whole choice looks like.
"""

from __future__ import annotations

from typing import Any

import orjson


class ChoicesAssembler:
    """The whole answer of a stream of OpenAI-style chunks; a subclass keeps each choice's part."""

    object_name = ""  # the whole answer's `object`

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.finish_reasons: dict[int, str | None] = {}
        self.indexes: set[int] = set()

    def add(self, payload: bytes) -> None:
        chunk = orjson.loads(payload)
        self.id = self.id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        self.created = self.created or chunk.get("created")
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            self.indexes.add(index)
            self.add_choice(index, choice)
            if choice.get("finish_reason"):
                self.finish_reasons[index] = choice["finish_reason"]

    def add_choice(self, index: int, choice: dict[str, Any]) -> None:
        raise NotImplementedError

    def whole_choice(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def result(self, usage: dict[str, Any] | None) -> dict[str, Any]:
        choices = [self.whole_choice(index) for index in sorted(self.indexes) or [0]]
        return {"id": self.id, "object": self.object_name, "created": self.created, "model": self.model,
                "choices": choices, "usage": usage}
