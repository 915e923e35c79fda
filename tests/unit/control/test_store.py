"""The control store: keys, teams, users and end-users in and out of the database as frozen records."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from gateway_trio.control.database import open_database, open_sqlite
from gateway_trio.control.records import (
    EndUserRecord,
    KeyRecord,
    ModelBudget,
    TeamMember,
    TeamRecord,
    UserRecord,
)
from gateway_trio.control.secrets import hash_key, key_name, new_key
from gateway_trio.control.store import END_USERS, KEYS, TEAMS, USERS, AlreadyExists, ControlStore, Deleted, Store
from gateway_trio.errors import NotFound
from gateway_trio.spend.records import SpendRecord
from gateway_trio.spend.store import SqliteSpendStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "gw.db")


@pytest.fixture
def store(database_url: str) -> Iterator[ControlStore]:
    """The store over each database (tests/conftest.py `database_url`: SQLite and PostgreSQL)."""
    store = ControlStore(open_database(database_url), clock=Clock())
    yield store
    store.close()


@pytest.fixture
def sqlite_store(path: str) -> ControlStore:
    """For what only SQLite shows (its dump, its triggers)."""
    return ControlStore(open_sqlite(path), clock=Clock())


def a_key(secret: str | None = None, **changes: object) -> KeyRecord:
    secret = secret or new_key()
    return replace(KeyRecord(token=hash_key(secret), key_name=key_name(secret)), **changes)  # type: ignore[arg-type]


def test_every_stored_field_has_its_column(path: str) -> None:
    db = sqlite3.connect(path) if Path(path).exists() else open_sqlite(path)
    for table in (KEYS, TEAMS, USERS, END_USERS):
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table.name})")]
        assert set(table.columns) == set(columns), table.name


def test_a_key_round_trips_with_every_kind_of_field(store: ControlStore) -> None:
    key = a_key(
        key_alias="ci", user_id="ann", team_id="t1", models=("gpt-4o", "claude-*"), aliases={"fast": "gpt-4o"},
        max_budget=10.0, budget_duration="30d", budget_reset_at=5000.0, rpm_limit=60, tpm_limit=10_000,
        max_parallel_requests=4, model_max_budget={"gpt-4o": ModelBudget(1.5, "1d")},
        model_rpm_limit={"gpt-4o": 5}, model_tpm_limit={"gpt-4o": 500}, guardrails=("pii",), tags=("prod",),
        metadata={"owner": {"name": "ann"}}, allowed_routes=("/v1/chat/completions",), expires=9999.0,
        model_budget_reset_at={"gpt-4o": 2000.0},
    )
    stored = store.insert_key(key)
    assert (stored.created_at, stored.updated_at) == (1001.0, 1001.0)  # set by the store
    assert stored == replace(key, created_at=1001.0, updated_at=1001.0, model_spend={"gpt-4o": 0.0})
    assert store.get_key(key.token) == stored
    assert store.get_key_by_alias("ci") == stored
    assert stored.model_max_budget["gpt-4o"] == ModelBudget(1.5, "1d")
    with pytest.raises(TypeError):
        stored.metadata["x"] = 1  # type: ignore[index]  # records out are read-only
    assert store.get_key("0" * 64) is None and store.get_key_by_alias("nope") is None


def test_the_secret_is_never_stored(sqlite_store: ControlStore, path: str) -> None:
    secret = new_key()
    sqlite_store.insert_key(a_key(secret))
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert secret not in dump and secret[3:] not in dump
    assert hash_key(secret) in dump


def test_aliases_and_tokens_are_unique(store: ControlStore) -> None:
    store.insert_key(a_key(key_alias="ci"))
    with pytest.raises(AlreadyExists, match="key_alias 'ci'") as info:
        store.insert_key(a_key(key_alias="ci"))
    assert info.value.param == "key_alias" and info.value.status == 400
    other = store.insert_key(a_key())
    with pytest.raises(AlreadyExists):
        store.update_key(replace(other, key_alias="ci"))
    with pytest.raises(AlreadyExists, match="token this key already exists"):
        store.insert_key(other)


def test_update_keeps_spend_and_created_at(store: ControlStore) -> None:
    key = store.insert_key(a_key(max_budget=1.0))
    SqliteSpendStore(store._db).write_batch([SpendRecord(
        call_id="c1", call_type="chat_completion", stream=False, status="success", start_time=1.0, end_time=2.0,
        api_key_hash=key.token, model_group="gpt", cost=0.25)])
    updated = store.update_key(replace(key, max_budget=2.0, spend=99.0, created_at=0.0))
    assert (updated.max_budget, updated.spend, updated.created_at) == (2.0, 0.25, key.created_at)
    assert updated.updated_at > key.updated_at
    assert updated.model_spend == {"gpt": 0.25}
    with pytest.raises(NotFound):
        store.update_key(a_key())
    store.set_spend("keys", key.token, 0.0)
    assert store.get_key(key.token).spend == 0.0  # type: ignore[union-attr]


def test_list_keys_filters_and_pages(store: ControlStore) -> None:
    for n in range(5):
        store.insert_key(a_key(team_id="t1" if n < 3 else "t2", user_id="ann" if n % 2 else "bob", key_alias=f"k{n}"))
    page = store.list_keys(team_id="t1", size=2)
    assert [k.key_alias for k in page.items] == ["k0", "k1"]
    assert (page.total_count, page.total_pages, page.page) == (3, 2, 1)
    assert [k.key_alias for k in store.list_keys(team_id="t1", size=2, page=2).items] == ["k2"]
    assert [k.key_alias for k in store.list_keys(user_id="ann").items] == ["k1", "k3"]
    assert [k.key_alias for k in store.list_keys(key_alias="k4").items] == ["k4"]
    assert store.list_keys(team_id="none").total_count == 0 and store.list_keys(team_id="none").total_pages == 1


def test_regenerate_keeps_settings_and_spend_and_the_old_token_is_gone(store: ControlStore) -> None:
    old = store.insert_key(a_key(key_alias="ci", max_budget=3.0, model_max_budget={"gpt": ModelBudget(1.0)},
                                 model_budget_reset_at={"gpt": None}))
    store.set_spend("keys", old.token, 0.5)
    secret = new_key()
    new = store.regenerate(old.token, hash_key(secret), key_name(secret))
    assert store.get_key(old.token) is None
    assert store.get_key_by_alias("ci") == new
    assert (new.token, new.key_name, new.max_budget, new.spend) == (hash_key(secret), key_name(secret), 3.0, 0.5)
    assert new.model_spend == {"gpt": 0.0}  # its per-model spend moved with it
    with pytest.raises(NotFound):
        store.regenerate(old.token, "x" * 64, "sk-...xxxx")


def test_delete_keys_returns_those_that_existed(store: ControlStore) -> None:
    kept, gone = store.insert_key(a_key()), store.insert_key(a_key(model_budget_reset_at={"gpt": None}))
    assert store.delete_keys([gone.token, "0" * 64]) == [gone.token]
    assert store.get_key(gone.token) is None and store.get_key(kept.token) is not None
    assert store._db.execute("SELECT count(*) FROM key_model_spend").fetchone()[0] == 0


def test_teams_and_members(store: ControlStore) -> None:
    store.insert_user(UserRecord(user_id="ann"))
    team = store.insert_team(TeamRecord(team_id="t1", team_alias="core", models=("gpt",), max_budget=5.0))
    assert store.get_team("t1") == team
    team = store.add_member("t1", TeamMember(user_id="ann", role="admin"))
    team = store.add_member("t1", TeamMember(user_email="bob@example.com"))
    team = store.add_member("t1", TeamMember(user_id="ann", role="user"))  # replaces, never repeats
    assert team.members_with_roles == (TeamMember(user_email="bob@example.com"), TeamMember(user_id="ann"))
    assert store.get_user("ann").teams == ("t1",)  # type: ignore[union-attr]
    team = store.remove_member("t1", user_id="ann")
    assert team.members_with_roles == (TeamMember(user_email="bob@example.com"),)
    assert store.get_user("ann").teams == ()  # type: ignore[union-attr]
    assert store.remove_member("t1", user_email="bob@example.com").members_with_roles == ()
    with pytest.raises(NotFound):
        store.remove_member("t1", user_id="ann")
    with pytest.raises(NotFound):
        store.add_member("t9", TeamMember(user_id="ann"))
    with pytest.raises(AlreadyExists, match="team_id 't1' already exists"):
        store.insert_team(TeamRecord(team_id="t1"))
    assert [t.team_id for t in store.list_teams().items] == ["t1"]
    assert store.delete_teams(["t1", "t9"]) == Deleted(("t1",)) and store.get_team("t1") is None


def test_users_and_end_users(store: ControlStore) -> None:
    user = store.insert_user(UserRecord(user_id="ann", user_email="ann@example.com", max_budget=2.0, metadata={"a": 1}))
    assert store.get_user("ann") == user
    assert store.update_user(replace(user, user_role="proxy_admin")).user_role == "proxy_admin"
    customer = store.insert_end_user(EndUserRecord(user_id="cust-1", alias="Acme", max_budget=1.0))
    assert store.get_end_user("cust-1") == customer
    assert store.update_end_user(replace(customer, rpm_limit=5)).rpm_limit == 5
    assert [u.user_id for u in store.list_users().items] == ["ann"]
    assert [c.user_id for c in store.list_end_users().items] == ["cust-1"]
    assert store.delete_users(["ann"]) == Deleted(("ann",)) and store.delete_end_users(["cust-1", "x"]) == ["cust-1"]


def test_block_and_unblock(store: ControlStore) -> None:
    key = store.insert_key(a_key())
    store.insert_team(TeamRecord(team_id="t1"))
    store.insert_end_user(EndUserRecord(user_id="c1"))
    assert store.set_blocked("keys", key.token, True).blocked is True
    assert store.get_key(key.token).blocked is True  # type: ignore[union-attr]
    assert store.set_blocked("keys", key.token, False).blocked is False
    assert store.set_blocked("teams", "t1", True).blocked is True
    assert store.set_blocked("end_users", "c1", True).blocked is True
    with pytest.raises(NotFound):
        store.set_blocked("teams", "t9", True)
    with pytest.raises(ValueError):
        store.set_blocked("users", "ann", True)  # type: ignore[arg-type]


def test_reset_budget_is_compare_and_set(store: ControlStore) -> None:
    key = store.insert_key(a_key(budget_reset_at=100.0, model_budget_reset_at={"gpt": 50.0}))
    store.set_spend("keys", key.token, 3.0)
    assert store.reset_budget("keys", key.token, 100.0, 200.0) is True
    assert store.reset_budget("keys", key.token, 100.0, 200.0) is False  # the second worker: already reset
    after = store.get_key(key.token)
    assert (after.spend, after.budget_reset_at) == (0.0, 200.0)  # type: ignore[union-attr]
    store.insert_team(TeamRecord(team_id="t1"))  # no reset time yet: NULL compares as NULL
    assert store.reset_budget("teams", "t1", None, 300.0) is True
    assert store.reset_budget("teams", "t1", None, 400.0) is False
    assert store.get_team("t1").budget_reset_at == 300.0  # type: ignore[union-attr]
    assert store.reset_budget("key_model_spend", (key.token, "gpt"), 50.0, 150.0) is True
    assert store.get_key(key.token).model_budget_reset_at == {"gpt": 150.0}  # type: ignore[union-attr]


def test_two_workers_resetting_at_once_reset_once(database_url: str) -> None:
    first = ControlStore(open_database(database_url))
    key = first.insert_key(a_key(budget_reset_at=100.0))
    workers = [ControlStore(open_database(database_url)) for _ in range(8)]
    results: list[bool] = []
    start = threading.Barrier(len(workers))

    def reset(store: ControlStore) -> None:
        start.wait()
        results.append(store.reset_budget("keys", key.token, 100.0, 200.0))

    threads = [threading.Thread(target=reset, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    for store in (first, *workers):
        store.close()


def test_a_failed_change_rolls_back(sqlite_store: ControlStore) -> None:
    store = sqlite_store
    store.insert_team(TeamRecord(team_id="t1"))
    store._db.execute("CREATE TRIGGER no_users BEFORE UPDATE ON users BEGIN SELECT RAISE(ABORT, 'no'); END")
    store.insert_user(UserRecord(user_id="ann"))
    with pytest.raises(sqlite3.IntegrityError):
        store.add_member("t1", TeamMember(user_id="ann"))  # the user's half fails
    assert store.get_team("t1").members_with_roles == ()  # type: ignore[union-attr]  # so the team's half is undone
    assert not store._db.in_transaction


async def test_the_async_face_runs_in_a_thread_under_its_limiter(database_url: str) -> None:
    store = await Store.open(database_url)
    key = await store.insert_key(a_key(key_alias="ci"))
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(store.get_key, key.token)
    assert await store.get_key_by_alias("ci") == key
    assert (await store.list_keys(team_id=None)).total_count == 1
    assert await store.reset_budget("keys", key.token, None, 10.0) is True
    assert await store.run(lambda blocking: blocking.get_key(key.token).budget_reset_at) == 10.0  # type: ignore[union-attr]
    assert store.limiter.total_tokens == 1
    await store.aclose()


def test_deleting_a_team_deletes_its_keys_and_memberships(store: ControlStore) -> None:
    store.insert_user(UserRecord(user_id="ann"))
    store.insert_team(TeamRecord(team_id="t1"))
    store.insert_team(TeamRecord(team_id="t2"))
    store.add_member("t1", TeamMember(user_id="ann"))
    store.add_member("t2", TeamMember(user_id="ann"))
    in_team = store.insert_key(a_key(team_id="t1"))
    from_config = store.insert_key(a_key(team_id="t1", config_owned=True))
    elsewhere = store.insert_key(a_key(team_id="t2"))
    assert store.delete_teams(["t1"]) == Deleted(("t1",), (in_team.token,))  # the key cache forgets these
    assert store.get_key(in_team.token) is None
    assert store.get_key(from_config.token) is not None and store.get_key(elsewhere.token) is not None
    assert store.get_user("ann").teams == ("t2",)  # type: ignore[union-attr]


def test_deleting_a_user_deletes_their_keys_and_memberships(store: ControlStore) -> None:
    store.insert_user(UserRecord(user_id="ann"))
    store.insert_team(TeamRecord(team_id="t1"))
    store.add_member("t1", TeamMember(user_id="ann"))
    store.add_member("t1", TeamMember(user_id="bob"))
    theirs, others = store.insert_key(a_key(user_id="ann")), store.insert_key(a_key(user_id="bob"))
    assert store.delete_users(["ann", "nobody"]) == Deleted(("ann",), (theirs.token,))
    assert store.get_key(theirs.token) is None and store.get_key(others.token) is not None
    assert store.get_team("t1").members_with_roles == (TeamMember(user_id="bob"),)  # type: ignore[union-attr]


def test_a_budget_period_starts_once_and_keeps_the_spend(store: ControlStore) -> None:
    key = store.insert_key(a_key(budget_duration="1d"))
    store.set_spend("keys", key.token, 0.4)
    assert store.start_budget_period("keys", key.token, 86_400.0) is True
    assert store.start_budget_period("keys", key.token, 99_999.0) is False  # another worker was first
    after = store.get_key(key.token)
    assert (after.spend, after.budget_reset_at) == (0.4, 86_400.0)  # type: ignore[union-attr]
    assert store.start_budget_period("key_model_spend", (key.token, "gpt"), 500.0) is True  # no row yet
    assert store.start_budget_period("key_model_spend", (key.token, "gpt"), 600.0) is False
    assert store.get_key(key.token).model_budget_reset_at == {"gpt": 500.0}  # type: ignore[union-attr]
    assert store.start_budget_period("key_model_spend", ("0" * 64, "gpt"), 1.0) is False  # unknown key: no row
