"""What a call cost: the deployment's configured prices, else a built-in table.

The table holds public list prices (USD per token) of common OpenAI and Anthropic models;
a model matches its longest listed prefix, so dated versions (`gpt-4o-mini-2024-07-18`)
price like their family.  `[models.info]` prices always win.  Generated images are priced
by the deployment's `output_cost_per_image` and `input_cost_per_pixel` (there is no table of
image prices here), on top of any tokens the answer reports.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.adapters.usage import reported_tokens
from gateway_trio.deployment import Deployment

# model prefix: (input USD/token, output USD/token)
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.5e-6, 1e-5),
    "gpt-4o-mini": (1.5e-7, 6e-7),
    "gpt-4.1": (2e-6, 8e-6),
    "gpt-4.1-mini": (4e-7, 1.6e-6),
    "gpt-4.1-nano": (1e-7, 4e-7),
    "gpt-4-turbo": (1e-5, 3e-5),
    "gpt-4": (3e-5, 6e-5),
    "gpt-3.5-turbo": (5e-7, 1.5e-6),
    "o1": (1.5e-5, 6e-5),
    "o1-mini": (1.1e-6, 4.4e-6),
    "o3": (2e-6, 8e-6),
    "o3-mini": (1.1e-6, 4.4e-6),
    "o4-mini": (1.1e-6, 4.4e-6),
    "text-embedding-3-small": (2e-8, 0.0),
    "text-embedding-3-large": (1.3e-7, 0.0),
    "text-embedding-ada-002": (1e-7, 0.0),
    "claude-3-haiku": (2.5e-7, 1.25e-6),
    "claude-3-5-haiku": (8e-7, 4e-6),
    "claude-3-5-sonnet": (3e-6, 1.5e-5),
    "claude-3-7-sonnet": (3e-6, 1.5e-5),
    "claude-sonnet-4": (3e-6, 1.5e-5),
    "claude-3-opus": (1.5e-5, 7.5e-5),
    "claude-opus-4": (1.5e-5, 7.5e-5),
}
_BY_LENGTH = sorted(PRICES, key=len, reverse=True)
# Keys of the usage of an image answer (`apis.images`): the images made, and their pixels.
IMAGE_COUNT = "images"
PIXEL_COUNT = "pixels"


def listed_price(model: str) -> tuple[float, float] | None:
    name = model.rsplit("/", 1)[-1]
    for prefix in _BY_LENGTH:
        if name.startswith(prefix):
            return PRICES[prefix]
    return None


def response_cost(deployment: Deployment | None, usage: dict[str, Any] | None, model: str | None = None) -> float | None:
    """Cost in USD, or None when the prices or the usage are unknown.

    `usage` is checked chat usage (adapters/usage.py): a count it holds as None was reported
    wrongly, and no price of it is known.
    """
    if deployment is None or not usage:
        return None
    prompt = reported_tokens(usage, "prompt_tokens")
    completion = reported_tokens(usage, "completion_tokens")
    if prompt is None or completion is None:
        return None
    prices = token_prices(deployment, model)
    if IMAGE_COUNT in usage:
        return image_cost(deployment, usage, prompt, completion, prices)
    if prices is None:
        return None
    return prompt * prices[0] + completion * prices[1]


def image_cost(
    deployment: Deployment, usage: dict[str, Any], prompt: int, completion: int,
    prices: tuple[float, float] | None,
) -> float | None:
    """Images by the image and by the pixel, plus the tokens; None when none of it has a price."""
    info = deployment.info
    parts: list[float] = []
    if info.output_cost_per_image is not None:
        parts.append(usage[IMAGE_COUNT] * info.output_cost_per_image)
    if info.input_cost_per_pixel is not None and PIXEL_COUNT in usage:
        parts.append(usage[PIXEL_COUNT] * info.input_cost_per_pixel)
    if prices is not None:
        parts.append(prompt * prices[0] + completion * prices[1])
    return sum(parts) if parts else None


def token_prices(deployment: Deployment, model: str | None = None) -> tuple[float, float] | None:
    """(input, output) USD per token of `deployment` serving `model`: configured, else listed."""
    info = deployment.info
    if info.input_cost_per_token is not None or info.output_cost_per_token is not None:
        return (info.input_cost_per_token or 0.0, info.output_cost_per_token or 0.0)
    return listed_price(model or deployment.model)
