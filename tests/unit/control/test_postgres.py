"""PostgreSQL as the database: the same schema and migrations as SQLite, sqlite3's face, its faults."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
import trio
from postgres_server import PostgresServer

from gateway_trio.control.database import open_postgres, open_sqlite
from gateway_trio.control.schema import LATEST, MIGRATIONS, DatabaseTooNew, Migration, MigrationFailed, migrate
from gateway_trio.control.store import ControlStore, DatabaseUnavailable, Store
from gateway_trio.spend.postgres import PostgresConnection, translate


def pg_columns(db: Any, table: str) -> list[str]:
    sql = "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position"
    return [row[0] for row in db.execute(sql, (table,))]


def pg_tables(db: Any) -> set[str]:
    sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    return {row[0] for row in db.execute(sql)}


def versions(db: Any) -> list[int]:
    return [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY version")]


@pytest.fixture
def url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()


def test_statements_are_translated_once_to_psycopg_placeholders() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE '5%'") == "SELECT a FROM t WHERE b = %s AND c LIKE '5%%'"
    assert translate("BEGIN IMMEDIATE") == "BEGIN"
    assert translate("SELECT ?") is translate("SELECT ?")  # cached


def test_the_same_migrations_give_the_same_tables_and_columns_as_sqlite(url: str) -> None:
    lite = open_sqlite(":memory:")
    db = open_postgres(url)
    try:
        lite_tables = {row[0] for row in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert pg_tables(db) == lite_tables
        for table in lite_tables:
            assert pg_columns(db, table) == [row[1] for row in lite.execute(f"PRAGMA table_info({table})")], table
        assert versions(db) == list(range(1, LATEST + 1))
        types = dict(
            db.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'spend_logs'"
            ).fetchall()
        )
        assert types["cost"] == types["start_time"] == "double precision"  # never PostgreSQL's 4-byte REAL
    finally:
        db.close()
        lite.close()


def test_running_again_is_a_no_op_and_a_newer_database_is_refused(url: str) -> None:
    open_postgres(url).close()
    db = open_postgres(url)
    assert versions(db) == list(range(1, LATEST + 1))
    db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", (LATEST + 1,))
    db.close()
    with pytest.raises(DatabaseTooNew):
        open_postgres(url)


def test_a_failing_step_changes_nothing(url: str) -> None:
    db = PostgresConnection(url, max_size=2)
    db.open()
    try:
        migrate(db, MIGRATIONS[:1])
        db.execute("INSERT INTO spend_logs (call_id, cost) VALUES ('kept', 1.0)")
        broken = Migration(
            2,
            "a step that breaks halfway",
            (
                "ALTER TABLE spend_logs ADD COLUMN team_id TEXT",
                "CREATE TABLE half (x TEXT)",
                "CREATE TABLE spend_logs (x TEXT)",
            ),
        )
        with pytest.raises(MigrationFailed, match="still at version 1"):
            migrate(db, (MIGRATIONS[0], broken))
        assert versions(db) == [1] and "half" not in pg_tables(db)
        assert "team_id" not in pg_columns(db, "spend_logs")
        assert not db.in_transaction
        assert migrate(db) == LATEST
    finally:
        db.close()


def test_a_later_migration_in_the_shared_sql_runs_on_postgres_too(url: str) -> None:
    """What a later step (a table of its own, an index, a new column) is written in works on both."""
    step = Migration(
        LATEST + 1,
        "a table of a later release",
        (
            (
                "CREATE TABLE later_state (id TEXT PRIMARY KEY, body TEXT NOT NULL, "
                "created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION)"
            ),
            "CREATE INDEX ix_later_state_expires_at ON later_state (expires_at)",
            "ALTER TABLE keys ADD COLUMN later_flag INTEGER NOT NULL DEFAULT 0",
        ),
    )
    for db in (open_sqlite(":memory:"), open_postgres(url)):
        try:
            assert migrate(db, (*MIGRATIONS, step)) == LATEST + 1
            db.execute("INSERT INTO later_state (id, body, created_at) VALUES (?, ?, ?)", ("r1", "{}", 1.5))
            assert db.execute("SELECT body, created_at FROM later_state WHERE id = ?", ("r1",)).fetchone() == (
                "{}",
                1.5,
            )
        finally:
            db.close()


def test_instances_starting_at_once_migrate_once(url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        barrier.wait()
        try:
            open_postgres(url).close()
        except BaseException as error:  # noqa: BLE001 - reported by the assert below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db = open_postgres(url)
    assert versions(db) == list(range(1, LATEST + 1))  # each once (the version is the primary key)
    db.close()


def test_a_unique_alias_is_a_clear_400_on_postgres_too(url: str) -> None:
    from dataclasses import replace

    from gateway_trio.control.records import KeyRecord
    from gateway_trio.control.secrets import hash_key, key_name, new_key
    from gateway_trio.control.store import AlreadyExists

    def a_key() -> KeyRecord:
        secret = new_key()
        return replace(KeyRecord(token=hash_key(secret), key_name=key_name(secret)), key_alias="ci")

    store = ControlStore(open_postgres(url))
    try:
        store.insert_key(a_key())
        with pytest.raises(AlreadyExists, match="key_alias 'ci'"):
            store.insert_key(a_key())
        assert not store._db.in_transaction  # rolled back, the connection back in the pool
        assert store.list_keys().total_count == 1
    finally:
        store.close()


async def test_the_database_away_is_a_503_and_back_it_answers_again(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    blocking = ControlStore(await trio.to_thread.run_sync(lambda: open_postgres(url, timeout_s=1.0)))
    store = Store(blocking, limiter=trio.CapacityLimiter(2))
    try:
        assert await store.get_key("0" * 64) is None
        await trio.to_thread.run_sync(postgres_server.stop)
        try:
            with pytest.raises(DatabaseUnavailable) as info:
                await store.get_key("0" * 64)
            assert info.value.status == 503 and info.value.openai_body()["error"]["type"] == "service_unavailable_error"
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        finally:
            await trio.to_thread.run_sync(postgres_server.start)
        # The pool replaces the connections the restart cut: the next calls are answered.
        with trio.fail_after(30):
            while True:
                try:
                    assert await store.get_key("0" * 64) is None
                    break
                except DatabaseUnavailable:
                    await trio.sleep(0.2)
    finally:
        await store.aclose()


def test_check_config_with_a_postgresql_url_connects_to_nothing(tmp_path, capsys) -> None:
    import select
    import socket

    from gateway_trio.cli import main

    with socket.create_server(("127.0.0.1", 0)) as listener:  # the "database server"
        port = listener.getsockname()[1]
        config = tmp_path / "gw.toml"
        config.write_text(
            '[[models]]\nname = "a"\nmodel = "mock/a"\n'
            f'[database]\nurl = "postgresql://gw:hunter2@127.0.0.1:{port}/gateway"\npool_size = 4\n'
        )
        code = main(["check-config", str(config)])
        nobody_called = not select.select([listener], [], [], 0.2)[0]
    assert code == 0, capsys.readouterr()
    assert nobody_called
    assert "hunter2" not in capsys.readouterr().out


def test_serve_with_postgresql_away_stops_with_one_line_without_the_password(tmp_path) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    config = tmp_path / "gw.toml"
    config.write_text(
        '[[models]]\nname = "a"\nmodel = "mock/a"\n'
        f'[database]\nurl = "postgresql://gw:hunter2@127.0.0.1:{port}/gateway"\n'
    )
    served = subprocess.run(
        [sys.executable, "-m", "gateway_trio", "serve", "--config", str(config), "--port", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert served.returncode == 1
    lines = [line for line in served.stderr.splitlines() if "database.url" in line]
    assert lines and "cannot connect to PostgreSQL" in lines[0], served.stderr
    assert "hunter2" not in served.stderr and "Traceback" not in served.stderr


def test_missing_binaries_skip_but_fail_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from postgres_server import missing

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        missing("no initdb")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no initdb"):
        missing("no initdb")
