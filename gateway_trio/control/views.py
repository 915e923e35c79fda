"""The admin routes' answers: records rendered in LiteLLM's response shapes (SPEC §9).

Tools written for the LiteLLM proxy read these answers, so the shapes and names are
LiteLLM's: a key as `LiteLLM_VerificationToken` (`/key/info` wraps it as `{"key", "info"}`),
`/key/generate` as `GenerateKeyResponse`, a team as `LiteLLM_TeamTable`, a user as
`LiteLLM_UserTable`, an end-user as `LiteLLM_EndUserTable` (its budget and limits in
`litellm_budget_table`).  Times are ISO 8601 in UTC, as LiteLLM's are.

The one rule here: a secret appears only in `generated_key_view` (the answer of
`/key/generate`, `/key/regenerate` and `/user/new`), the one time it is shown.  Every other
view knows a key by its hash (`token`) and its `key_name` ("sk-...abcd").  Fields LiteLLM
has and we do not model are rendered at their empty value, so clients that read them work.
`config_owned` is ours: it says why the admin routes refuse to change a row (it is declared
in the TOML).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from gateway_trio.control.records import EndUserRecord, KeyRecord, ModelBudget, TeamMember, TeamRecord, UserRecord


def iso(moment: float | None) -> str | None:
    """Unix seconds as ISO 8601 in UTC, or None."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat()


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    # Records hold read-only mappings; JSON encoders want a dict.
    return dict(mapping)


def _model_budget(budget: ModelBudget) -> dict[str, Any]:
    return {"budget_limit": budget.budget_limit, "time_period": budget.time_period}


def key_view(key: KeyRecord) -> dict[str, Any]:
    """A key as `LiteLLM_VerificationToken`: by its hash, never its secret."""
    return {
        "token": key.token,
        "key_name": key.key_name,
        "key_alias": key.key_alias,
        "spend": key.spend,
        "max_budget": key.max_budget,
        "soft_budget": key.soft_budget,
        "expires": iso(key.expires),
        "models": list(key.models),
        "aliases": _plain(key.aliases),
        "config": {},
        "user_id": key.user_id,
        "team_id": key.team_id,
        "permissions": {},
        "max_parallel_requests": key.max_parallel_requests,
        "metadata": _plain(key.metadata),
        "blocked": key.blocked,
        "tpm_limit": key.tpm_limit,
        "rpm_limit": key.rpm_limit,
        "budget_duration": key.budget_duration,
        "budget_reset_at": iso(key.budget_reset_at),
        "allowed_cache_controls": [],
        "allowed_routes": list(key.allowed_routes),
        "model_spend": _plain(key.model_spend),
        "model_max_budget": {model: _model_budget(budget) for model, budget in key.model_max_budget.items()},
        "model_rpm_limit": _plain(key.model_rpm_limit),
        "model_tpm_limit": _plain(key.model_tpm_limit),
        "guardrails": list(key.guardrails),
        "tags": list(key.tags),
        "organization_id": None,
        "created_at": iso(key.created_at),
        "updated_at": iso(key.updated_at),
        "config_owned": key.config_owned,
    }


def generated_key_view(key: KeyRecord, secret: str) -> dict[str, Any]:
    """`GenerateKeyResponse`: the key's settings with its secret, shown this once."""
    return {**key_view(key), "key": secret, "token_id": key.token}


def key_info_view(key: KeyRecord) -> dict[str, Any]:
    """`GET /key/info`."""
    return {"key": key.token, "info": key_view(key)}


def total_pages(total: int, size: int) -> int:
    return max(1, math.ceil(total / size)) if size > 0 else 1


def key_list_view(keys: Sequence[KeyRecord], *, total: int, page: int, size: int,
                  full_objects: bool = False) -> dict[str, Any]:
    """`GET /key/list`: one page of hashes (or, asked, of key objects), never secrets."""
    return {
        "keys": [key_view(key) for key in keys] if full_objects else [key.token for key in keys],
        "total_count": total,
        "current_page": page,
        "total_pages": total_pages(total, size),
    }


def member_view(member: TeamMember) -> dict[str, Any]:
    return {"user_id": member.user_id, "user_email": member.user_email, "role": member.role}


def team_view(team: TeamRecord) -> dict[str, Any]:
    """A team as `LiteLLM_TeamTable`."""
    return {
        "team_id": team.team_id,
        "team_alias": team.team_alias,
        "organization_id": None,
        "admins": [m.user_id for m in team.members_with_roles if m.role == "admin" and m.user_id],
        "members": [m.user_id for m in team.members_with_roles if m.user_id],
        "members_with_roles": [member_view(member) for member in team.members_with_roles],
        "metadata": _plain(team.metadata),
        "tpm_limit": team.tpm_limit,
        "rpm_limit": team.rpm_limit,
        "max_parallel_requests": team.max_parallel_requests,
        "max_budget": team.max_budget,
        "budget_duration": team.budget_duration,
        "budget_reset_at": iso(team.budget_reset_at),
        "spend": team.spend,
        "models": list(team.models),
        "guardrails": list(team.guardrails),
        "blocked": team.blocked,
        "model_id": None,
        "created_at": iso(team.created_at),
        "updated_at": iso(team.updated_at),
        "config_owned": team.config_owned,
    }


def team_info_view(team: TeamRecord, keys: Iterable[KeyRecord]) -> dict[str, Any]:
    """`GET /team/info`: the team, its keys (no secrets) and its members."""
    return {
        "team_id": team.team_id,
        "team_info": team_view(team),
        "keys": [key_view(key) for key in keys],
        "team_memberships": [
            {"team_id": team.team_id, "user_id": m.user_id, "spend": None, "budget_id": None}
            for m in team.members_with_roles if m.user_id
        ],
    }


def team_update_view(team: TeamRecord) -> dict[str, Any]:
    """`POST /team/update`: LiteLLM answers `{"team_id", "data"}`."""
    return {"team_id": team.team_id, "data": team_view(team)}


def member_add_view(team: TeamRecord, users: Iterable[UserRecord]) -> dict[str, Any]:
    """`POST /team/member_add` (LiteLLM's `TeamAddMemberResponse`): the team and the users
    whose memberships changed."""
    return {**team_view(team), "updated_users": [user_view(user) for user in users],
            "updated_team_memberships": []}


def user_view(user: UserRecord) -> dict[str, Any]:
    """A user as `LiteLLM_UserTable`."""
    return {
        "user_id": user.user_id,
        "user_email": user.user_email,
        "user_alias": None,
        "user_role": user.user_role,
        "max_budget": user.max_budget,
        "budget_duration": user.budget_duration,
        "budget_reset_at": iso(user.budget_reset_at),
        "spend": user.spend,
        "model_max_budget": {},
        "model_spend": {},
        "models": list(user.models),
        "tpm_limit": user.tpm_limit,
        "rpm_limit": user.rpm_limit,
        "max_parallel_requests": user.max_parallel_requests,
        "teams": list(user.teams),
        "organization_memberships": None,
        "sso_user_id": None,
        "metadata": _plain(user.metadata),
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }


def new_user_view(user: UserRecord, key: KeyRecord | None, secret: str | None) -> dict[str, Any]:
    """`POST /user/new` (LiteLLM's `NewUserResponse`): the user's key with its secret, shown
    this once, and the user's own fields over it."""
    base: dict[str, Any] = generated_key_view(key, secret) if key is not None and secret is not None else {
        "key": None, "key_name": None, "token": None, "expires": None}
    user_fields = user_view(user)
    return {**base, **{name: user_fields[name] for name in (
        "user_id", "user_email", "user_role", "max_budget", "budget_duration", "teams", "models",
        "tpm_limit", "rpm_limit", "max_parallel_requests", "metadata", "created_at", "updated_at",
        "spend")}, "user_alias": None, "model_max_budget": {}}


def user_info_view(user: UserRecord, keys: Iterable[KeyRecord], teams: Iterable[TeamRecord]) -> dict[str, Any]:
    """`GET /user/info`: the user, their keys (no secrets) and their teams."""
    return {
        "user_id": user.user_id,
        "user_info": user_view(user),
        "keys": [key_view(key) for key in keys],
        "teams": [team_view(team) for team in teams],
    }


def user_list_view(users: Sequence[UserRecord], *, total: int, page: int, page_size: int) -> dict[str, Any]:
    """`GET /user/list`: one page of users, with LiteLLM's paging fields."""
    return {
        "users": [user_view(user) for user in users],
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": total_pages(total, page_size),
    }


def end_user_view(end_user: EndUserRecord) -> dict[str, Any]:
    """An end-user as `LiteLLM_EndUserTable`: budget and limits in `litellm_budget_table`."""
    budget = None
    if any(value is not None for value in (end_user.max_budget, end_user.budget_duration,
                                           end_user.rpm_limit, end_user.tpm_limit)):
        budget = {
            "max_budget": end_user.max_budget,
            "soft_budget": None,
            "max_parallel_requests": None,
            "tpm_limit": end_user.tpm_limit,
            "rpm_limit": end_user.rpm_limit,
            "model_max_budget": None,
            "budget_duration": end_user.budget_duration,
            "budget_reset_at": iso(end_user.budget_reset_at),
        }
    return {
        "user_id": end_user.user_id,
        "alias": end_user.alias,
        "spend": end_user.spend,
        "blocked": end_user.blocked,
        "allowed_model_region": None,
        "default_model": None,
        "budget_id": None,
        "litellm_budget_table": budget,
        "metadata": _plain(end_user.metadata),
        "created_at": iso(end_user.created_at),
        "updated_at": iso(end_user.updated_at),
    }


def deleted_view(kind: str, names: Iterable[str]) -> dict[str, Any]:
    """The delete routes' answer, as LiteLLM's: `{"deleted_keys": [...]}`, `deleted_teams`,
    `deleted_users`, `deleted_customers`."""
    return {f"deleted_{kind}": list(names)}


__all__ = [
    "deleted_view", "end_user_view", "generated_key_view", "iso", "key_info_view", "key_list_view",
    "key_view", "member_add_view", "member_view", "new_user_view", "team_info_view", "team_update_view",
    "team_view", "total_pages", "user_info_view", "user_list_view", "user_view",
]
