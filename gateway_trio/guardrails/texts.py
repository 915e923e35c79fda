"""Where the texts are in each wire format, so guardrails can read and rewrite them.

A `Slot` is a (container, key) pair whose value is a string: reading every slot gives the
guardrail its `texts`; writing the edited texts back masks them in place.
"""

from __future__ import annotations

from typing import Any, Iterator

Slot = tuple[Any, Any]


def _string_slots(container: Any, key: Any) -> Iterator[Slot]:
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


def request_slots(call_type: str, body: Any) -> list[Slot]:
    if not isinstance(body, dict):
        return []
    slots: list[Slot] = []
    if call_type in ("completion", "anthropic_messages"):
        if call_type == "anthropic_messages" and "system" in body:
            slots.extend(_string_slots(body, "system"))
        for message in body.get("messages") or ():
            if isinstance(message, dict) and "content" in message:
                slots.extend(_string_slots(message, "content"))
    elif call_type == "text_completion":
        if "prompt" in body:
            slots.extend(_string_slots(body, "prompt"))
    elif call_type in ("embeddings", "moderation"):
        if "input" in body:
            slots.extend(_string_slots(body, "input"))
    elif call_type == "responses":
        if isinstance(body.get("instructions"), str):
            slots.append((body, "instructions"))
        if "input" in body:
            if isinstance(body["input"], str):
                slots.append((body, "input"))
            else:
                for item in body["input"] or ():
                    if isinstance(item, dict) and "content" in item:
                        slots.extend(_string_slots(item, "content"))
    return slots


def response_slots(call_type: str, body: Any) -> list[Slot]:
    if not isinstance(body, dict):
        return []
    slots: list[Slot] = []
    if call_type == "completion":
        for choice in body.get("choices") or ():
            message = choice.get("message") or {}
            if isinstance(message.get("content"), str):
                slots.append((message, "content"))
    elif call_type == "text_completion":
        for choice in body.get("choices") or ():
            if isinstance(choice.get("text"), str):
                slots.append((choice, "text"))
    elif call_type == "anthropic_messages":
        for block in body.get("content") or ():
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                slots.append((block, "text"))
    elif call_type == "responses":
        for item in body.get("output") or ():
            for part in item.get("content") or () if isinstance(item, dict) else ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    slots.append((part, "text"))
    elif call_type == "audio_transcription":
        if isinstance(body.get("text"), str):
            slots.append((body, "text"))
    return slots


def chunk_slots(call_type: str, chunk: Any) -> list[Slot]:
    """The text a stream chunk adds, in each streaming format."""
    if not isinstance(chunk, dict):
        return []
    if call_type == "completion":
        return [(choice["delta"], "content") for choice in chunk.get("choices") or ()
                if isinstance((choice.get("delta") or {}).get("content"), str)]
    if call_type == "text_completion":
        return [(choice, "text") for choice in chunk.get("choices") or () if isinstance(choice.get("text"), str)]
    if call_type == "anthropic_messages":
        delta = chunk.get("delta")
        if chunk.get("type") == "content_block_delta" and isinstance(delta, dict) and isinstance(delta.get("text"), str):
            return [(delta, "text")]
        return []
    if call_type == "responses":
        if chunk.get("type") == "response.output_text.delta" and isinstance(chunk.get("delta"), str):
            return [(chunk, "delta")]
        return []
    return []


def read(slots: list[Slot]) -> list[str]:
    return [container[key] for container, key in slots]


def write(slots: list[Slot], texts: list[str]) -> None:
    for (container, key), text in zip(slots, texts):
        container[key] = text


# Typed-event formats close with events that repeat the whole text or mark success; a
# post-call check at the end of the stream must be able to withhold them.
CLOSING_EVENTS = {
    "anthropic_messages": frozenset({"message_delta", "message_stop"}),
    "responses": frozenset({
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed", "response.incomplete", "response.failed",
    }),
}


def closing_slots(call_type: str, event: Any) -> list[Slot]:
    """The whole text a closing event repeats (the Responses API's); Messages' carry none."""
    if call_type != "responses" or not isinstance(event, dict):
        return []
    kind = event.get("type")
    if kind == "response.output_text.done":
        return [(event, "text")] if isinstance(event.get("text"), str) else []
    if kind == "response.content_part.done":
        part = event.get("part")
        return [(part, "text")] if isinstance(part, dict) and isinstance(part.get("text"), str) else []
    if kind == "response.output_item.done":
        return response_slots(call_type, {"output": [event.get("item")]})
    return response_slots(call_type, event.get("response"))


def is_closing_event(call_type: str, chunk: Any) -> bool:
    closing = CLOSING_EVENTS.get(call_type)
    return closing is not None and isinstance(chunk, dict) and chunk.get("type") in closing
