"""The routing strategies alone: each is a pure choice among healthy candidates, given the
router's loads and a seeded random source, so each rule is checked without a router or a clock."""

from __future__ import annotations

import random
from collections import Counter
from typing import get_args

import pytest

from gateway_trio.actors.strategies import (
    STRATEGIES,
    Load,
    cost_based,
    latency_based,
    least_busy,
    simple_shuffle,
    usage_based,
)
from gateway_trio.config import ModelConfig, Strategy
from gateway_trio.deployment import Deployment


def deployment(model: str, **extra) -> Deployment:
    return Deployment.from_config(ModelConfig(name="g", model=f"openai/{model}", api_base=f"http://{model}", **extra))


def loads(**by_model: Load) -> dict[str, Load]:
    return {deployment(model).id: load for model, load in by_model.items()}


def picks(choose, candidates, load_map, runs: int = 400) -> Counter[str]:
    rng = random.Random(11)
    return Counter(choose(candidates, load_map, rng).model for _ in range(runs))


def test_every_configurable_strategy_has_a_chooser_and_no_other():
    assert set(STRATEGIES) == set(get_args(Strategy))


def test_a_lone_candidate_is_chosen_without_drawing_from_the_random_source():
    class NoDraws(random.Random):
        def random(self):  # choices() draws through random()
            raise AssertionError("drew a random number for a single candidate")

    only = deployment("a")
    assert simple_shuffle([only], {only.id: Load()}, NoDraws()) is only


def test_the_shuffle_follows_the_weights():
    heavy, light = deployment("a", weight=3), deployment("b", weight=1)
    counts = picks(simple_shuffle, [heavy, light], {heavy.id: Load(), light.id: Load()}, runs=4000)
    assert 0.70 < counts["a"] / 4000 < 0.80


def test_least_busy_picks_the_fewest_in_flight_and_shares_ties():
    a, b, c = deployment("a"), deployment("b"), deployment("c")
    counts = picks(least_busy, [a, b, c], loads(a=Load(inflight=3), b=Load(inflight=1), c=Load(inflight=1)))
    assert set(counts) == {"b", "c"} and min(counts.values()) > 100  # a fair share each, never `a`


def test_latency_based_measures_the_unmeasured_first_then_picks_the_fastest():
    a, b, c = deployment("a"), deployment("b"), deployment("c")
    unmeasured = loads(a=Load(latency_s=0.2), b=Load(latency_s=None), c=Load(latency_s=0.1))
    assert set(picks(latency_based, [a, b, c], unmeasured)) == {"b"}
    measured = loads(a=Load(latency_s=0.2), b=Load(latency_s=0.5), c=Load(latency_s=0.1))
    assert set(picks(latency_based, [a, b, c], measured)) == {"c"}


def test_usage_based_compares_the_share_of_each_tpm_used_this_minute():
    big, small = deployment("a", tpm=10_000), deployment("b", tpm=1_000)
    # `a` used more tokens but a smaller share of its limit.
    used = loads(a=Load(tokens_this_minute=2_000), b=Load(tokens_this_minute=500))
    assert set(picks(usage_based, [big, small], used)) == {"a"}


def test_usage_based_without_a_tpm_compares_the_tokens_themselves():
    a, b = deployment("a"), deployment("b")
    assert set(picks(usage_based, [a, b], loads(a=Load(tokens_this_minute=30), b=Load(tokens_this_minute=20)))) == {"b"}


@pytest.mark.parametrize(
    ("prices", "cheapest"),
    [
        ({"a": (2e-6, 2e-6), "b": (1e-6, 4e-6), "c": (1e-6, 1e-6)}, {"c"}),  # input and output together
        ({"a": (None, None), "b": (1e-6, 0.0)}, {"a"}),  # no price known counts as free
    ],
)
def test_cost_based_picks_the_cheapest_per_token(prices, cheapest):
    candidates = [
        deployment(model, info={"input_cost_per_token": cost_in, "output_cost_per_token": cost_out})
        for model, (cost_in, cost_out) in prices.items()
    ]
    assert set(picks(cost_based, candidates, {d.id: Load() for d in candidates})) == cheapest
