"""Anthropic's token counting (`/v1/messages/count_tokens`): a Messages body in, `{"input_tokens"}` out.

Claude Code and the Anthropic SDKs ask it before sending long prompts.  It runs the pipeline
like every route (the key, its models and routes, hooks, headers, one spend record), but it is
no generation: it is not streamed, and its record has no tokens and no cost.  An Anthropic
deployment counts at its own endpoint; any other answers with the gateway's estimate
(adapters/token_count.py), as LiteLLM does.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.apis.messages import MessagesApi
from gateway_trio.apis.wires import ANTHROPIC
from gateway_trio.calls import Call


class CountTokensApi(MessagesApi):
    """Checked as a Messages body; nothing of its answer is text for guardrails."""

    def upstream_body(self, call: Call) -> Any:
        return call.body  # the count endpoint takes no metadata

    def response_slots(self, body: Any) -> list[Any]:
        return []

    def assembler(self) -> None:
        return None


COUNT_TOKENS = CountTokensApi(
    "count_tokens",
    "count_tokens",
    ("/v1/messages/count_tokens", "/messages/count_tokens"),
    adapter_method="count_tokens",
    wire=ANTHROPIC,
    streams=False,
    x_api_key=True,
)
