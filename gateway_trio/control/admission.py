"""Admission: whether a virtual key may make a call, decided in one place, in SPEC §9's order.

key known, not blocked (key or team), not expired (401) -> end-user not blocked (403) ->
route allowed (403) -> model allowed for key, team and user, after the key's `aliases`
(403, the message lists what is allowed) -> budgets of key, per-model key budget, team,
user, end-user (429 `budget_exceeded`) -> rpm, tpm and parallel limits of the same, plus the
key's per-model rpm/tpm (429 `rate_limit_exceeded`).  Every 429 has a `retry-after`.

The checks before the budgets read only the frozen records of the `Tenant` (from the key
cache) and compiled pattern tables cached per tuple, so a call costs no lookup besides its
accounts in the ledger.  What passes gets an `Admission`: the model group to route to, the
reservation the pipeline settles or releases exactly once, the headers of its answer, and
the budget resets the caller persists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gateway_trio.control.estimate import PriceBook, WorstCase, WorstPrices, worst_case
from gateway_trio.control.headers import limit_headers
from gateway_trio.control.ledger import BudgetReset, Claim, Hold, Ledger, Verdict
from gateway_trio.control.records import EndUserRecord, KeyRecord, Tenant
from gateway_trio.errors import AuthError, Forbidden

# `models` entries that allow every model (LiteLLM's names, and a bare wildcard).
ALL_MODELS = frozenset({"*", "all-proxy-models"})
# A key's `models` entry that defers to its team's list.
TEAM_MODELS = "all-team-models"
# `allowed_routes` entries that name every LLM route (LiteLLM's route groups).
LLM_ROUTE_GROUPS = frozenset({"llm_api_routes", "openai_routes", "anthropic_routes"})
# An admission without accounts: a key nothing limits holds no reservation worth counting.
NO_CLAIMS: tuple[Claim, ...] = ()
DECIDED_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted call: where to route it, what it holds, what its answer tells the client."""

    model_group: str  # the model asked for, after the key's aliases
    reservation: Hold  # a local `Reservation`, or a `SharedReservation` settled through Redis
    headers: Mapping[str, str]
    resets: tuple[BudgetReset, ...]  # budgets that reset now: persist their `budget_reset_at`
    worst: WorstCase

    def settle(self, cost: float | None, tokens: int | None = None) -> None:
        self.reservation.settle(cost, tokens)

    def release(self) -> None:
        self.reservation.release()


class Admitter:
    """Decides calls for virtual keys against one ledger and the config's prices."""

    def __init__(self, ledger: Ledger, prices: PriceBook, resolve: Callable[[str], str | None] | None = None) -> None:
        """`resolve`: the router's, from a model name to its group (aliases, wildcards), for prices."""
        self.ledger = ledger
        self.prices = prices
        self.resolve = resolve
        # (tenant, model, end-user) -> what follows from those frozen records alone: the group,
        # that key, team and user allow it, its claims and its prices.  Keyed by identity (a
        # changed record is a new object), holding the objects so an id is never reused.
        self._decided: dict[tuple[int, str, int], _Decided] = {}

    def admit(
        self,
        tenant: Tenant | None,
        *,
        route: str,
        model: str,
        body: Mapping[str, Any],
        end_user: EndUserRecord | None = None,
        now: float | None = None,
    ) -> Admission:
        """Admit the call or raise the `GatewayError` that refuses it (see the module's order).

        `tenant` None means the key is unknown; `end_user` is the record of the request's
        end-user when there is one.  `now` is unix seconds (default: the ledger's clock).
        """
        asked = self.prepare(tenant, route=route, model=model, body=body, end_user=end_user, now=now)
        return self.conclude(asked, self.ledger.admit(asked.claims, asked.worst, asked.now))

    def prepare(
        self,
        tenant: Tenant | None,
        *,
        route: str,
        model: str,
        body: Mapping[str, Any],
        end_user: EndUserRecord | None = None,
        now: float | None = None,
    ) -> Asked:
        """Every check before the budgets and limits (401/403 raised here), and what the call
        then asks of its accounts: a ledger (local, or the shared one) decides the rest."""
        if now is None:
            now = self.ledger.clock()
        tenant = check_key(tenant, now)
        if end_user is not None and end_user.blocked:
            raise Forbidden(f"end-user '{end_user.user_id}' is blocked", code="end_user_blocked")
        check_route(tenant.key, route)
        decided = self._decide(tenant, model, end_user)
        return Asked(decided.group, decided.claims, worst_case(body, decided.prices), now)

    @staticmethod
    def conclude(asked: Asked, verdict: Verdict) -> Admission:
        """The admission of a ledger's verdict on `asked`, or the 429 that refuses it."""
        claims, now = asked.claims, asked.now
        headers = limit_headers(claims, verdict.accounts, now) if claims else {}
        if verdict.refusal is not None:
            verdict.refusal.limit_headers = headers
            raise verdict.refusal
        assert verdict.reservation is not None
        return Admission(asked.group, verdict.reservation, headers, tuple(verdict.resets), asked.worst)

    def _decide(self, tenant: Tenant, model: str, end_user: EndUserRecord | None) -> _Decided:
        slot = (id(tenant), model, id(end_user))
        decided = self._decided.get(slot)
        if decided is not None and decided.tenant is tenant and decided.end_user is end_user:
            return decided
        group = tenant.key.aliases.get(model, model)
        check_model(tenant, model, group)  # a refusal is not kept: it is the rare path
        priced = (self.resolve(group) if self.resolve is not None else None) or group
        decided = _Decided(tenant, end_user, group, tenant_claims(tenant, group, end_user), self.prices.prices(priced, group))
        if len(self._decided) >= DECIDED_ENTRIES:
            self._decided.clear()  # stale entries of replaced records go with the rest
        self._decided[slot] = decided
        return decided


@dataclass(frozen=True, slots=True)
class Asked:
    """A call past the checks before its budgets: its group, its claims and its worst case."""

    group: str
    claims: tuple[Claim, ...]
    worst: WorstCase
    now: float


@dataclass(frozen=True, slots=True)
class _Decided:
    tenant: Tenant
    end_user: EndUserRecord | None
    group: str
    claims: tuple[Claim, ...]
    prices: WorstPrices


def check_key(tenant: Tenant | None, now: float) -> Tenant:
    """The tenant of a usable key; 401 for an unknown, blocked (itself or its team) or expired one."""
    if tenant is None:
        raise AuthError("invalid API key", code="invalid_api_key")
    key = tenant.key
    if key.blocked:
        raise AuthError(f"key {key.key_name} is blocked", code="key_blocked")
    if tenant.team is not None and tenant.team.blocked:
        raise AuthError(f"team '{tenant.team.team_id}' of key {key.key_name} is blocked", code="team_blocked")
    if key.expires is not None and now >= key.expires:
        raise AuthError(f"key {key.key_name} expired", code="expired_key")
    return tenant


def check_route(key: KeyRecord, route: str) -> None:
    """403 unless the key's `allowed_routes` (empty: every LLM route) has `route`."""
    if not key.allowed_routes or route_matcher(key.allowed_routes)(_bare_route(route)):
        return
    raise Forbidden(
        f"key {key.key_name} may not call route {route}; allowed routes: {', '.join(key.allowed_routes)}",
        code="route_not_allowed",
    )


def check_model(tenant: Tenant, requested: str, group: str) -> None:
    """403 unless key, team and user all allow the model (the key also by the name it sent)."""
    key, team, user = tenant.key, tenant.team, tenant.user
    key_models = key.models
    if key_models and TEAM_MODELS not in key_models:
        allows = model_matcher(key_models)
        if not (allows(group) or allows(requested)):
            raise _model_refusal(f"key {key.key_name}", requested, key_models, "key_model_access_denied")
    if team is not None and team.models and not model_matcher(team.models)(group):
        raise _model_refusal(f"team '{team.team_id}'", requested, team.models, "team_model_access_denied")
    if user is not None and user.models and not model_matcher(user.models)(group):
        raise _model_refusal(f"user '{user.user_id}'", requested, user.models, "user_model_access_denied")


def allows_model(tenant: Tenant, name: str) -> bool:
    """Whether key, team and user all allow model `name` (what `/v1/models` lists for a key)."""
    try:
        check_model(tenant, name, tenant.key.aliases.get(name, name))
    except Forbidden:
        return False
    return True


def tenant_claims(tenant: Tenant, group: str, end_user: EndUserRecord | None) -> tuple[Claim, ...]:
    """The claims of every level that limits the call; none at all when no level does."""
    key, team, user = tenant.key, tenant.team, tenant.user
    label = f"key {key.key_name}"
    claims = [Claim("key", key.token, label, key.spend, key.max_budget, key.budget_duration, key.budget_reset_at,
                    key.rpm_limit, key.tpm_limit, key.max_parallel_requests)]
    model_budget = key.model_max_budget.get(group)
    model_rpm, model_tpm = key.model_rpm_limit.get(group), key.model_tpm_limit.get(group)
    if model_budget is not None or model_rpm is not None or model_tpm is not None:
        claims.append(Claim(
            "key_model", f"{key.token}\x00{group}", f"{label} on model '{group}'", key.model_spend.get(group, 0.0),
            model_budget.budget_limit if model_budget is not None else None,
            model_budget.time_period if model_budget is not None else None, None, model_rpm, model_tpm,
        ))
    if team is not None:
        claims.append(Claim("team", team.team_id, f"team '{team.team_id}'", team.spend, team.max_budget,
                            team.budget_duration, team.budget_reset_at, team.rpm_limit, team.tpm_limit,
                            team.max_parallel_requests))
    if user is not None:
        claims.append(Claim("user", user.user_id, f"user '{user.user_id}'", user.spend, user.max_budget,
                            user.budget_duration, user.budget_reset_at, user.rpm_limit, user.tpm_limit,
                            user.max_parallel_requests))
    if end_user is not None:
        claims.append(Claim("end_user", end_user.user_id, f"end-user '{end_user.user_id}'", end_user.spend,
                            end_user.max_budget, end_user.budget_duration, end_user.budget_reset_at,
                            end_user.rpm_limit, end_user.tpm_limit))
    if not any(claim.limited for claim in claims):
        return NO_CLAIMS
    return tuple(claims)


@lru_cache(maxsize=4096)
def model_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """A test of a model name against `models` entries: exact names and `*` wildcards."""
    if ALL_MODELS.intersection(patterns):
        return lambda name: True
    exact = frozenset(p for p in patterns if "*" not in p)
    wild = [p for p in patterns if "*" in p]
    if not wild:
        return exact.__contains__
    pattern = re.compile("|".join(".*".join(map(re.escape, p.split("*"))) for p in wild))
    return lambda name: name in exact or pattern.fullmatch(name) is not None


@lru_cache(maxsize=4096)
def route_matcher(routes: tuple[str, ...]) -> Callable[[str], bool]:
    """A test of an LLM route (without `/v1`) against `allowed_routes` entries."""
    if LLM_ROUTE_GROUPS.intersection(routes):
        return lambda route: True
    exact = frozenset(_bare_route(r) for r in routes if not r.endswith("*"))
    prefixes = tuple(_bare_prefix(r[:-1]) for r in routes if r.endswith("*"))
    return lambda route: route in exact or route.startswith(prefixes)


def _bare_route(route: str) -> str:
    """A route as compared: one leading slash, no trailing one, no `/v1` prefix."""
    route = "/" + route.strip("/")
    return route[3:] if route.startswith("/v1/") else route


def _bare_prefix(prefix: str) -> str:
    """The start of a wildcard route (`/v1/*`, `/chat/*`) as compared, its trailing slash kept."""
    prefix = "/" + prefix.lstrip("/")
    if prefix == "/v1" or prefix.startswith("/v1/"):
        prefix = prefix[3:] or "/"
    return prefix


def _model_refusal(who: str, model: str, allowed: Sequence[str], code: str) -> Forbidden:
    return Forbidden(f"{who} may not call model '{model}'; it may call: {', '.join(allowed)}",
                     param="model", code=code)
