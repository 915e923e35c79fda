"""The spend store (SQLite) and the spend writer actor that batches records into it."""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from gateway_trio.control.database import open_sqlite, spend_store_opener
from gateway_trio.spend.records import GuardrailRun, SpendRecord
from gateway_trio.spend.store import (
    COLUMNS,
    MAX_QUERY_LIMIT,
    Refused,
    SqliteSpendStore,
    UnsupportedDatabaseUrl,
    check_store,
    sqlite_path,
)
from gateway_trio.spend.writer import SpendWriter


def spend_store(path: Path | str) -> SqliteSpendStore:
    """A store over a migrated database at `path`, as the gateway opens one."""
    return SqliteSpendStore(open_sqlite(str(path)))


def open_store(url: str) -> SqliteSpendStore:
    return spend_store_opener(url)()

T0 = 1_700_000_000.0


def make_record(n: int, **changes: Any) -> SpendRecord:
    values: dict[str, Any] = dict(
        call_id=f"call-{n:04d}",
        call_type="chat_completion",
        stream=n % 2 == 0,
        status="success",
        start_time=T0 + n,
        end_time=T0 + n + 0.5,
        api_key_hash="hash-odd" if n % 2 else "hash-even",
        model_group="claude" if n % 3 == 0 else "gpt",
        prompt_tokens=n,
        completion_tokens=2 * n,
    )
    values.update(changes)
    return SpendRecord(**values)


def stored_ids(path: Path) -> list[str]:
    """Read the file with a connection of its own, as another process would."""
    with sqlite3.connect(path) as db:
        return sorted(row[0] for row in db.execute("SELECT call_id FROM spend_logs"))


class RecordingStore:
    """A real SQLite store that reports each write attempt to the test and can fail on cue."""

    def __init__(self, path: Path | str, *, fail_times: int = 0) -> None:
        self.inner = spend_store(path)
        self.fail_times = fail_times
        self.batch_sizes: list[int] = []
        # (trio time, batch size, succeeded) per attempt, sent from the worker thread.
        self.attempts_send, self.attempts = trio.open_memory_channel[tuple[float, int, bool]](100)

    def _report(self, size: int, ok: bool) -> None:
        self.attempts_send.send_nowait((trio.current_time(), size, ok))

    def write_batch(self, records: list[SpendRecord]) -> list[Refused]:
        if self.fail_times:
            self.fail_times -= 1
            trio.from_thread.run_sync(self._report, len(records), False)
            raise sqlite3.OperationalError("disk I/O error")
        refused = self.inner.write_batch(records)
        self.batch_sizes.append(len(records))
        trio.from_thread.run_sync(self._report, len(records), True)
        return refused

    def query(self, **filters: Any) -> list[dict[str, Any]]:
        return self.inner.query(**filters)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "spend.db"


# --- the store -----------------------------------------------------------------------------


def test_a_column_for_every_record_field() -> None:
    assert tuple(COLUMNS) == tuple(f.name for f in fields(SpendRecord))


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///gateway.db", "gateway.db"),
        ("sqlite:///data/spend.db", "data/spend.db"),
        ("sqlite:////abs/path.db", "/abs/path.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("SQLite:///x.db", "x.db"),
    ],
)
def test_sqlite_url_forms(url: str, path: str) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize("url", ["postgresql://gw:hunter2@db/spend", "postgres://gw:hunter2@db/spend"])
def test_postgres_urls_are_checked_without_connecting(url: str) -> None:
    check_store(url)  # "db" does not resolve here: a connection attempt would fail
    SpendWriter(spend_store_opener(url), 1.0)  # builds, opens nothing


def test_an_unreachable_postgres_fails_without_the_password() -> None:
    from gateway_trio.control.database import open_postgres

    with pytest.raises(sqlite3.OperationalError, match="cannot connect to PostgreSQL") as info:
        open_postgres("postgresql://gw:hunter2@127.0.0.1:1/spend", timeout_s=0.5)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("url", ["postgresql+asyncpg://gw:hunter2@db/x", "postgresql://gw:hunter2@db/x?bogus=1"])
def test_postgres_urls_this_build_cannot_open_are_refused_clearly(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseUrl) as info:
        check_store(url)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("url", ["mysql://db/x", "gateway.db", "sqlite://host/x.db", "sqlite:///"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseUrl):
        sqlite_path(url)


def test_relative_url_is_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///gateway.db")
    store.write_batch([make_record(1)])
    store.close()
    assert stored_ids(tmp_path / "gateway.db") == ["call-0001"]


def test_store_uses_wal_and_keeps_the_first_record_of_a_call_id(db_path: Path) -> None:
    store = spend_store(db_path)
    store.write_batch([make_record(1, status="failure")])
    store.write_batch([make_record(1, status="success", cost=0.25)])  # a re-sent record adds nothing
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {row[1] for row in db.execute("PRAGMA index_list(spend_logs)")}
    assert {"ix_spend_logs_start_time", "ix_spend_logs_model_group", "ix_spend_logs_api_key_hash",
            "ix_spend_logs_team_id", "ix_spend_logs_user_id", "ix_spend_logs_end_user"} <= indexes
    [row] = store.query()
    assert (row["status"], row["cost"]) == ("failure", None)
    store.close()


def refuse_call_two(path: Path) -> None:
    """A trigger that makes the database refuse one record, as a constraint would."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER refuse_two BEFORE INSERT ON spend_logs WHEN NEW.call_id = 'call-0002' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )


def test_a_record_the_database_refuses_is_refused_alone(db_path: Path) -> None:
    store = spend_store(db_path)
    refuse_call_two(db_path)
    refused = store.write_batch([make_record(1), make_record(2), make_record(3)])
    assert [(record.call_id, type(error)) for record, error in refused] == [("call-0002", sqlite3.IntegrityError)]
    assert stored_ids(db_path) == ["call-0001", "call-0003"]  # the rest of its batch is kept
    assert store.write_batch([make_record(4)]) == []  # and the connection is usable afterwards
    store.close()


def test_a_database_failure_is_raised_and_leaves_nothing_behind(db_path: Path) -> None:
    store = spend_store(db_path)
    store._db.execute("PRAGMA busy_timeout = 10")  # not the 5 s a busy worker gets
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another worker holds the write lock
    with pytest.raises(sqlite3.OperationalError):
        store.write_batch([make_record(1), make_record(2)])  # the writer retries this one later
    other.execute("ROLLBACK")
    other.close()
    assert stored_ids(db_path) == []  # one transaction: all or nothing
    assert store.write_batch([make_record(1), make_record(2)]) == []
    store.close()


def test_integers_sqlite_cannot_hold_never_fail_a_batch() -> None:
    store = spend_store(":memory:")
    poisoned = make_record(1, prompt_tokens=int(1e300), completion_tokens=2**64 - 1)
    assert store.write_batch([poisoned, make_record(2)]) == []
    rows = {row["call_id"]: row for row in store.query()}
    assert (rows["call-0001"]["prompt_tokens"], rows["call-0001"]["completion_tokens"]) == (None, None)
    assert rows["call-0002"]["prompt_tokens"] == 2
    store.close()


def test_limit_is_capped_and_must_be_positive() -> None:
    store = spend_store(":memory:")
    store.write_batch([make_record(n) for n in range(MAX_QUERY_LIMIT + 5)])
    assert len(store.query(limit=MAX_QUERY_LIMIT + 500)) == MAX_QUERY_LIMIT
    with pytest.raises(ValueError):
        store.query(limit=0)
    store.close()


def test_odd_values_never_fail_a_batch() -> None:
    store = spend_store(":memory:")
    record = make_record(1, metadata={"when": object(), 3: "non-str key", "big": 2**70}, key_alias=Path("x"))
    store.write_batch([record])  # a record that cannot be stored must not stall every later batch
    [row] = store.query()
    assert row["key_alias"] == "x"
    store.close()


# --- the writer ----------------------------------------------------------------------------


async def test_batches_are_written_and_every_filter_works(db_path: Path, autojump_clock, nursery) -> None:
    store = RecordingStore(db_path)
    writer = SpendWriter(lambda: store, flush_interval_s=60.0, batch_size=4)
    await nursery.start(writer.run)
    records = [make_record(n) for n in range(10)]
    before = trio.current_time()
    assert all(writer.submit(r) for r in records)
    await writer.flush()

    assert trio.current_time() - before < writer.flush_interval_s  # flush did not wait the interval out
    assert store.batch_sizes == [4, 4, 2]
    assert writer.written == 10
    assert stored_ids(db_path) == sorted(r.call_id for r in records)  # visible to other connections

    def ids(rows: list[dict[str, Any]]) -> list[str]:
        return [row["call_id"] for row in rows]

    newest_first = [r.call_id for r in reversed(records)]
    assert ids(await writer.query()) == newest_first
    assert await writer.query(call_id="call-0007") == [records[7].as_dict()]
    assert ids(await writer.query(api_key_hash="hash-odd")) == [i for i in newest_first if int(i[-4:]) % 2]
    assert ids(await writer.query(model="claude")) == ["call-0009", "call-0006", "call-0003", "call-0000"]
    assert ids(await writer.query(start=T0 + 7)) == ["call-0009", "call-0008", "call-0007"]
    assert ids(await writer.query(end=T0 + 2)) == ["call-0001", "call-0000"]
    assert ids(await writer.query(start=T0 + 2, end=T0 + 8, model="gpt")) == ["call-0007", "call-0005", "call-0004", "call-0002"]
    assert ids(await writer.query(limit=3)) == newest_first[:3]
    assert await writer.query(call_id="nope") == []


async def test_json_and_bool_fields_round_trip(nursery) -> None:
    writer = SpendWriter(spend_store_opener("sqlite:///:memory:"), flush_interval_s=1.0)
    await nursery.start(writer.run)
    record = make_record(
        5,
        stream=True,
        cache_hit=True,
        ttft_ms=12.5,
        cost=None,
        error="upstream said no",
        guardrail_information=[
            GuardrailRun("pii", "pre_call", "success", T0, 1.25),
            GuardrailRun("regex", "post_call", "blocked", T0 + 1, 0.5, detail="matched /secret/"),
        ],
        tags=["team:search", "ünïcode"],
        metadata={"user": "u-1", "nested": {"list": [1, 2.5, None, True]}},
    )
    writer.submit(record)
    await writer.flush()
    [row] = await writer.query(call_id=record.call_id)
    assert row == record.as_dict()
    assert row["stream"] is True and row["cache_hit"] is True


async def test_a_partial_batch_waits_for_the_interval_a_full_one_does_not(autojump_clock, nursery) -> None:
    store = RecordingStore(":memory:")
    writer = SpendWriter(lambda: store, flush_interval_s=5.0, batch_size=3)
    await nursery.start(writer.run)
    await trio.sleep(100)  # idle time does not count towards the interval
    first = trio.current_time()
    writer.submit(make_record(1))
    assert await store.attempts.receive() == (pytest.approx(first + 5.0), 1, True)
    # The write runs in a thread, which the clock does not wait for: let it end first, or the
    # next records would arrive while it is out and be written the moment it returns.
    while writer.written < 1:
        await trio.sleep(0.01)

    await trio.sleep(1)
    second = trio.current_time()
    for n in range(2, 5):
        writer.submit(make_record(n))
    assert await store.attempts.receive() == (second, 3, True)


async def test_flush_returns_at_once_when_nothing_is_pending(autojump_clock, nursery) -> None:
    writer = SpendWriter(spend_store_opener("sqlite:///:memory:"), flush_interval_s=5.0)
    await nursery.start(writer.run)
    before = trio.current_time()
    await writer.flush()
    assert trio.current_time() == before


async def test_flush_does_not_wait_out_the_interval(autojump_clock, nursery) -> None:
    writer = SpendWriter(spend_store_opener("sqlite:///:memory:"), flush_interval_s=60.0, batch_size=100)
    await nursery.start(writer.run)
    writer.submit(make_record(1))
    await trio.testing.wait_all_tasks_blocked()  # the actor holds the record, waiting for more
    before = trio.current_time()
    await writer.flush()
    assert trio.current_time() - before < writer.flush_interval_s
    assert writer.written == 1


async def test_full_inbox_drops_and_counts(db_path: Path, caplog: pytest.LogCaptureFixture, nursery) -> None:
    writer = SpendWriter(spend_store_opener(f"sqlite:///{db_path}"), flush_interval_s=1.0, batch_size=2, inbox_size=3)
    with caplog.at_level(logging.WARNING, logger="gateway_trio.spend.writer"):
        accepted = [writer.submit(make_record(n)) for n in range(5)]  # actor not running yet
    assert accepted == [True, True, True, False, False]
    assert writer.dropped == 2
    assert any("dropped" in message for message in caplog.messages)

    await nursery.start(writer.run)
    await writer.flush()  # waits only for the accepted three
    assert writer.written == 3
    assert stored_ids(db_path) == ["call-0000", "call-0001", "call-0002"]


async def test_a_failed_write_is_retried_next_interval(db_path: Path, caplog: pytest.LogCaptureFixture, autojump_clock, nursery) -> None:
    store = RecordingStore(db_path, fail_times=1)
    writer = SpendWriter(lambda: store, flush_interval_s=2.0, batch_size=3)
    await nursery.start(writer.run)
    for n in range(3):
        writer.submit(make_record(n))
    await writer.flush()

    failed_at, size, ok = await store.attempts.receive()
    assert (size, ok) == (3, False)
    assert await store.attempts.receive() == (pytest.approx(failed_at + 2.0), 3, True)
    assert (writer.failed_writes, writer.written, writer.dropped) == (1, 3, 0)
    assert stored_ids(db_path) == ["call-0000", "call-0001", "call-0002"]
    assert any("failed" in message for message in caplog.messages)


async def test_a_refused_record_is_counted_and_logged_never_retried(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Real clock: the writes run in a worker thread.
    store = RecordingStore(db_path)
    refuse_call_two(db_path)
    writer = SpendWriter(lambda: store, flush_interval_s=0.05, batch_size=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for n in range(5):
            writer.submit(make_record(n))
        with trio.fail_after(5):
            await writer.flush()  # not held up behind the refused record
        writer.submit(make_record(5))
        with trio.fail_after(5):
            await writer.flush()
        nursery.cancel_scope.cancel()
    assert (writer.written, writer.unwritable, writer.dropped, writer.failed_writes) == (5, 1, 0, 0)
    assert stored_ids(db_path) == ["call-0000", "call-0001", "call-0003", "call-0004", "call-0005"]
    assert store.batch_sizes == [5, 1]  # the refused one was tried once, never again
    assert any("call-0002" in message and "not retried" in message for message in caplog.messages)


async def test_while_the_store_fails_pending_is_bounded_keeping_the_newest(db_path: Path, autojump_clock, nursery) -> None:
    store = RecordingStore(db_path, fail_times=1)
    writer = SpendWriter(lambda: store, flush_interval_s=2.0, batch_size=4, inbox_size=4)
    await nursery.start(writer.run)
    for n in range(4):
        writer.submit(make_record(n))
    assert (await store.attempts.receive())[1:] == (4, False)
    for n in range(4, 7):
        writer.submit(make_record(n))
    await writer.flush()
    assert (writer.failed_writes, writer.dropped, writer.written) == (1, 3, 4)
    assert stored_ids(db_path) == ["call-0003", "call-0004", "call-0005", "call-0006"]


async def test_cancelling_the_actor_writes_everything_first(db_path: Path) -> None:
    # Real clock: the final write is bounded by a deadline, and an autojump clock would jump
    # to it while the write runs in its thread.
    writer = SpendWriter(spend_store_opener(f"sqlite:///{db_path}"), flush_interval_s=3600.0, batch_size=1000)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for n in range(300):
            writer.submit(make_record(n))
        await trio.testing.wait_all_tasks_blocked()  # the actor holds these, waiting for more
        for n in range(300, 500):
            writer.submit(make_record(n))  # these are still in its inbox
        assert writer.written == 0 and stored_ids(db_path) == []
        nursery.cancel_scope.cancel()

    assert len(stored_ids(db_path)) == 500
    assert (writer.written, writer.dropped) == (500, 0)
    assert writer.submit(make_record(999)) is False  # after shutdown: counted, not lost unseen
    assert writer.dropped == 1


async def test_shutdown_is_bounded_when_the_store_hangs(autojump_clock, caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    class HangingStore(RecordingStore):
        def write_batch(self, records: list[SpendRecord]) -> None:
            release.wait(timeout=30)  # real seconds: only a safety net if the test breaks

    writer = SpendWriter(lambda: HangingStore(":memory:"), flush_interval_s=3600.0, shutdown_timeout_s=5.0)
    try:
        before = trio.current_time()
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            for n in range(3):
                writer.submit(make_record(n))
            nursery.cancel_scope.cancel()
        assert trio.current_time() - before < 10.0
        assert (writer.written, writer.dropped) == (0, 3)
        assert any("before 3 records were written" in message for message in caplog.messages)
    finally:
        release.set()


async def test_memory_database_and_query_before_start(nursery) -> None:
    writer = SpendWriter(spend_store_opener("sqlite:///:memory:"), flush_interval_s=1.0)
    with pytest.raises(RuntimeError):
        await writer.query()
    await nursery.start(writer.run)
    writer.submit(make_record(1))
    writer.submit(make_record(3))
    await writer.flush()
    assert [row["call_id"] for row in await writer.query(model="claude")] == ["call-0003"]
    assert len(await writer.query()) == 2
