"""What a call cost, from the deployment's configured prices."""

from __future__ import annotations

from typing import Any

from gateway_trio.deployment import Deployment


def response_cost(deployment: Deployment | None, usage: dict[str, Any] | None) -> float | None:
    """Cost in USD, or None when the prices or the usage are unknown."""
    if deployment is None or not usage:
        return None
    info = deployment.info
    if info.input_cost_per_token is None and info.output_cost_per_token is None:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return prompt * (info.input_cost_per_token or 0.0) + completion * (info.output_cost_per_token or 0.0)
