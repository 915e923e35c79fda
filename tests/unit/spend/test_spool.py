"""The spend writer over each database, and its spool while the database is away (SPEC §10)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
from postgres_server import PostgresServer

from gateway_trio.control.database import spend_store_opener
from gateway_trio.spend.records import GuardrailRun, SpendRecord
from gateway_trio.spend.spool import Spool, decode, encode
from gateway_trio.spend.writer import SpendWriter


def record(n: int, **changes: Any) -> SpendRecord:
    values: dict[str, Any] = {
        "call_id": f"call-{n:05d}",
        "call_type": "chat_completion",
        "stream": False,
        "status": "success",
        "start_time": 1000.0 + n,
        "end_time": 1000.5 + n,
        "api_key_hash": "hash",
        "model_group": "gpt",
        "cost": 0.001,
    }
    values.update(changes)
    return SpendRecord(**values)


async def count_rows(writer: SpendWriter) -> int:
    rows = await writer.report("model")
    return sum(row["requests"] for row in rows)


def test_a_record_survives_the_spool_as_it_was() -> None:
    original = record(
        1,
        guardrail_information=[GuardrailRun("g", "pre_call", "success", 1.0, 2.5, "ok")],
        tags=["a"],
        metadata={"k": [1, 2]},
        stream=True,
        cost=None,
        prompt_tokens=None,
    )
    assert decode(encode(original)) == original


async def test_the_writer_writes_each_record_once_on_each_database(database_url: str, nursery: trio.Nursery) -> None:
    writer = SpendWriter(spend_store_opener(database_url), flush_interval_s=0.05, batch_size=7)
    await nursery.start(writer.run)
    for n in range(50):
        writer.submit(record(n))
    writer.submit(record(3))  # the same call twice: one row
    await writer.flush()
    assert await count_rows(writer) == 50
    assert (await writer.query(call_id="call-00007"))[0]["cost"] == 0.001


async def test_spool_files_left_by_a_stopped_process_are_replayed_at_start(
    database_url: str, tmp_path: Path, nursery: trio.Nursery
) -> None:
    left = Spool(str(tmp_path / "spool"))
    left.own_file = str(tmp_path / "spool" / "spend-999999.jsonl")  # another process's file
    left.append([record(n) for n in range(20)])
    left.append([record(5)])  # spooled twice (a replay cut short, say): still one row
    spool = Spool(str(tmp_path / "spool"))
    writer = SpendWriter(spend_store_opener(database_url), flush_interval_s=0.05, batch_size=8, spool=spool)
    await nursery.start(writer.run)
    writer.submit(record(100))  # the writer's first turn replays, then writes this
    with trio.fail_after(20):
        while await count_rows(writer) < 21 or spool.has_files():
            await trio.sleep(0.05)
    assert await count_rows(writer) == 21
    assert os.listdir(tmp_path / "spool") == []


async def test_postgres_away_spools_past_the_bound_and_writes_all_once_when_back(
    postgres_server: PostgresServer, tmp_path: Path, nursery: trio.Nursery
) -> None:
    """Stop PostgreSQL with records arriving: the bounded queue fills, the rest goes to the spool
    file, nothing is dropped; once it is back every record is in the database exactly once."""
    url = postgres_server.create_database()
    spool = Spool(str(tmp_path / "spool"))
    writer = SpendWriter(spend_store_opener(url), flush_interval_s=0.1, batch_size=10, inbox_size=100, spool=spool)
    await nursery.start(writer.run)
    writer.submit(record(0))
    await writer.flush()
    await trio.to_thread.run_sync(postgres_server.stop)
    try:
        for n in range(1, 301):
            assert writer.submit(record(n))
            if n % 10 == 0:
                await trio.sleep(0.02)  # a steady load, as calls arrive
        with trio.fail_after(30):
            while spool.spooled == 0:
                await trio.sleep(0.05)
        assert writer.dropped == 0
    finally:
        await trio.to_thread.run_sync(postgres_server.start)
    with trio.fail_after(60):
        while True:
            try:
                if await count_rows(writer) == 301 and not spool.has_files():
                    break
            except sqlite3.Error:  # the first reads may meet connections the restart cut
                pass
            await trio.sleep(0.1)
    assert writer.dropped == 0
    assert writer.counters().replayed == spool.spooled > 0
    rows = await writer.query(limit=1000)
    assert len({row["call_id"] for row in rows}) == len(rows) == 301


async def test_at_shutdown_with_the_database_away_what_is_left_goes_to_the_spool(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    spool = Spool(str(tmp_path / "spool"))
    writer = SpendWriter(spend_store_opener(url), flush_interval_s=0.1, spool=spool, shutdown_timeout_s=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await trio.to_thread.run_sync(postgres_server.stop)
        try:
            for n in range(5):
                writer.submit(record(n))
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
        finally:
            pass
    try:
        assert (writer.dropped, spool.spooled) == (0, 5), (
            writer.counters(),
            len(writer._pending),
            writer._overflow,
            writer._spool,
        )
    finally:
        await trio.to_thread.run_sync(postgres_server.start)
    # The next start writes them.
    again = SpendWriter(spend_store_opener(url), flush_interval_s=0.05, spool=Spool(str(tmp_path / "spool")))
    async with trio.open_nursery() as nursery:
        await nursery.start(again.run)
        with trio.fail_after(30):
            while await count_rows(again) < 5:
                again.submit(record(99))
                await trio.sleep(0.1)
            again.submit(record(99))  # one call id however often: the spooled five and it, once
            while await count_rows(again) < 6:  # it may still be on its way when the five are in
                await trio.sleep(0.05)
        assert len(await again.query(limit=100)) == 6
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("line", [b"not json\n", b'{"call_id": 1, "unknown": 2}\n'])
def test_a_line_that_is_no_record_is_skipped(tmp_path: Path, line: bytes) -> None:
    spool = Spool(str(tmp_path))
    spool.append([record(1)])
    with open(spool.own_file, "ab") as file:
        file.write(line)
    spool.append([record(2)])
    [claimed] = spool.claim(stale_claims=False)
    records, _ = spool.read(claimed, 0, 10)
    assert [r.call_id for r in records] == ["call-00001", "call-00002"]
