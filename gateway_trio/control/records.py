"""The control plane's objects (SPEC §9): keys, teams, users and end-users, as stored.

Field names are LiteLLM's (`LiteLLM_VerificationToken`, `LiteLLM_TeamTable`,
`LiteLLM_UserTable`, `LiteLLM_EndUserTable`), so that what the admin routes return reads as a
LiteLLM proxy's answer.  Records are frozen: the store hands them out, the key cache keeps
them, admission reads them from many calls at once; a change is a new record
(`dataclasses.replace`) written through the store.  Spend here is the total as of the last
read from the store; the live figure (with the calls in flight) is the ledger's.

Times are unix seconds (floats); the routes render them as ISO 8601, as LiteLLM does.
A key never holds its secret: `token` is the sha256 hex of it, `key_name` the `sk-…abcd`
form that is safe to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return EMPTY


@dataclass(frozen=True, slots=True)
class ModelBudget:
    """One entry of a key's `model_max_budget`: a cap on what the key spends on one model."""

    budget_limit: float
    time_period: str | None = None  # a duration ("1d", "1mo"); None: never resets


@dataclass(frozen=True, slots=True)
class KeyRecord:
    token: str  # sha256 hex of the secret: the key's identity everywhere
    key_name: str  # "sk-...abcd": safe to show
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    models: tuple[str, ...] = ()  # empty: every model the team and user allow
    aliases: Mapping[str, str] = field(default_factory=_empty)  # model name the caller sends -> model group
    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: float | None = None
    spend: float = 0.0
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    model_max_budget: Mapping[str, ModelBudget] = field(default_factory=_empty)
    model_spend: Mapping[str, float] = field(default_factory=_empty)  # per model, since each model's own reset
    model_budget_reset_at: Mapping[str, float | None] = field(default_factory=_empty)  # when each model's spend resets
    model_rpm_limit: Mapping[str, int] = field(default_factory=_empty)
    model_tpm_limit: Mapping[str, int] = field(default_factory=_empty)
    guardrails: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=_empty)
    blocked: bool = False
    allowed_routes: tuple[str, ...] = ()  # empty: the LLM routes
    expires: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    config_owned: bool = False  # declared in the TOML: the admin routes may not change it


@dataclass(frozen=True, slots=True)
class TeamMember:
    user_id: str | None = None
    user_email: str | None = None
    role: str = "user"  # "admin" | "user", as LiteLLM's `Member`


@dataclass(frozen=True, slots=True)
class TeamRecord:
    team_id: str
    team_alias: str | None = None
    models: tuple[str, ...] = ()
    max_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: float | None = None
    spend: float = 0.0
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    guardrails: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=_empty)
    blocked: bool = False
    members_with_roles: tuple[TeamMember, ...] = ()
    created_at: float = 0.0
    updated_at: float = 0.0
    config_owned: bool = False


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    user_email: str | None = None
    user_role: str = "internal_user"
    models: tuple[str, ...] = ()
    max_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: float | None = None
    spend: float = 0.0
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    teams: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=_empty)
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class EndUserRecord:
    """A customer of the operator's app: the request body's `user`, or `x-gateway-end-user-id`."""

    user_id: str
    alias: str | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: float | None = None
    spend: float = 0.0
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    blocked: bool = False
    metadata: Mapping[str, Any] = field(default_factory=_empty)
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Tenant:
    """A key with its team and user: what admission reads per call, from the key cache.

    The end-user is not part of it: it comes with each request, not with the key."""

    key: KeyRecord
    team: TeamRecord | None = None
    user: UserRecord | None = None
