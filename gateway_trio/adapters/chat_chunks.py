"""The envelope of a chat-format stream chunk, and the first choice of a chat completion.

Every writer of chat chunks (the Anthropic decoders retelling a message stream, the mock
upstream, the gateway's own refusals) wraps its choices the same way, and every reader of a
whole completion (the Messages and Responses translations) starts from its first choice:
one place each, so the formats cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.adapters.replies import malformed


def chunk_envelope(
    chunk_id: str | None, object_name: str, created: int | None, model: str | None,
    choices: list[dict[str, Any]], **extra: Any,
) -> dict[str, Any]:
    """A chunk (`chat.completion.chunk`, or `text_completion` for the legacy format)."""
    return {"id": chunk_id, "object": object_name, "created": created, "model": model, "choices": choices, **extra}


def first_choice(completion: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the first choice, its message) of a chat completion; a completion without one is malformed."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise malformed("no choice in the chat completion")
    choice = choices[0]
    return choice, choice.get("message") if isinstance(choice.get("message"), dict) else {}
