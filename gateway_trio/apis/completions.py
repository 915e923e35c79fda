"""The legacy Completions API (`/v1/completions`): a `prompt` in, `text` choices out.

Its stream is assembled back into a `text_completion` for logging hooks.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_trio.apis.base import Api
from gateway_trio.apis.slots import Slot


class CompletionsApi(Api):
    def response_slots(self, body: Any) -> list[Slot]:
        if not isinstance(body, dict):
            return []
        return [(choice, "text") for choice in body.get("choices") or () if isinstance(choice.get("text"), str)]

    def chunk_slots(self, chunk: Any) -> list[Slot]:
        return self.response_slots(chunk)  # a chunk's choices carry their piece of text as `text` too

    def assembler(self) -> TextCompletionAssembler:
        return TextCompletionAssembler()


class TextCompletionAssembler:
    """A `text_completion` rebuilt from its chunks: each choice's text and finish reason."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.text: dict[int, list[str]] = {}
        self.finish_reasons: dict[int, str | None] = {}

    def add(self, payload: bytes) -> None:
        chunk = orjson.loads(payload)
        self.id = self.id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        self.created = self.created or chunk.get("created")
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            pieces = self.text.setdefault(index, [])
            if choice.get("text"):
                pieces.append(choice["text"])
            if choice.get("finish_reason"):
                self.finish_reasons[index] = choice["finish_reason"]

    def result(self, usage: dict[str, Any] | None) -> dict[str, Any]:
        choices = [
            {"index": index, "text": "".join(self.text.get(index, ())), "logprobs": None,
             "finish_reason": self.finish_reasons.get(index)}
            for index in sorted(set(self.text) | set(self.finish_reasons)) or [0]
        ]
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "choices": choices, "usage": usage}


COMPLETIONS = CompletionsApi(
    "completions", "text_completion", ("/v1/completions", "/completions"), adapter_method="text_completion",
    text_fields=("prompt",), probe=("completion", {"prompt": "ping", "max_tokens": 1}),
)
