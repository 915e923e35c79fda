"""Token usage between the three wire shapes: chat, Anthropic Messages and OpenAI Responses.

Accounting, budgets and spend records read chat's shape (`prompt_tokens`, `completion_tokens`,
`total_tokens`) whatever the route; the translated routes need the other two for clients.

Upstream figures are not trusted: a count is a non-negative int no larger than 2**53 (what
every JSON reader keeps exact).  Anything else (1e300, -5, "lots", true, an object) is
*unknown*: None in chat's shape, so that no sum, price or database column ever sees it.  A
figure that was never reported is 0, as before; only one reported wrongly is unknown.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

log = logging.getLogger(__name__)

MAX_TOKENS = 2**53
CHAT_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
# Where chat usage says which of its counts the upstream reported wrongly.
UNKNOWN = "unknown"


def token_count(value: Any) -> int | None:
    """`value` if it is a token count, else None.  bool is an int to Python, not to us."""
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return value
    return None


def _reported(usage: Mapping[str, Any], name: str) -> int | None:
    """A main count (input, output, total) as reported: 0 when absent, None when not a count.

    null is not a count either: it is how the translations below hand an unknown count on.
    """
    return token_count(usage[name]) if name in usage else 0


def _optional(usage: Mapping[str, Any], name: str) -> int | None:
    """A count upstreams may send as null (Anthropic's cache counts): 0 then."""
    value = usage.get(name)
    return 0 if value is None else token_count(value)


def _sum(*counts: int | None) -> int | None:
    """A sum of counts is unknown as soon as one of its parts is."""
    total = 0
    for count in counts:
        if count is None:
            return None
        total += count
    return total


def _all_unknown(names: tuple[str, ...]) -> dict[str, Any]:
    return dict.fromkeys(names)


def chat_usage_from_messages(usage: Any) -> dict[str, Any]:
    """Chat usage from Anthropic's, counting cached prompt tokens as prompt tokens."""
    if not isinstance(usage, dict):
        return _all_unknown(CHAT_COUNTS)
    cache_read = _optional(usage, "cache_read_input_tokens")
    prompt = _sum(_reported(usage, "input_tokens"), cache_read, _optional(usage, "cache_creation_input_tokens"))
    completion = _reported(usage, "output_tokens")
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _sum(prompt, completion),
    }
    if cache_read:
        out["prompt_tokens_details"] = {"cached_tokens": cache_read}
    return out


def add_messages_usage(raw: dict[str, Any], usage: Any) -> None:
    """Fold one Anthropic stream event's usage into what the stream reported so far.

    `message_delta` repeats only what changed (and may send nulls), so the rest is kept from
    `message_start`.  A usage that is not an object makes both counts unknown.
    """
    if usage is None:
        return
    if not isinstance(usage, dict):
        usage = {"input_tokens": usage, "output_tokens": usage}
    raw.update((k, v) for k, v in usage.items() if v is not None)


def chat_usage_from_responses(usage: Any) -> dict[str, Any]:
    if not isinstance(usage, dict):
        return _all_unknown(CHAT_COUNTS)
    prompt = _reported(usage, "input_tokens")
    completion = _reported(usage, "output_tokens")
    total = _reported(usage, "total_tokens")
    if total == 0:
        total = _sum(prompt, completion)
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
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
    if usage is None:
        return None
    if not isinstance(usage, dict):
        return _all_unknown(CHAT_COUNTS)
    if "prompt_tokens" in usage:
        return usage
    if "total_tokens" in usage or "input_tokens_details" in usage:
        return chat_usage_from_responses(usage)  # Anthropic sends neither
    return chat_usage_from_messages(usage)


def messages_usage_from_chat(usage: Any) -> dict[str, Any]:
    """Anthropic usage from chat's: cache reads are reported apart from `input_tokens` there.

    An unknown count stays unknown (null): the client is told no figure rather than a wrong
    one, and accounting, which reads this body on translated routes, sees it as unknown too.
    """
    usage = usage if isinstance(usage, dict) else {} if usage is None else _all_unknown(CHAT_COUNTS)
    cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
    prompt = _reported(usage, "prompt_tokens")
    out: dict[str, Any] = {
        "input_tokens": None if prompt is None else max(0, prompt - cached),
        "output_tokens": _reported(usage, "completion_tokens"),
    }
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def responses_usage_from_chat(usage: Any) -> dict[str, Any]:
    """Responses usage from chat's; an unknown count stays unknown, as in `messages_usage_from_chat`."""
    usage = usage if isinstance(usage, dict) else {} if usage is None else _all_unknown(CHAT_COUNTS)
    prompt = _reported(usage, "prompt_tokens")
    completion = _reported(usage, "completion_tokens")
    total = _reported(usage, "total_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": _detail(usage, "prompt_tokens_details", "cached_tokens")},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": _detail(usage, "completion_tokens_details", "reasoning_tokens")},
        "total_tokens": _sum(prompt, completion) if total == 0 else total,
    }


def _detail(usage: Mapping[str, Any], group: str, name: str) -> int:
    details = usage.get(group)
    value = details.get(name) if isinstance(details, dict) else None
    return token_count(value) or 0


# --- the edge: what one deployment reported --------------------------------------------------


def reported_tokens(usage: Mapping[str, Any] | None, name: str) -> int | None:
    """A count of chat usage: 0 when not reported, None when reported but not a token count."""
    if not isinstance(usage, Mapping) or name not in usage:
        return 0
    return token_count(usage[name])


class UsageCheck:
    """Checks the chat usage one deployment reports, before anything counts or prices it.

    A count that is not a token count becomes None (unknown), and `usage[UNKNOWN]` names the
    counts so: the spend record says why its tokens and cost are unknown.  The first time a
    deployment does this it is logged; after that only `invalid` counts it, so a broken
    upstream cannot flood the log.  A well-formed usage is passed on as it is (no copy).
    """

    __slots__ = ("deployment_id", "invalid")

    def __init__(self, deployment_id: str) -> None:
        self.deployment_id = deployment_id
        self.invalid = 0  # replies whose usage had a count that was not one

    def __call__(self, usage: Any) -> dict[str, Any] | None:
        if usage is None:
            return None
        if isinstance(usage, dict):
            bad = [name for name in CHAT_COUNTS if name in usage and token_count(usage[name]) is None]
            if not bad:
                return usage
            checked = {**usage, **dict.fromkeys(bad)}
        else:
            bad = list(CHAT_COUNTS)
            checked = _all_unknown(CHAT_COUNTS)
        checked[UNKNOWN] = bad
        self._count(bad, usage)
        return checked

    def _count(self, bad: list[str], usage: Any) -> None:
        self.invalid += 1
        if self.invalid == 1:
            # Types, not values: an upstream's junk may be huge, or echo what it was sent.
            if isinstance(usage, dict):
                what = ", ".join(f"{name} ({type(usage[name]).__name__})" for name in bad)
            else:
                what = f"usage ({type(usage).__name__})"
            log.warning(
                "deployment %s reported usage that is not a token count: %s; such counts are recorded "
                "as unknown (logged once per deployment, counted in gateway_upstream_usage_invalid)",
                self.deployment_id, what,
            )
