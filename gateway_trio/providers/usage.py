"""Token usage between the three wire shapes: chat, Anthropic Messages and OpenAI Responses.

Accounting, budgets and spend records read chat's shape (`prompt_tokens`, `completion_tokens`,
`total_tokens`) whatever the route; the translated routes need the other two for clients.
"""

from __future__ import annotations

from typing import Any

# The module, not its names: anthropic.py imports (through openai.py) modules that import this.
from gateway_trio.providers import anthropic as anthropic_adapter


def chat_usage_from_messages(usage: dict[str, Any]) -> dict[str, Any]:
    """Chat usage from Anthropic's, where cached prompt tokens are counted apart."""
    return anthropic_adapter.openai_usage(usage)


def chat_usage_from_responses(usage: dict[str, Any]) -> dict[str, Any]:
    prompt = usage.get("input_tokens") or 0
    completion = usage.get("output_tokens") or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }
    cached = _detail(usage, "input_tokens_details", "cached_tokens")
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    reasoning = _detail(usage, "output_tokens_details", "reasoning_tokens")
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """Chat usage from any of the three shapes (None when there is none).

    For answers that are not chat completions (a passed-through Message or Response) the
    usage in the body is in the route's shape; accounting needs it in chat's.
    """
    if not isinstance(usage, dict):
        return None
    if "prompt_tokens" in usage:
        return usage
    if "total_tokens" in usage or "input_tokens_details" in usage:
        return chat_usage_from_responses(usage)  # Anthropic sends neither
    return chat_usage_from_messages(usage)


def messages_usage_from_chat(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic usage from chat's: cache reads are reported apart from `input_tokens` there."""
    usage = usage or {}
    cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
    out: dict[str, Any] = {
        "input_tokens": max(0, (usage.get("prompt_tokens") or 0) - cached),
        "output_tokens": usage.get("completion_tokens") or 0,
    }
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def responses_usage_from_chat(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": _detail(usage, "prompt_tokens_details", "cached_tokens")},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": _detail(usage, "completion_tokens_details", "reasoning_tokens")},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


def _detail(usage: dict[str, Any], group: str, name: str) -> int:
    details = usage.get(group)
    value = details.get(name) if isinstance(details, dict) else None
    return value if isinstance(value, int) else 0
