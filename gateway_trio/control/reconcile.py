"""Bringing the config's `[[keys]]` and `[[teams]]` into the store, at start and on reload (SPEC §9).

The config is the truth for the rows it declares: they are inserted or updated to match it
and marked `config_owned` (the admin routes refuse to change them), and config-owned rows the
config no longer declares are deleted.  Rows made through the admin routes are never touched.
What the gateway counts is kept: `spend`, `created_at` and the budget's reset time survive
every reconcile, and a key whose secret is rotated in the config keeps its spend when it keeps
its `key_alias` (it is renamed in place, as `/key/regenerate` does).  The secret itself is
never stored: only its sha256 and its `sk-...abcd` name.

Blocking: run it with `Store.run(lambda store: reconcile(store, config))`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Mapping

from gateway_trio.config import GatewayConfig, KeyConfig, TeamConfig
from gateway_trio.control.records import KeyRecord, ModelBudget, TeamMember, TeamRecord
from gateway_trio.control.secrets import hash_key, key_name
from gateway_trio.control.store import ControlStore
from gateway_trio.errors import GatewayError


class ReconcileError(Exception):
    """The config's keys or teams cannot be stored as they are; the message names the entry, never a secret."""


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What one reconcile changed, for the start-up log."""

    keys_inserted: int = 0
    keys_updated: int = 0
    keys_deleted: int = 0
    teams_inserted: int = 0
    teams_updated: int = 0
    teams_deleted: int = 0


def reconcile(store: ControlStore, config: GatewayConfig) -> Reconciled:
    """Make the store's config-owned keys and teams those of `config`; all or nothing."""
    with store.transaction():
        teams = _reconcile_teams(store, config.teams)
        keys = _reconcile_keys(store, config.keys)
    return Reconciled(*keys, *teams)


def _reconcile_teams(store: ControlStore, declared: list[TeamConfig]) -> tuple[int, int, int]:
    inserted = updated = 0
    for index, entry in enumerate(declared):
        wanted = team_record(entry)
        current = store.get_team(entry.team_id)
        try:
            if current is None:
                store.insert_team(wanted)
                inserted += 1
            elif _settings_differ(current, wanted):
                store.update_team(replace(wanted, budget_reset_at=current.budget_reset_at, created_at=current.created_at))
                updated += 1
        except (GatewayError, sqlite3.IntegrityError) as error:  # a clash with a row made through the routes
            raise ReconcileError(f"teams[{index}] ({entry.team_id!r}): {error}") from None
    keep = {entry.team_id for entry in declared}
    deleted = store.delete_teams([team_id for team_id in store.config_owned_ids("teams") if team_id not in keep])
    return inserted, updated, len(deleted.ids)


def _reconcile_keys(store: ControlStore, declared: list[KeyConfig]) -> tuple[int, int, int]:
    inserted = updated = 0
    wanted_tokens: set[str] = set()
    for index, entry in enumerate(declared):
        wanted = key_record(entry)
        wanted_tokens.add(wanted.token)
        shown = f"keys[{index}]" + (f" ({entry.key_alias!r})" if entry.key_alias else "")
        try:
            current = store.get_key(wanted.token)
            if current is None and entry.key_alias is not None:
                renamed = store.get_key_by_alias(entry.key_alias)
                if renamed is not None and renamed.config_owned:  # the secret was rotated
                    current = store.regenerate(renamed.token, wanted.token, wanted.key_name)
            if current is None:
                store.insert_key(wanted)
                inserted += 1
            elif _settings_differ(current, wanted):
                store.update_key(replace(wanted, budget_reset_at=current.budget_reset_at, created_at=current.created_at))
                updated += 1
        except (GatewayError, sqlite3.IntegrityError) as error:  # a clash with a row made through the routes
            raise ReconcileError(f"{shown}: {error}") from None
    stale = [token for token in store.config_owned_ids("keys") if token not in wanted_tokens]
    return inserted, updated, len(store.delete_keys(stale))


# What the gateway counts, not what the config says: never compared, never overwritten.
_COUNTED = ("spend", "budget_reset_at", "created_at", "updated_at", "model_spend", "model_budget_reset_at")


def _settings_differ(current: Any, wanted: Any) -> bool:
    return replace(current, **{name: getattr(wanted, name) for name in _COUNTED if hasattr(wanted, name)}) != wanted


def key_record(entry: KeyConfig) -> KeyRecord:
    """The stored form of a `[[keys]]` entry: its hash and shown name, never its secret."""
    secret = entry.key.get_secret_value()
    return KeyRecord(
        token=hash_key(secret),
        key_name=key_name(secret),
        key_alias=entry.key_alias,
        user_id=entry.user_id,
        team_id=entry.team_id,
        models=tuple(entry.models),
        aliases=_frozen(entry.aliases),
        max_budget=entry.max_budget,
        soft_budget=entry.soft_budget,
        budget_duration=entry.budget_duration,
        rpm_limit=entry.rpm_limit,
        tpm_limit=entry.tpm_limit,
        max_parallel_requests=entry.max_parallel_requests,
        model_max_budget=_frozen(
            {model: ModelBudget(b.budget_limit, b.time_period) for model, b in entry.model_max_budget.items()}
        ),
        model_rpm_limit=_frozen(entry.model_rpm_limit),
        model_tpm_limit=_frozen(entry.model_tpm_limit),
        guardrails=tuple(entry.guardrails),
        tags=tuple(entry.tags),
        metadata=_frozen(entry.metadata),
        blocked=entry.blocked,
        allowed_routes=tuple(entry.allowed_routes),
        config_owned=True,
    )


def team_record(entry: TeamConfig) -> TeamRecord:
    return TeamRecord(
        team_id=entry.team_id,
        team_alias=entry.team_alias,
        models=tuple(entry.models),
        max_budget=entry.max_budget,
        budget_duration=entry.budget_duration,
        rpm_limit=entry.rpm_limit,
        tpm_limit=entry.tpm_limit,
        max_parallel_requests=entry.max_parallel_requests,
        guardrails=tuple(entry.guardrails),
        metadata=_frozen(entry.metadata),
        blocked=entry.blocked,
        members_with_roles=tuple(TeamMember(m.user_id, m.user_email, m.role) for m in entry.members_with_roles),
        config_owned=True,
    )


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))
