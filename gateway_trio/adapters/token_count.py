"""Anthropic's token counting (`/v1/messages/count_tokens`), for every provider.

An Anthropic deployment counts for real at its own endpoint.  The other providers have no such
endpoint, so their adapters answer at once with an estimate and send nothing: four characters
a token over the JSON of what is counted (system, messages, tools), the rule the gateway's
limits use (`apis.tokens`), which errs high.  A count is no generation: its answer carries no
usage, and the call is accounted as using no tokens (`adapters.base.UNCOUNTED`).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_trio.adapters.replies import malformed

# What Anthropic's endpoint takes; the rest of a Messages body (max_tokens, sampling) counts nothing.
COUNTED_FIELDS = ("messages", "system", "tools", "tool_choice", "thinking", "mcp_servers")
CHARS_PER_TOKEN = 4


def count_body(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The body Anthropic's count endpoint takes, for the deployment's model."""
    return {"model": model, **{name: body[name] for name in COUNTED_FIELDS if name in body}}


def estimated_answer(body: dict[str, Any]) -> bytes:
    """An answer of Anthropic's shape, `{"input_tokens": n}`, from the estimate."""
    counted = [body.get(name) for name in ("system", "messages", "tools")]
    return orjson.dumps({"input_tokens": len(orjson.dumps(counted)) // CHARS_PER_TOKEN})


def count_answer(payload: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise malformed("the body is not valid JSON") from None
    tokens = answer.get("input_tokens") if isinstance(answer, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        raise malformed("no 'input_tokens' count in the answer")
    return {"input_tokens": tokens}
