"""`[[keys]]` and `[[teams]]` of the config, reconciled into the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_trio.config import ConfigError, parse_config
from gateway_trio.control.database import open_database
from gateway_trio.control.reconcile import Reconciled, ReconcileError, reconcile
from gateway_trio.control.records import KeyRecord, ModelBudget, TeamMember, TeamRecord
from gateway_trio.control.secrets import hash_key, new_key
from gateway_trio.control.store import ControlStore

SECRET_A = "sk-config-key-aaaaaaaaaaaaaaaa"
SECRET_B = "sk-config-key-bbbbbbbbbbbbbbbb"


def config(keys: list[dict[str, Any]], teams: list[dict[str, Any]] = ()) -> Any:  # type: ignore[assignment]
    return parse_config({"keys": keys, "teams": list(teams)})


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "gw.db")


@pytest.fixture
def store(database_url: str) -> Iterator[ControlStore]:
    store = ControlStore(open_database(database_url))
    yield store
    store.close()


def dump(store: ControlStore, database_url: str) -> str:
    """Everything the database holds, as text (SQLite's dump; PostgreSQL's rows of every table)."""
    if database_url.startswith("sqlite"):
        return "\n".join(sqlite3.connect(database_url.removeprefix("sqlite:///")).iterdump())
    tables = ("keys", "teams", "users", "end_users", "key_model_spend", "spend_logs")
    return "\n".join(repr(row) for table in tables for row in store._db.execute(f"SELECT * FROM {table}"))


def test_keys_and_teams_are_inserted_config_owned_and_the_secret_never_stored(
    store: ControlStore, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_KEY", SECRET_A)
    cfg = parse_config({
        "keys": [{"key": "os.environ/CI_KEY", "key_alias": "ci", "team_id": "core", "models": ["gpt"],
                  "max_budget": 5.0, "budget_duration": "30d", "rpm_limit": 10, "metadata": {"env": "ci"},
                  "model_max_budget": {"gpt": {"budget_limit": 1.0, "time_period": "1d"}}, "tags": ["ci"]}],
        "teams": [{"team_id": "core", "team_alias": "Core", "max_budget": 50.0,
                   "members_with_roles": [{"user_id": "ann", "role": "admin"}]}],
    })
    assert reconcile(store, cfg) == Reconciled(keys_inserted=1, teams_inserted=1)
    key = store.get_key(hash_key(SECRET_A))
    assert key is not None and key.config_owned
    assert (key.key_alias, key.key_name, key.team_id, key.models, key.max_budget, key.rpm_limit) == (
        "ci", "sk-...aaaa", "core", ("gpt",), 5.0, 10)
    assert key.model_max_budget == {"gpt": ModelBudget(1.0, "1d")} and key.metadata == {"env": "ci"}
    team = store.get_team("core")
    assert team is not None and team.config_owned and team.members_with_roles == (TeamMember("ann", None, "admin"),)
    dumped = dump(store, database_url)
    assert SECRET_A not in dumped and hash_key(SECRET_A) in dumped


def test_a_reconcile_keeps_spend_and_only_changes_what_changed(store: ControlStore) -> None:
    reconcile(store, config([{"key": SECRET_A, "key_alias": "ci", "max_budget": 5.0}], [{"team_id": "core"}]))
    token = hash_key(SECRET_A)
    store.set_spend("keys", token, 1.25)
    store.set_spend("teams", "core", 2.0)
    assert reconcile(store, config([{"key": SECRET_A, "key_alias": "ci", "max_budget": 5.0}], [{"team_id": "core"}])) == Reconciled()
    result = reconcile(store, config([{"key": SECRET_A, "key_alias": "ci", "max_budget": 8.0}], [{"team_id": "core", "rpm_limit": 3}]))
    assert result == Reconciled(keys_updated=1, teams_updated=1)
    key = store.get_key(token)
    assert (key.max_budget, key.spend) == (8.0, 1.25)  # type: ignore[union-attr]
    assert store.get_team("core").spend == 2.0  # type: ignore[union-attr]


def test_rows_the_config_dropped_are_deleted_and_admin_rows_kept(store: ControlStore) -> None:
    admin_key = store.insert_key(KeyRecord(token=hash_key(new_key()), key_name="sk-...made"))
    admin_team = store.insert_team(TeamRecord(team_id="made-by-api"))
    reconcile(store, config([{"key": SECRET_A}, {"key": SECRET_B}], [{"team_id": "core"}]))
    assert reconcile(store, config([{"key": SECRET_B}])) == Reconciled(keys_deleted=1, teams_deleted=1)
    assert store.get_key(hash_key(SECRET_A)) is None and store.get_team("core") is None
    assert store.get_key(hash_key(SECRET_B)) is not None
    assert store.get_key(admin_key.token) is not None and store.get_team(admin_team.team_id) is not None


def test_a_rotated_secret_keeps_its_alias_and_spend(store: ControlStore) -> None:
    reconcile(store, config([{"key": SECRET_A, "key_alias": "ci"}]))
    store.set_spend("keys", hash_key(SECRET_A), 0.75)
    result = reconcile(store, config([{"key": SECRET_B, "key_alias": "ci"}]))
    assert result.keys_inserted == 0 and result.keys_deleted == 0
    assert store.get_key(hash_key(SECRET_A)) is None  # the old secret is dead at once
    rotated = store.get_key(hash_key(SECRET_B))
    assert rotated is not None and (rotated.spend, rotated.key_name) == (0.75, "sk-...bbbb")


def test_a_clash_with_an_admin_key_is_a_clear_error_and_changes_nothing(store: ControlStore) -> None:
    store.insert_key(KeyRecord(token=hash_key(new_key()), key_name="sk-...made", key_alias="ci"))
    with pytest.raises(ReconcileError, match=r"keys\[1\] \('ci'\): a key with key_alias 'ci' already exists") as info:
        reconcile(store, config([{"key": SECRET_B}, {"key": SECRET_A, "key_alias": "ci"}], [{"team_id": "core"}]))
    assert SECRET_A not in str(info.value)
    assert store.get_key(hash_key(SECRET_B)) is None and store.get_team("core") is None  # all or nothing


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"keys": [{"key": "short"}]}, "at least 16 characters"),
        ({"keys": [{"key": SECRET_A, "budget_duration": "2w"}]}, "not a duration"),
        ({"keys": [{"key": SECRET_A, "rpm": 3}]}, "unknown key 'keys[0].rpm'"),
        ({"keys": [{"key": SECRET_A, "guardrails": ["nope"]}]}, "keys[0].guardrails: unknown guardrail 'nope'"),
        ({"keys": [{"key": SECRET_A}, {"key": SECRET_A}]}, "two entries have the same key"),
        ({"keys": [{"key": SECRET_A, "key_alias": "x"}, {"key": SECRET_B, "key_alias": "x"}]}, "duplicate key_alias: x"),
        ({"teams": [{"team_id": "t"}, {"team_id": "t"}]}, "duplicate team_id: t"),
        ({"teams": [{"team_id": "t", "members_with_roles": [{"role": "admin"}]}]}, "needs user_id or user_email"),
        ({"server": {"master_key": SECRET_A}, "keys": [{"key": SECRET_A}]}, "same as server.master_key"),
        ({"keys": [{"key": "os.environ/NO_SUCH_VARIABLE_HERE"}]}, "'NO_SUCH_VARIABLE_HERE' is not set"),
    ],
)
def test_config_keys_and_teams_are_strict(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_config(raw)
    assert message in str(info.value)
    assert SECRET_A not in str(info.value)
