"""Extended thinking between OpenAI chat and Anthropic Messages, both ways.

Out: `reasoning_effort` becomes a `thinking` budget (LiteLLM's budgets, so a config moved
from LiteLLM thinks as long), a client's own `thinking` object is passed on, and the
`thinking_blocks` an assistant turn carries back are sent as thinking blocks again (Anthropic
needs them, signed, to continue a tool call made while thinking).  Back: thinking blocks
become `reasoning_content` (their text joined) and `thinking_blocks` (as Anthropic sent them),
as LiteLLM answers.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.errors import BadRequest

# LiteLLM's DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET; Anthropic's least budget is 1024.
EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def thinking_param(body: dict[str, Any]) -> dict[str, Any] | None:
    """Anthropic's `thinking` for a chat body: its own `thinking`, else one from
    `reasoning_effort` (`none` asks for none); raises `BadRequest` naming a bad field."""
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict) or not isinstance(thinking.get("type"), str):
            raise BadRequest("thinking: must be an object with a 'type'", param="thinking")
        budget = thinking.get("budget_tokens")
        if thinking["type"] == "enabled" and (not isinstance(budget, int) or isinstance(budget, bool)):
            raise BadRequest(
                "thinking.budget_tokens: an integer is required when thinking is enabled", param="thinking"
            )
        return thinking
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    if effort not in EFFORT_BUDGETS:
        raise BadRequest(
            f"reasoning_effort: expected one of none, {', '.join(EFFORT_BUDGETS)}", param="reasoning_effort"
        )
    return {"type": "enabled", "budget_tokens": EFFORT_BUDGETS[effort]}


def reasoning_effort(thinking: Any) -> str | None:
    """Chat's `reasoning_effort` for an Anthropic `thinking` (a budget at or over the one each
    effort maps to, so it round-trips); None for no thinking; raises `BadRequest` if malformed."""
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return None
    if kind == "adaptive":
        return "medium"
    budget = thinking.get("budget_tokens") if kind == "enabled" else None
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise BadRequest(
            "thinking: expected type 'enabled' with an integer budget_tokens, 'adaptive' or 'disabled'",
            param="thinking",
        )
    if budget >= EFFORT_BUDGETS["high"]:
        return "high"
    return "medium" if budget >= EFFORT_BUDGETS["medium"] else "low"


def thinking_budget(thinking: dict[str, Any] | None) -> int | None:
    if thinking is None or thinking.get("type") != "enabled":
        return None
    return thinking["budget_tokens"]


def history_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """An assistant turn's `thinking_blocks`, as the Messages blocks that open the turn."""
    blocks = message.get("thinking_blocks")
    if not blocks:
        return []
    if not isinstance(blocks, list):
        raise BadRequest(f"{where}.thinking_blocks: must be a list", param=f"{where}.thinking_blocks")
    out = []
    for index, block in enumerate(blocks):
        here = f"{where}.thinking_blocks[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking" and isinstance(block.get("thinking"), str):
            entry = {"type": "thinking", "thinking": block["thinking"]}
            if isinstance(block.get("signature"), str):
                entry["signature"] = block["signature"]
            out.append(entry)
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            out.append({"type": "redacted_thinking", "data": block["data"]})
        else:
            raise BadRequest(f"{here}: expected a thinking or redacted_thinking block", param=here)
    return out


def add_reasoning(reply: dict[str, Any], blocks: list[dict[str, Any]]) -> None:
    """`reasoning_content` and `thinking_blocks` on a chat message, from an answer's thinking."""
    if not blocks:
        return
    reply["reasoning_content"] = "".join(block.get("thinking") or "" for block in blocks)
    reply["thinking_blocks"] = blocks
