"""Admission: every outcome, in SPEC §9's order, and its atomic reservations under concurrency."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import trio

from gateway_trio.config import ModelConfig, ModelInfo
from gateway_trio.control.admission import Admitter
from gateway_trio.control.estimate import PriceBook, worst_case
from gateway_trio.control.ledger import Ledger, TrioUnixClock
from gateway_trio.control.records import EndUserRecord, KeyRecord, ModelBudget, TeamRecord, Tenant, UserRecord
from gateway_trio.deployment import Deployment
from gateway_trio.errors import AuthError, BudgetExceeded, Forbidden, RateLimitExceeded

NOW = 1_700_000_000.0
ROUTE = "/v1/chat/completions"
BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 100}
GPT = Deployment.from_config(ModelConfig(
    name="gpt-4o", model="openai/gpt-4o", api_base="http://upstream.invalid/v1",
    info=ModelInfo(input_cost_per_token=1e-6, output_cost_per_token=2e-6),
))
CHEAP = Deployment.from_config(ModelConfig(name="openai/mini", model="openai/gpt-4o-mini", api_base="http://u.invalid"))
PRICES = PriceBook({"gpt-4o": [GPT], "openai/mini": [CHEAP]})
WORST = worst_case(BODY, PRICES.prices("gpt-4o"))
KEY = KeyRecord(token="a" * 64, key_name="sk-...abcd", team_id="t1", user_id="u1")
TEAM = TeamRecord(team_id="t1")
USER = UserRecord(user_id="u1")


def admitter(start: float | None = None) -> Admitter:
    return Admitter(Ledger(clock=TrioUnixClock(start)), PRICES)


def tenant(key: KeyRecord = KEY, team: TeamRecord | None = TEAM, user: UserRecord | None = USER) -> Tenant:
    return Tenant(key, team, user)


def admit(who: Tenant | None, *, gate: Admitter | None = None, model: str = "gpt-4o", route: str = ROUTE,
          end_user: EndUserRecord | None = None, now: float = NOW, body: dict[str, Any] = BODY) -> Any:
    return (gate or admitter()).admit(who, route=route, model=model, body=body, end_user=end_user, now=now)


def test_the_worst_case_is_the_prompt_estimate_plus_max_tokens_at_the_highest_price() -> None:
    assert WORST.tokens == WORST.prompt_tokens + 100
    assert WORST.cost == pytest.approx(WORST.prompt_tokens * 1e-6 + 100 * 2e-6)


# --- 401 -------------------------------------------------------------------------------

def test_an_unknown_key_is_401() -> None:
    with pytest.raises(AuthError) as caught:
        admit(None)
    assert caught.value.status == 401 and caught.value.code == "invalid_api_key"


@pytest.mark.parametrize(("who", "code"), [
    (tenant(replace(KEY, blocked=True)), "key_blocked"),
    (tenant(team=replace(TEAM, blocked=True)), "team_blocked"),
    (tenant(replace(KEY, expires=NOW)), "expired_key"),
])
def test_blocked_and_expired_keys_are_401(who: Tenant, code: str) -> None:
    with pytest.raises(AuthError) as caught:
        admit(who)
    assert caught.value.status == 401 and caught.value.code == code
    assert KEY.token not in caught.value.message


def test_a_key_expiring_later_works() -> None:
    assert admit(tenant(replace(KEY, expires=NOW + 1))).model_group == "gpt-4o"


def test_key_checks_come_before_everything_else() -> None:
    everything_wrong = replace(KEY, blocked=True, models=("other",), allowed_routes=("/embeddings",), max_budget=0.0)
    with pytest.raises(AuthError):
        admit(tenant(everything_wrong), end_user=EndUserRecord(user_id="e", blocked=True))


# --- 403 -------------------------------------------------------------------------------

def test_a_blocked_end_user_is_403() -> None:
    with pytest.raises(Forbidden) as caught:
        admit(tenant(), end_user=EndUserRecord(user_id="cust-1", blocked=True))
    assert "cust-1" in caught.value.message


@pytest.mark.parametrize(("allowed", "route", "ok"), [
    (("/chat/completions",), "/v1/chat/completions", True),
    (("/v1/chat/completions",), "/chat/completions", True),
    (("llm_api_routes",), "/v1/embeddings", True),
    (("/v1/*",), "/v1/embeddings", True),
    (("/embeddings",), "/v1/chat/completions", False),
    (("/chat/*",), "/v1/embeddings", False),
])
def test_routes(allowed: tuple[str, ...], route: str, ok: bool) -> None:
    who = tenant(replace(KEY, allowed_routes=allowed))
    if ok:
        admit(who, route=route)
        return
    with pytest.raises(Forbidden) as caught:
        admit(who, route=route)
    assert caught.value.status == 403 and ", ".join(allowed) in caught.value.message


def test_route_comes_before_model() -> None:
    with pytest.raises(Forbidden) as caught:
        admit(tenant(replace(KEY, allowed_routes=("/embeddings",), models=("x",))))
    assert caught.value.code == "route_not_allowed"


@pytest.mark.parametrize(("models", "model", "ok"), [
    ((), "gpt-4o", True),
    (("gpt-4o", "claude"), "gpt-4o", True),
    (("openai/*",), "openai/mini", True),
    (("openai/*",), "gpt-4o", False),
    (("*",), "gpt-4o", True),
    (("all-proxy-models",), "gpt-4o", True),
    (("gpt-4",), "gpt-4o", False),
])
def test_key_models_with_wildcards(models: tuple[str, ...], model: str, ok: bool) -> None:
    who = tenant(replace(KEY, models=models))
    if ok:
        assert admit(who, model=model).model_group == model
        return
    with pytest.raises(Forbidden) as caught:
        admit(who, model=model)
    assert caught.value.code == "key_model_access_denied"
    assert f"'{model}'" in caught.value.message and ", ".join(models) in caught.value.message


def test_aliases_route_to_their_group_and_count_as_allowed() -> None:
    who = tenant(replace(KEY, models=("my-model",), aliases={"my-model": "gpt-4o"}))
    assert admit(who, model="my-model").model_group == "gpt-4o"
    who = tenant(replace(KEY, models=("gpt-4o",), aliases={"my-model": "gpt-4o"}))
    assert admit(who, model="my-model").model_group == "gpt-4o"


def test_team_and_user_models_narrow_the_key() -> None:
    with pytest.raises(Forbidden) as caught:
        admit(tenant(team=replace(TEAM, models=("openai/*",))))
    assert caught.value.code == "team_model_access_denied" and "openai/*" in caught.value.message
    with pytest.raises(Forbidden) as caught:
        admit(tenant(user=replace(USER, models=("claude",))))
    assert caught.value.code == "user_model_access_denied"
    # The key's "all-team-models" defers to the team's list.
    who = tenant(replace(KEY, models=("all-team-models",)), team=replace(TEAM, models=("gpt-4o",)))
    assert admit(who).model_group == "gpt-4o"


def test_model_comes_before_budget() -> None:
    with pytest.raises(Forbidden):
        admit(tenant(replace(KEY, models=("x",), max_budget=0.0)))


# --- 429 budget_exceeded ----------------------------------------------------------------

@pytest.mark.parametrize("level", ["key", "key_model", "team", "user", "end_user"])
def test_every_budget_level(level: str) -> None:
    key, team, user, end_user = KEY, TEAM, USER, EndUserRecord(user_id="cust")
    spent = dict(max_budget=1.0, spend=1.0, budget_duration="1d", budget_reset_at=NOW + 600)
    if level == "key":
        key = replace(KEY, **spent)
    elif level == "key_model":
        key = replace(KEY, model_max_budget={"gpt-4o": ModelBudget(1.0, "1d")}, model_spend={"gpt-4o": 1.0})
    elif level == "team":
        team = replace(TEAM, **spent)
    elif level == "user":
        user = replace(USER, **spent)
    else:
        end_user = replace(end_user, **spent)
    with pytest.raises(BudgetExceeded) as caught:
        admit(Tenant(key, team, user), end_user=end_user)
    error = caught.value
    assert error.status == 429 and error.code == "budget_exceeded"
    assert error.openai_body()["error"]["code"] == "budget_exceeded"
    assert error.anthropic_body()["error"]["type"] == "rate_limit_error"
    retry_after = int(error.headers()["retry-after"])
    assert retry_after == (600 if level != "key_model" else 86400)  # a model budget's period starts now
    named = {"key": "key sk-...abcd", "key_model": "on model 'gpt-4o'", "team": "team 't1'", "user": "user 'u1'",
             "end_user": "end-user 'cust'"}
    assert named[level] in error.message


def test_a_per_model_budget_binds_only_its_model() -> None:
    key = replace(KEY, model_max_budget={"openai/mini": ModelBudget(0.5)}, model_spend={"openai/mini": 0.5})
    assert admit(tenant(key)).model_group == "gpt-4o"
    with pytest.raises(BudgetExceeded) as caught:
        admit(tenant(key), model="openai/mini")
    assert "openai/mini" in caught.value.message


def test_budget_comes_before_rate_limits() -> None:
    gate = admitter()
    who = tenant(replace(KEY, rpm_limit=1), team=replace(TEAM, max_budget=1.0, spend=1.0))
    with pytest.raises(BudgetExceeded):
        admit(who, gate=gate)
    admit(tenant(replace(KEY, rpm_limit=1)), gate=gate)
    with pytest.raises(BudgetExceeded):
        admit(who, gate=gate)


# --- 429 rate_limit_exceeded -------------------------------------------------------------

@pytest.mark.parametrize("level", ["key", "team", "user", "end_user", "key_model"])
def test_rpm_of_every_level(level: str) -> None:
    key, team, user, end_user = KEY, TEAM, USER, EndUserRecord(user_id="cust")
    if level == "key":
        key = replace(KEY, rpm_limit=2)
    elif level == "key_model":
        key = replace(KEY, model_rpm_limit={"gpt-4o": 2})
    elif level == "team":
        team = replace(TEAM, rpm_limit=2)
    elif level == "user":
        user = replace(USER, rpm_limit=2)
    else:
        end_user = replace(end_user, rpm_limit=2)
    gate = admitter()
    for offset in (0, 5):
        admit(Tenant(key, team, user), gate=gate, end_user=end_user, now=NOW + offset).settle(0.0)
    with pytest.raises(RateLimitExceeded) as caught:
        admit(Tenant(key, team, user), gate=gate, end_user=end_user, now=NOW + 10)
    error = caught.value
    assert error.status == 429 and error.code == "rate_limit_exceeded"
    assert error.headers()["retry-after"] == "51"
    assert error.headers()["x-ratelimit-remaining-requests"] == "0"


def test_tpm_is_corrected_to_real_usage() -> None:
    gate = admitter()
    who = tenant(replace(KEY, model_tpm_limit={"gpt-4o": 100}))
    for _ in range(3):
        admit(who, gate=gate).settle(0.0, tokens=35)
    assert WORST.prompt_tokens > 100 - 3 * 35
    with pytest.raises(RateLimitExceeded) as caught:
        admit(who, gate=gate)
    assert "tpm" in caught.value.message


def test_parallel_limit() -> None:
    gate = admitter()
    who = tenant(team=replace(TEAM, max_parallel_requests=1))
    held = admit(who, gate=gate)
    with pytest.raises(RateLimitExceeded):
        admit(who, gate=gate)
    held.release()
    admit(who, gate=gate)


# --- reservations under concurrency ----------------------------------------------------------

async def test_fifty_concurrent_calls_and_a_budget_for_exactly_ten(autojump_clock: trio.abc.Clock) -> None:
    gate = admitter(NOW)
    who = tenant(replace(KEY, max_budget=10 * WORST.cost))
    outcomes: list[str] = []

    async def call() -> None:
        try:
            admission = gate.admit(who, route=ROUTE, model="gpt-4o", body=BODY)
        except BudgetExceeded:
            outcomes.append("refused")
            return
        outcomes.append("admitted")
        await trio.sleep(1)
        admission.settle(WORST.cost)  # every call costs its whole worst case
        assert gate.ledger.get("key", KEY.token).spend <= 10 * WORST.cost + 1e-9  # type: ignore[union-attr]

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(call)
    assert outcomes.count("admitted") == 10 and outcomes.count("refused") == 40
    with pytest.raises(BudgetExceeded):
        gate.admit(who, route=ROUTE, model="gpt-4o", body=BODY)


async def test_released_failures_give_their_room_back(autojump_clock: trio.abc.Clock) -> None:
    gate = admitter(NOW)
    who = tenant(replace(KEY, max_budget=10 * WORST.cost))
    admitted = 0

    async def call(fails: bool) -> None:
        nonlocal admitted
        try:
            admission = gate.admit(who, route=ROUTE, model="gpt-4o", body=BODY)
        except BudgetExceeded:
            return
        admitted += 1
        try:
            await trio.sleep(1)
            if fails:
                raise RuntimeError("upstream failed")
            admission.settle(WORST.cost)
        except RuntimeError:
            admission.release()

    async with trio.open_nursery() as nursery:
        for number in range(10):
            nursery.start_soon(call, number % 2 == 0)
    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(call, False)
    assert admitted == 15  # 5 failures released their room, for 5 more
    assert gate.ledger.get("key", KEY.token).spend == pytest.approx(10 * WORST.cost)  # type: ignore[union-attr]


# --- headers ---------------------------------------------------------------------------------

def test_an_admitted_call_of_a_limited_key_carries_its_headers() -> None:
    gate = admitter()
    who = tenant(replace(KEY, rpm_limit=10, tpm_limit=100_000, max_budget=2.0, spend=0.5),
                 team=replace(TEAM, rpm_limit=5))
    admission = admit(who, gate=gate)
    assert admission.headers["x-ratelimit-limit-requests"] == "5"  # the team's is tighter
    assert admission.headers["x-ratelimit-remaining-requests"] == "4"
    assert admission.headers["x-ratelimit-limit-tokens"] == "100000"
    assert admission.headers["x-ratelimit-remaining-tokens"] == str(100_000 - WORST.tokens)
    assert admission.headers["x-ratelimit-reset-requests"] == "1m1s"
    assert admission.headers["x-gateway-key-spend"] == "0.5"
    assert admission.headers["x-gateway-key-budget-remaining"] == "1.5"


def test_a_key_nothing_limits_has_no_headers_and_holds_nothing() -> None:
    gate = admitter()
    admission = admit(tenant(), gate=gate)
    assert admission.headers == {}
    assert len(gate.ledger) == 0
    admission.settle(1.0)
