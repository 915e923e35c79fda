"""The worst case admission reserves: the output bound the client set, the group's highest price."""

from __future__ import annotations

import pytest

from gateway_trio.config import ModelConfig, ModelInfo
from gateway_trio.control.estimate import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    PriceBook,
    WorstPrices,
    requested_output_tokens,
    worst_case,
)
from gateway_trio.deployment import Deployment
from gateway_trio.spend.costs import PRICES


def deployment(name: str, model: str, **info: object) -> Deployment:
    return Deployment.from_config(ModelConfig(name=name, model=model, api_base="http://u.invalid",
                                              info=ModelInfo(**info)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("body", "bound"), [
    ({}, None),
    ({"max_tokens": 50}, 50),
    ({"max_completion_tokens": 70, "max_tokens": 50}, 70),
    ({"max_output_tokens": 30}, 30),
    ({"max_tokens": 50, "n": 3}, 150),
    ({"max_tokens": "50"}, None),
    ({"max_tokens": True}, None),
    ({"max_tokens": -5}, None),
])
def test_requested_output_tokens(body: dict[str, object], bound: int | None) -> None:
    assert requested_output_tokens(body) == bound


def test_the_highest_price_and_output_bound_of_a_group() -> None:
    book = PriceBook({"g": [
        deployment("g", "openai/a", input_cost_per_token=1e-6, output_cost_per_token=1e-5, max_output_tokens=200),
        deployment("g", "openai/b", input_cost_per_token=3e-6, output_cost_per_token=2e-6, max_output_tokens=900),
    ]})
    prices = book.prices("g")
    assert (prices.input_per_token, prices.output_per_token, prices.max_output_tokens) == (3e-6, 1e-5, 900)
    body = {"messages": [{"role": "user", "content": "x" * 400}]}
    worst = worst_case(body, prices)
    assert worst.tokens == worst.prompt_tokens + 900
    assert worst.cost == pytest.approx(worst.prompt_tokens * 3e-6 + 900 * 1e-5)


def test_listed_prices_and_the_default_output_bound() -> None:
    prices = PriceBook({"g": [deployment("g", "openai/gpt-4o")]}).prices("g")
    assert (prices.input_per_token, prices.output_per_token) == PRICES["gpt-4o"]
    assert worst_case({"prompt": "hi"}, prices).tokens == worst_case({"prompt": "hi"}, prices).prompt_tokens + DEFAULT_MAX_OUTPUT_TOKENS


def test_wildcard_groups_price_the_model_asked_for() -> None:
    book = PriceBook({"openai/*": [deployment("openai/*", "openai/*")]})
    assert book.prices("openai/*", "openai/gpt-4o-mini").input_per_token == PRICES["gpt-4o-mini"][0]
    assert book.prices("openai/*", "openai/gpt-4").input_per_token == PRICES["gpt-4"][0]


def test_embeddings_reserve_no_output_and_unknown_groups_no_cost() -> None:
    book = PriceBook({"e": [deployment("e", "openai/text-embedding-3-small", mode="embedding")]})
    worst = worst_case({"input": "some text", "max_tokens": 99}, book.prices("e"))
    assert worst.tokens == worst.prompt_tokens
    assert book.prices("nope") == WorstPrices()
    assert worst_case({"prompt": "x"}, book.prices("nope")).cost == 0.0


def test_image_calls_reserve_every_image_they_ask_for() -> None:
    book = PriceBook({"paint": [
        deployment("paint", "openai/dall-e-3", mode="image_generation", output_cost_per_image=0.04),
        deployment("paint", "openai/dall-e-2", mode="image_generation", input_cost_per_pixel=2e-8),
    ]})
    prices = book.prices("paint")
    assert prices.priced and prices.makes_images
    worst = worst_case({"prompt": "a cat", "n": 3, "size": "512x512"}, prices)
    assert worst.cost == pytest.approx(3 * (0.04 + 512 * 512 * 2e-8))
    assert worst_case({"prompt": "a cat"}, prices).cost == pytest.approx(0.04)  # n defaults to 1
    # Token-priced image models: the output bound holds for each image.
    tokens = PriceBook({"g": [deployment("g", "openai/gpt-image-1", mode="image_generation", max_output_tokens=5000,
                                         output_cost_per_token=4e-5, output_cost_per_image=0.01)]}).prices("g")
    worst = worst_case({"prompt": "a cat", "n": 2}, tokens)
    assert worst.tokens == worst.prompt_tokens + 2 * 5000
    assert worst.cost == pytest.approx(2 * 5000 * 4e-5 + 2 * 0.01)
    # Chat groups are untouched by any of this.
    assert not PriceBook({"c": [deployment("c", "openai/gpt-4o")]}).prices("c").makes_images
