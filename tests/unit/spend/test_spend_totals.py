"""Spend totals: every logged call's cost added once to its key, key and model, team, user, end-user."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_trio.control.database import open_database, open_sqlite
from gateway_trio.spend.postgres import PostgresConnection
from gateway_trio.spend.records import SpendRecord
from gateway_trio.spend.store import PostgresSpendStore, SqliteSpendStore

KEY = "k" * 64


def record(n: int, **changes: Any) -> SpendRecord:
    values: dict[str, Any] = dict(
        call_id=f"call-{n}", call_type="chat_completion", stream=False, status="success",
        start_time=100.0 + n, end_time=101.0 + n, api_key_hash=KEY, team_id="team-a", user_id="ann",
        end_user="cust-1", model_group="gpt", prompt_tokens=10, completion_tokens=5, cost=0.5,
    )
    values.update(changes)
    return SpendRecord(**values)


def with_owners(db: Any) -> Any:
    db.execute("INSERT INTO keys (token, key_name, created_at, updated_at) VALUES (?, 'sk-...abcd', 0, 0)", (KEY,))
    db.execute("INSERT INTO teams (team_id, created_at, updated_at) VALUES ('team-a', 0, 0)")
    db.execute("INSERT INTO users (user_id, created_at, updated_at) VALUES ('ann', 0, 0)")
    return db


@pytest.fixture
def db(database_url: str) -> Iterator[Any]:
    """Each database (tests/conftest.py `database_url`), migrated, with a key, a team and a user."""
    db = with_owners(open_database(database_url))
    yield db
    db.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> sqlite3.Connection:
    """For what only SQLite can be made to do (triggers that refuse, a lock held by another)."""
    return with_owners(open_sqlite(str(tmp_path / "gw.db")))


def store_of(db: Any, **options: Any) -> Any:
    """The spend store of `db`'s kind."""
    return (PostgresSpendStore if isinstance(db, PostgresConnection) else SqliteSpendStore)(db, **options)


def totals(db: sqlite3.Connection) -> dict[str, Any]:
    one = lambda sql: db.execute(sql).fetchone()
    return {
        "key": one(f"SELECT spend FROM keys WHERE token = '{KEY}'")[0],
        "team": one("SELECT spend FROM teams WHERE team_id = 'team-a'")[0],
        "user": one("SELECT spend FROM users WHERE user_id = 'ann'")[0],
        "end_users": db.execute("SELECT user_id, spend FROM end_users ORDER BY user_id").fetchall(),
        "key_models": db.execute("SELECT model, spend FROM key_model_spend ORDER BY model").fetchall(),
    }


def test_a_batch_adds_each_cost_to_every_owner(db: sqlite3.Connection) -> None:
    store = store_of(db)
    store.write_batch([record(1), record(2, model_group="claude", cost=0.25), record(3, end_user="cust-2")])
    assert totals(db) == {
        "key": 1.25, "team": 1.25, "user": 1.25,
        "end_users": [("cust-1", 0.75), ("cust-2", 0.5)],  # created when first seen
        "key_models": [("claude", 0.25), ("gpt", 1.0)],
    }
    [(created,)] = db.execute("SELECT created_at FROM end_users WHERE user_id = 'cust-2'").fetchall()
    assert created == 104.0


def test_a_batch_written_again_counts_once(db: sqlite3.Connection) -> None:
    store = store_of(db)
    batch = [record(1), record(2)]
    store.write_batch(batch)
    store.write_batch(batch)  # the writer retrying after a failure it could not see through
    store.write_batch([record(2, cost=9.0), record(3)])  # only call-3 is new
    assert totals(db)["key"] == 1.5
    assert [row["call_id"] for row in store.query()] == ["call-3", "call-2", "call-1"]
    assert store.query(call_id="call-2")[0]["cost"] == 0.5


def test_calls_without_a_cost_or_an_owner_add_nothing(db: sqlite3.Connection) -> None:
    store = store_of(db)
    store.write_batch([
        record(1, cost=None), record(2, cost=0.0), record(3, cost=float("nan")),
        record(4, api_key_hash="m" * 64, team_id=None, user_id=None, end_user=None),  # the master key: no row
        record(5, team_id="unknown-team", user_id="unknown-user", end_user=None),
    ])
    assert totals(db) == {"key": 0.5, "team": 0.0, "user": 0.0, "end_users": [], "key_models": [("gpt", 0.5)]}
    assert db.execute("SELECT count(*) FROM keys").fetchone()[0] == 1  # no key row made up
    assert db.execute("SELECT count(*) FROM key_model_spend WHERE token = ?", ("m" * 64,)).fetchone()[0] == 0


def test_a_refused_record_adds_nothing_and_the_rest_still_count(sqlite_db: sqlite3.Connection) -> None:
    db = sqlite_db
    db.execute(
        "CREATE TRIGGER refuse_two BEFORE INSERT ON spend_logs WHEN NEW.call_id = 'call-2' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    store = store_of(db)
    refused = store.write_batch([record(1), record(2), record(3)])
    assert [r.call_id for r, _ in refused] == ["call-2"]  # the row-by-row fallback
    assert totals(db)["key"] == 1.0 and totals(db)["end_users"] == [("cust-1", 1.0)]


def test_a_database_failure_adds_nothing(sqlite_db: sqlite3.Connection, tmp_path: Path) -> None:
    db = sqlite_db
    store = store_of(db)
    db.execute("PRAGMA busy_timeout = 10")
    other = sqlite3.connect(tmp_path / "gw.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError):
        store.write_batch([record(1)])
    other.execute("ROLLBACK")
    other.close()
    assert totals(db)["key"] == 0.0
    store.write_batch([record(1)])
    assert totals(db)["key"] == 0.5


def test_logs_filter_by_team_user_and_end_user(db: sqlite3.Connection) -> None:
    store = store_of(db)
    store.write_batch([record(1), record(2, team_id="team-b", user_id="bob", end_user=None), record(3, end_user="cust-2")])
    ids = lambda **f: [row["call_id"] for row in store.query(**f)]
    assert ids(team_id="team-b") == ["call-2"]
    assert ids(user_id="ann") == ["call-3", "call-1"]
    assert ids(end_user="cust-2") == ["call-3"]
    assert ids(team_id="team-a", end_user="cust-1") == ["call-1"]
    [row] = store.query(call_id="call-1")
    assert (row["team_id"], row["user_id"], row["end_user"]) == ("team-a", "ann", "cust-1")


def test_report_groups_cost_tokens_and_requests(db: sqlite3.Connection) -> None:
    store = store_of(db)
    store.write_batch([
        record(1), record(2, team_id="team-b", cost=2.0, prompt_tokens=1, completion_tokens=1),
        record(3, model_group="claude", end_user=None), record(50, cost=None),
    ])
    by_team = {row["group"]: row for row in store.report("team")}
    assert by_team["team-a"] == {"group_by": "team", "group": "team-a", "spend": 1.0, "prompt_tokens": 30,
                                 "completion_tokens": 15, "total_tokens": 45, "requests": 3}
    assert [row["group"] for row in store.report("team")] == ["team-b", "team-a"]  # costliest first
    assert {row["group"]: row["requests"] for row in store.report("end_user")} == {"cust-1": 3, None: 1}
    assert {row["group"]: row["spend"] for row in store.report("model")} == {"gpt": 2.5, "claude": 0.5}
    assert [row["group"] for row in store.report("key")] == [KEY]
    assert [row["requests"] for row in store.report("user", start=102.0, end=104.0)] == [2]  # calls 2 and 3
    with pytest.raises(ValueError, match="group_by"):
        store.report("tenant")  # type: ignore[arg-type]


def test_a_shared_connection_is_left_open_for_its_owner(sqlite_db: sqlite3.Connection) -> None:
    db = sqlite_db
    store_of(db, owns_connection=False).close()
    assert db.execute("SELECT count(*) FROM keys").fetchone() == (1,)
    store_of(db).close()
    with pytest.raises(sqlite3.ProgrammingError):
        db.execute("SELECT 1")


async def test_the_writer_reports_what_it_wrote(nursery) -> None:
    from gateway_trio.control.database import spend_store_opener
    from gateway_trio.spend.writer import SpendWriter

    writer = SpendWriter(spend_store_opener("sqlite:///:memory:"), flush_interval_s=1.0)
    with pytest.raises(RuntimeError):
        await writer.report("model")
    await nursery.start(writer.run)
    writer.submit(record(1))
    writer.submit(record(2, model_group="claude", cost=2.0))
    await writer.flush()
    assert [(row["group"], row["requests"]) for row in await writer.report("model")] == [("claude", 1), ("gpt", 1)]


def test_postgres_refuses_one_record_of_a_multi_row_batch_and_keeps_the_rest(postgres_server: Any) -> None:
    """The one-statement batch fails as a whole on a bad row; written again row by row, only it is refused."""
    db = with_owners(open_database(postgres_server.create_database()))
    try:
        db.execute("ALTER TABLE spend_logs ADD CONSTRAINT refuse_two CHECK (call_id <> 'call-2')")
        store = PostgresSpendStore(db)
        refused = store.write_batch([record(1), record(2), record(3)])
        assert [r.call_id for r, _ in refused] == ["call-2"]
        assert totals(db)["key"] == 1.0 and totals(db)["end_users"] == [("cust-1", 1.0)]
        assert [row["call_id"] for row in store.query()] == ["call-3", "call-1"]
    finally:
        db.close()


def test_postgres_two_instances_flushing_the_same_calls_at_once_keep_one_row_each(postgres_server: Any) -> None:
    """Two pools (two instances) write overlapping batches concurrently: one row and one cost per call."""
    import threading

    url = postgres_server.create_database()
    first, second = with_owners(open_database(url)), open_database(url)
    try:
        batches = [[record(n) for n in range(start, start + 50)] for start in (0, 25)]  # 25..49 in both
        barrier = threading.Barrier(2)

        def flush(db: Any, batch: list[SpendRecord]) -> None:
            barrier.wait()
            PostgresSpendStore(db).write_batch(batch)

        threads = [threading.Thread(target=flush, args=(db, batch)) for db, batch in zip((first, second), batches)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert first.execute("SELECT count(*), count(DISTINCT call_id) FROM spend_logs").fetchone() == (75, 75)
        assert totals(first)["key"] == 75 * 0.5
    finally:
        first.close()
        second.close()
