"""The legacy Completions API (`/v1/completions`): a `prompt` in, `text` choices out.

Its stream is assembled back into a `text_completion` for logging hooks.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.apis.base import Api
from gateway_trio.apis.choices import ChoicesAssembler
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


class TextCompletionAssembler(ChoicesAssembler):
    """A `text_completion` rebuilt from its chunks: each choice's text and finish reason."""

    object_name = "text_completion"

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[int, list[str]] = {}

    def add_choice(self, index: int, choice: dict[str, Any]) -> None:
        if choice.get("text"):
            self.text.setdefault(index, []).append(choice["text"])

    def whole_choice(self, index: int) -> dict[str, Any]:
        return {"index": index, "text": "".join(self.text.get(index, ())), "logprobs": None,
                "finish_reason": self.finish_reasons.get(index)}


COMPLETIONS = CompletionsApi(
    "completions", "text_completion", ("/v1/completions", "/completions"), adapter_method="text_completion",
    text_fields=("prompt",), probe=("completion", {"prompt": "ping", "max_tokens": 1}),
)
