"""What a call may cost at worst, known before it is routed: what admission reserves.

A reservation is only a true bound if it is never below what the call will be charged, so
each part is taken at its maximum: the prompt estimate of `apis.tokens` (which errs high),
the output the client allows (`max_tokens`, `max_completion_tokens`, `max_output_tokens`,
times `n` choices), else the deployment's `max_output_tokens`, else `DEFAULT_MAX_OUTPUT_TOKENS`;
and the highest prices among the deployments of the model group, since the router has not
chosen one yet.  Fallbacks to another group are not covered: their cost is settled, not
reserved (a reservation is a bound on the group asked for).

`PriceBook` works out a group's worst prices once and keeps them: a group is the same
deployments for the life of a config, and a wildcard group (`openai/*`) once per model name
asked for, in a bounded table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from gateway_trio.apis.tokens import estimate_tokens
from gateway_trio.deployment import Deployment
from gateway_trio.spend.costs import token_prices

# The output a call is assumed to be able to produce when neither the client nor the
# deployment bounds it: large enough for nearly every real answer of today's chat models.
DEFAULT_MAX_OUTPUT_TOKENS = 4096
# `n` past this is refused by every upstream we know; the bound keeps a silly value from
# reserving a budget away.
MAX_CHOICES = 128
_OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_NO_OUTPUT_MODES = frozenset({"embedding", "moderation"})
_WILDCARD_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class WorstPrices:
    """The highest prices and output bound among a group's deployments."""

    input_per_token: float = 0.0
    output_per_token: float = 0.0
    max_output_tokens: int | None = None  # the largest any deployment declares
    produces_output: bool = True  # False for embeddings and moderations
    priced: bool = False  # some deployment has a known price
    # Image deployments: each of a call's `n` images may cost this much, and its output bound.
    makes_images: bool = False
    per_image: float = 0.0
    per_pixel: float = 0.0


@dataclass(frozen=True, slots=True)
class WorstCase:
    """What admission reserves for one call."""

    prompt_tokens: int
    tokens: int  # prompt + the largest output
    cost: float  # USD; 0.0 when no price is known


def worst_prices(deployments: Sequence[Deployment], model: str) -> WorstPrices:
    """The worst prices of `deployments` serving the requested `model`."""
    inputs, outputs, bounds, produces, priced = 0.0, 0.0, [], False, False
    images, per_image, per_pixel = False, 0.0, 0.0
    for deployment in deployments:
        info = deployment.info
        prices = token_prices(deployment, deployment.upstream_model(model))
        if prices is not None:
            priced = True
            inputs, outputs = max(inputs, prices[0]), max(outputs, prices[1])
        if info.max_output_tokens is not None:
            bounds.append(info.max_output_tokens)
        produces = produces or info.mode not in _NO_OUTPUT_MODES
        if info.mode == "image_generation":
            images = True
            per_image = max(per_image, info.output_cost_per_image or 0.0)
            per_pixel = max(per_pixel, info.input_cost_per_pixel or 0.0)
            priced = priced or info.output_cost_per_image is not None or info.input_cost_per_pixel is not None
    return WorstPrices(inputs, outputs, max(bounds) if bounds else None, produces or not deployments, priced,
                       images, per_image, per_pixel)


def requested_output_tokens(body: Mapping[str, Any]) -> int | None:
    """The output bound the client set, times its `n` choices; None when it set none."""
    bound = None
    for name in _OUTPUT_FIELDS:
        value = body.get(name)
        if type(value) is int and value > 0:
            bound = value
            break
    if bound is None:
        return None
    choices = body.get("n")
    if type(choices) is int and choices > 1:
        bound *= min(choices, MAX_CHOICES)
    return bound


def worst_case(body: Mapping[str, Any], prices: WorstPrices) -> WorstCase:
    """The most `body` may cost and weigh in tokens, at `prices`."""
    prompt = estimate_tokens(body)
    if not prices.produces_output:
        output = 0
    else:
        output = requested_output_tokens(body) or prices.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
    cost = prompt * prices.input_per_token + output * prices.output_per_token
    if prices.makes_images:
        count, pixels = requested_images(body)
        output *= count  # each image is an output of its own (gpt-image-* bill it in tokens)
        cost = prompt * prices.input_per_token + output * prices.output_per_token
        cost += count * (prices.per_image + pixels * prices.per_pixel)
    return WorstCase(prompt, prompt + output, cost)


def requested_images(body: Mapping[str, Any]) -> tuple[int, int]:
    """(images, pixels per image) an image call asks for; pixels 0 when its size says none."""
    n = body.get("n")
    count = min(n, MAX_CHOICES) if type(n) is int and n > 1 else 1
    width, _, height = str(body.get("size") or "").partition("x")
    pixels = int(width) * int(height) if width.isdigit() and height.isdigit() else 0
    return count, pixels


class PriceBook:
    """The worst prices of every model group, worked out once (per wildcard match: once per name)."""

    def __init__(self, groups: Mapping[str, Sequence[Deployment]]) -> None:
        self._groups = {name: tuple(deployments) for name, deployments in groups.items()}
        self._fixed = {
            name: worst_prices(deployments, name)
            for name, deployments in self._groups.items()
            if not any("*" in d.model for d in deployments)
        }
        self._wildcards: dict[tuple[str, str], WorstPrices] = {}

    def prices(self, group: str, model: str | None = None) -> WorstPrices:
        """The worst prices of `group` for the requested `model` (an unknown group: unpriced)."""
        fixed = self._fixed.get(group)
        if fixed is not None:
            return fixed
        deployments = self._groups.get(group)
        if deployments is None:
            return WorstPrices()
        key = (group, model or group)
        found = self._wildcards.get(key)
        if found is None:
            if len(self._wildcards) >= _WILDCARD_ENTRIES:
                self._wildcards.clear()  # names asked of a wildcard group are unbounded: start over
            found = self._wildcards[key] = worst_prices(deployments, key[1])
        return found
