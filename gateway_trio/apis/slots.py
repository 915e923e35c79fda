"""Text slots: where a body keeps its texts, so guardrails can read and rewrite them in place.

A `Slot` is a (container, key) pair whose value is a string: reading every slot gives the
guardrail its `texts`; writing the edited texts back masks them where they stand.  Each API
says where its slots are (`Api.request_slots` and its kin); the helpers they share are here.
"""

from __future__ import annotations

from typing import Any, Iterator

Slot = tuple[Any, Any]


def string_slots(container: Any, key: Any) -> Iterator[Slot]:
    """`container[key]` as slots: a string, or a list of strings / text parts / text blocks."""
    value = container.get(key) if isinstance(container, dict) else container[key]
    if isinstance(value, str):
        yield container, key
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield value, index
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                yield item, "text"


def field_slots(body: Any, name: str) -> list[Slot]:
    """The texts of one top-level field (`prompt`, `input`), if the body has it."""
    return list(string_slots(body, name)) if isinstance(body, dict) and name in body else []


def message_slots(messages: Any) -> list[Slot]:
    """The texts of a list of chat or Anthropic messages (their `content`)."""
    slots: list[Slot] = []
    for message in messages or ():
        if isinstance(message, dict) and "content" in message:
            slots.extend(string_slots(message, "content"))
    return slots


def read(slots: list[Slot]) -> list[str]:
    return [container[key] for container, key in slots]


def write(slots: list[Slot], texts: list[str]) -> None:
    for (container, key), text in zip(slots, texts):
        container[key] = text
