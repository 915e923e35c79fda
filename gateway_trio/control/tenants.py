"""The `UserAPIKeyAuth` hooks receive, filled from a key, its team and its user (SPEC §9).

Building one reads some thirty fields and converts times, so it is done once per tenant
(`key_auth`) and kept in `TenantAuths`, a bounded table keyed by the key's hash that rebuilds
when the key cache hands a new `Tenant` (a changed record is a new object).  Per call,
`for_call` makes the call's own copy: hooks may write into what they are given (LiteLLM's do,
into `metadata`), and one call's hook must not change what the next call's hooks see.  The
copy is shallow but gives each mutable container a fresh one, a few microseconds.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import fields
from datetime import datetime, timezone
from operator import attrgetter

from gateway_trio.control.records import EndUserRecord, Tenant
from gateway_trio.hooks import UserAPIKeyAuth

DEFAULT_ENTRIES = 10_000
# Every field in order: a copy is one positional construction (`copy.copy` of a slotted
# dataclass costs several times as much).
_read_all = attrgetter(*(f.name for f in fields(UserAPIKeyAuth)))


def key_auth(tenant: Tenant) -> UserAPIKeyAuth:
    """The tenant's `UserAPIKeyAuth`, the end-user left out (it comes with each call)."""
    key, team, user = tenant.key, tenant.team, tenant.user
    auth = UserAPIKeyAuth(
        api_key=key.token,
        token=key.token,
        key_name=key.key_name,
        key_alias=key.key_alias,
        user_id=key.user_id,
        team_id=key.team_id,
        models=list(key.models),
        aliases=dict(key.aliases),
        metadata=dict(key.metadata),
        tags=list(key.tags),
        max_budget=key.max_budget,
        soft_budget=key.soft_budget,
        spend=key.spend,
        rpm_limit=key.rpm_limit,
        tpm_limit=key.tpm_limit,
        max_parallel_requests=key.max_parallel_requests,
        budget_duration=key.budget_duration,
        budget_reset_at=_utc(key.budget_reset_at),
        expires=_utc(key.expires),
        allowed_routes=list(key.allowed_routes),
        blocked=key.blocked,
        model_max_budget={
            model: {"budget_limit": budget.budget_limit, "time_period": budget.time_period}
            for model, budget in key.model_max_budget.items()
        },
        model_spend=dict(key.model_spend),
    )
    if team is not None:
        auth.team_alias = team.team_alias
        auth.team_metadata = dict(team.metadata)
        auth.team_max_budget = team.max_budget
        auth.team_spend = team.spend
        auth.team_models = list(team.models)
        auth.team_rpm_limit = team.rpm_limit
        auth.team_tpm_limit = team.tpm_limit
        auth.team_blocked = team.blocked
    if user is not None:
        auth.user_role = user.user_role
        auth.user_email = user.user_email
        auth.user_rpm_limit = user.rpm_limit
        auth.user_tpm_limit = user.tpm_limit
    return auth


def for_call(
    template: UserAPIKeyAuth,
    end_user_id: str | None = None,
    end_user: EndUserRecord | None = None,
    *,
    spend: float | None = None,
    team_spend: float | None = None,
) -> UserAPIKeyAuth:
    """The call's own copy of `template`, with its end-user and the live spend figures."""
    auth = UserAPIKeyAuth(*_read_all(template))
    auth.models = list(template.models)
    auth.metadata = dict(template.metadata)
    auth.tags = list(template.tags)
    auth.allowed_routes = list(template.allowed_routes)
    auth.aliases = dict(template.aliases)
    auth.model_max_budget = dict(template.model_max_budget)
    auth.model_spend = dict(template.model_spend)
    auth.team_models = list(template.team_models)
    if template.team_metadata is not None:
        auth.team_metadata = dict(template.team_metadata)
    if end_user is not None:
        end_user_id = end_user.user_id
        auth.end_user_rpm_limit = end_user.rpm_limit
        auth.end_user_tpm_limit = end_user.tpm_limit
        auth.end_user_max_budget = end_user.max_budget
    auth.end_user_id = end_user_id
    if spend is not None:
        auth.spend = spend
    if team_spend is not None:
        auth.team_spend = team_spend
    return auth


class TenantAuths:
    """`key_auth` of each key, built once per `Tenant` object, in a bounded LRU table."""

    def __init__(self, max_entries: int = DEFAULT_ENTRIES) -> None:
        self.max_entries = max_entries
        self._table: OrderedDict[str, tuple[Tenant, UserAPIKeyAuth]] = OrderedDict()

    def template(self, tenant: Tenant) -> UserAPIKeyAuth:
        """The template of `tenant`; the same object again until the tenant is replaced."""
        token = tenant.key.token
        found = self._table.get(token)
        if found is not None and found[0] is tenant:
            self._table.move_to_end(token)
            return found[1]
        auth = key_auth(tenant)
        self._table[token] = (tenant, auth)
        self._table.move_to_end(token)
        if len(self._table) > self.max_entries:
            self._table.popitem(last=False)
        return auth

    def for_call(self, tenant: Tenant, end_user_id: str | None = None, end_user: EndUserRecord | None = None,
                 *, spend: float | None = None, team_spend: float | None = None) -> UserAPIKeyAuth:
        """The call's `UserAPIKeyAuth`: the cached template, copied for the call."""
        return for_call(self.template(tenant), end_user_id, end_user, spend=spend, team_spend=team_spend)

    def forget(self, token: str) -> None:
        self._table.pop(token, None)


def _utc(unix: float | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, timezone.utc)
