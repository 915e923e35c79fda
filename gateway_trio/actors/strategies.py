"""Routing strategies: pure functions choosing one deployment among healthy candidates."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

from gateway_trio.deployment import Deployment


@dataclass(slots=True)
class Load:
    """What the router knows of one deployment's recent behaviour."""

    inflight: int = 0  # attempts picked and not yet reported, held against max_parallel_requests
    cooldowns: int = 0  # times cooled down since start (/metrics)
    latency_s: float | None = None  # moving average of time to answer / first chunk
    minute: int = -1
    tokens_this_minute: int = 0
    requests_this_minute: int = 0
    recent_failures: list[float] = field(default_factory=list)
    cooled_until: float = 0.0
    # With [redis]: the other instances' share (SharedLoad, synced every fraction of a second),
    # and what this one did since the last sync (LocalLoad).
    others_inflight: int = 0
    others_requests: int = 0
    others_tokens: int = 0
    others_failures: int = 0
    unsynced_requests: int = 0
    unsynced_tokens: int = 0
    unsynced_failures: int = 0
    unsynced_cooldown_s: float = 0.0


Chooser = Callable[[Sequence[Deployment], dict[str, Load], random.Random], Deployment]


def simple_shuffle(candidates: Sequence[Deployment], loads: dict[str, Load], rng: random.Random) -> Deployment:
    if len(candidates) == 1:
        return candidates[0]
    return rng.choices(candidates, weights=[d.weight for d in candidates])[0]


def least_busy(candidates: Sequence[Deployment], loads: dict[str, Load], rng: random.Random) -> Deployment:
    return _lowest(candidates, rng, lambda d: loads[d.id].inflight + loads[d.id].others_inflight)


def latency_based(candidates: Sequence[Deployment], loads: dict[str, Load], rng: random.Random) -> Deployment:
    # Unmeasured deployments go first so that every one gets measured.
    return _lowest(candidates, rng, lambda d: loads[d.id].latency_s or 0.0)


def usage_based(candidates: Sequence[Deployment], loads: dict[str, Load], rng: random.Random) -> Deployment:
    def used_share(d: Deployment) -> float:
        load = loads[d.id]
        used = load.tokens_this_minute + load.others_tokens
        return used / d.tpm if d.tpm else float(used)

    return _lowest(candidates, rng, used_share)


def cost_based(candidates: Sequence[Deployment], loads: dict[str, Load], rng: random.Random) -> Deployment:
    def price(d: Deployment) -> float:
        return (d.info.input_cost_per_token or 0.0) + (d.info.output_cost_per_token or 0.0)

    return _lowest(candidates, rng, price)


def _lowest(candidates: Sequence[Deployment], rng: random.Random, key: Callable[[Deployment], float]) -> Deployment:
    best = min(key(d) for d in candidates)
    return rng.choice([d for d in candidates if key(d) == best])


STRATEGIES: dict[str, Chooser] = {
    "simple-shuffle": simple_shuffle,
    "least-busy": least_busy,
    "latency-based": latency_based,
    "usage-based": usage_based,
    "cost-based": cost_based,
}
