"""The database's migrations: from empty, from the release before them, failing, and again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway_trio.control.database import open_database, open_sqlite
from gateway_trio.control.schema import (
    LATEST,
    MIGRATIONS,
    DatabaseTooNew,
    Migration,
    MigrationFailed,
    migrate,
)
from gateway_trio.spend.store import connect_sqlite

# The spend log exactly as the release before the control plane created it (no version table).
PREVIOUS_RELEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend_logs (
    call_id TEXT PRIMARY KEY, call_type TEXT, stream INTEGER, status TEXT, start_time REAL,
    end_time REAL, api_key_hash TEXT, key_alias TEXT, model_group TEXT, model_id TEXT,
    provider TEXT, api_base TEXT, ttft_ms REAL, prompt_tokens INTEGER, completion_tokens INTEGER,
    cost REAL, cache_hit INTEGER, attempted_retries INTEGER, attempted_fallbacks INTEGER,
    guardrail_information TEXT, error TEXT, tags TEXT, metadata TEXT
);
CREATE INDEX IF NOT EXISTS ix_spend_logs_start_time ON spend_logs (start_time);
CREATE INDEX IF NOT EXISTS ix_spend_logs_model_group ON spend_logs (model_group);
CREATE INDEX IF NOT EXISTS ix_spend_logs_api_key_hash ON spend_logs (api_key_hash);
"""

V2_TABLES = {"spend_logs", "schema_version", "keys", "teams", "users", "end_users", "key_model_spend"}
V3_TABLES = V2_TABLES | {"response_states"}


def tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def versions(db: sqlite3.Connection) -> list[int]:
    return [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY version")]


def test_an_empty_database_gets_every_version(tmp_path: Path) -> None:
    db = open_sqlite(str(tmp_path / "new.db"))
    assert tables(db) == V3_TABLES
    assert versions(db) == list(range(1, LATEST + 1)) and LATEST == 3
    assert {"team_id", "user_id", "end_user"} <= set(columns(db, "spend_logs"))
    for table in ("keys", "teams", "users", "end_users", "key_model_spend"):
        assert {"spend", "budget_reset_at"} <= set(columns(db, table)), table
    db.close()


def test_a_database_of_the_previous_release_keeps_its_spend_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript(PREVIOUS_RELEASE_SCHEMA)
        old.execute(
            "INSERT INTO spend_logs (call_id, start_time, api_key_hash, model_group, cost) VALUES (?, ?, ?, ?, ?)",
            ("call-1", 1.0, "a" * 64, "gpt", 0.5),
        )
    old.close()
    db = open_database(f"sqlite:///{path}")
    assert versions(db) == [1, 2, 3]
    row = db.execute("SELECT call_id, api_key_hash, model_group, cost, team_id, end_user FROM spend_logs").fetchall()
    assert row == [("call-1", "a" * 64, "gpt", 0.5, None, None)]
    db.close()


def test_a_failing_step_changes_nothing_and_names_its_version(tmp_path: Path) -> None:
    path = str(tmp_path / "v1.db")
    db = connect_sqlite(path)
    migrate(db, MIGRATIONS[:1])
    db.execute("INSERT INTO spend_logs (call_id, cost) VALUES ('kept', 1.0)")
    broken = Migration(2, "a step that breaks halfway", (
        "ALTER TABLE spend_logs ADD COLUMN team_id TEXT",
        "CREATE TABLE half (x TEXT)",
        "CREATE TABLE spend_logs (x TEXT)",  # already there: fails after two statements ran
    ))
    with pytest.raises(MigrationFailed, match=r"schema version 2 \(a step that breaks halfway\).*still at version 1"):
        migrate(db, (MIGRATIONS[0], broken))
    assert versions(db) == [1]
    assert "half" not in tables(db)
    assert "team_id" not in columns(db, "spend_logs")  # not half-migrated
    assert db.execute("SELECT call_id FROM spend_logs").fetchall() == [("kept",)]
    assert migrate(db) == LATEST  # the real steps 2 and 3 then run
    assert versions(db) == [1, 2, 3]
    db.close()


def test_running_again_is_a_no_op(tmp_path: Path) -> None:
    path = str(tmp_path / "twice.db")
    open_sqlite(path).close()
    db = open_sqlite(path)
    assert migrate(db) == LATEST
    assert versions(db) == [1, 2, 3]
    db.close()


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "future.db")
    db = open_sqlite(path)
    db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", (LATEST + 1,))
    db.close()
    with pytest.raises(DatabaseTooNew, match=f"schema version {LATEST + 1}, newer than this build knows"):
        open_sqlite(path)


def test_versions_must_follow_each_other() -> None:
    db = connect_sqlite(":memory:")
    with pytest.raises(ValueError, match="1, 2, 3"):
        migrate(db, (MIGRATIONS[1],))
    db.close()


def test_key_aliases_are_unique_but_may_be_absent() -> None:
    db = open_sqlite(":memory:")
    insert = "INSERT INTO keys (token, key_name, key_alias, created_at, updated_at) VALUES (?, 'sk-...x', ?, 0, 0)"
    db.execute(insert, ("t1", None))
    db.execute(insert, ("t2", None))
    db.execute(insert, ("t3", "ci"))
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(insert, ("t4", "ci"))
    db.close()


def test_serve_stops_at_start_with_one_line_when_the_database_cannot_be_migrated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway_trio import cli

    path = tmp_path / "future.db"
    db = open_sqlite(str(path))
    db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", (LATEST + 7,))
    db.close()
    config = tmp_path / "gateway.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{path}"\n')
    monkeypatch.setattr("gateway_trio.runtime.logs.configure_logging", lambda level, log_format="text": None)
    assert cli.main(["serve", "--config", str(config)]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {config}: database.url: the database is at schema version {LATEST + 7}")


def test_the_spend_log_has_a_column_for_every_record_field() -> None:
    from gateway_trio.spend.store import COLUMNS

    db = open_sqlite(":memory:")
    assert set(columns(db, "spend_logs")) == set(COLUMNS)  # in the table's order: the store names its columns
    db.close()
