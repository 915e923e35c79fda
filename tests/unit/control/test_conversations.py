"""The stored Responses conversations: found at once (before any write), written behind, read
back on a miss, refused to other keys and after their TTL, pruned to the cap, and a database
that fails keeps what is pending until it is back."""

from __future__ import annotations

import sqlite3

import orjson
import pytest
import trio

from gateway_trio.config import ResponsesConfig
from gateway_trio.control import conversations
from gateway_trio.control.conversations import ConversationStore, Owner
from gateway_trio.control.database import SharedDatabase

ALICE = Owner("a" * 64, None)
BOB = Owner("b" * 64, None)
TEAM_ONE = Owner("c" * 64, "team")
TEAM_TWO = Owner("d" * 64, "team")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def database():
    shared = SharedDatabase("sqlite:///:memory:")
    await shared.open()
    yield shared
    await shared.aclose()


def store_of(database, clock=None, **config) -> ConversationStore:
    return ConversationStore(ResponsesConfig(**config), database, clock=clock or Clock())


def items(text: str) -> bytes:
    return orjson.dumps([{"type": "message", "role": "user", "content": text}])


def rows(database) -> list[str]:
    return [r[0] for r in database.connection.execute("SELECT response_id FROM response_states ORDER BY response_id")]


async def test_a_kept_response_is_found_before_it_is_written_then_read_back_from_the_database(database):
    store = store_of(database)
    assert store.keep(store.stored("resp_1", "g", "d", ALICE, items("hi")))
    assert rows(database) == []  # not written yet...
    assert (await store.recall("resp_1", ALICE)).items == items("hi")  # ...and found all the same
    await store.flush()
    assert rows(database) == ["resp_1"] and not store.pending
    fresh = store_of(database)  # another worker, or after a restart: nothing in memory
    found = await fresh.recall("resp_1", ALICE)
    assert (found.items, found.model_group, found.deployment_id, found.owner) == (items("hi"), "g", "d", ALICE)


async def test_only_the_same_key_or_team_may_read_it(database):
    store = store_of(database)
    store.keep(store.stored("resp_a", None, None, ALICE, items("a")))
    store.keep(store.stored("resp_t", None, None, TEAM_ONE, items("t")))
    store.keep(store.stored("resp_m", None, None, Owner(None, None), items("m")))
    assert await store.recall("resp_a", BOB) is None and await store.recall("resp_a", Owner(None, None)) is None
    assert await store.recall("resp_t", TEAM_TWO) is not None and await store.recall("resp_t", ALICE) is None
    assert await store.recall("resp_m", ALICE) is None and await store.recall("resp_m", Owner(None, None)) is not None


async def test_it_expires_after_its_ttl_and_is_pruned(database):
    clock = Clock()
    store = store_of(database, clock, store_ttl_s=10)
    store.keep(store.stored("resp_old", None, None, ALICE, items("old")))
    await store.flush()
    clock.now += 10
    store.keep(store.stored("resp_new", None, None, ALICE, items("new")))
    assert await store.recall("resp_old", ALICE) is None
    await store.flush()
    await store.prune()
    assert rows(database) == ["resp_new"] and "resp_old" not in store.recent


async def test_the_oldest_past_the_cap_go_from_the_database_and_from_memory(database):
    clock = Clock()
    store = store_of(database, clock, max_stored=2)
    for n in range(4):
        clock.now += 1
        store.keep(store.stored(f"resp_{n}", None, None, ALICE, items(str(n))))
    await store.flush()
    await store.prune()
    assert rows(database) == ["resp_2", "resp_3"]
    assert await store.recall("resp_0", ALICE) is None and await store.recall("resp_3", ALICE) is not None


async def test_too_large_is_refused_and_counted(database):
    store = store_of(database, max_stored_kb=1)
    assert not store.keep(store.stored("resp_big", None, None, ALICE, items("x" * 2000)))
    assert store.too_large == 1 and await store.recall("resp_big", ALICE) is None


async def test_the_memory_cache_is_bounded(database, monkeypatch):
    monkeypatch.setattr(conversations, "RECENT_ENTRIES", 3)
    store = store_of(database)
    for n in range(5):
        store.keep(store.stored(f"resp_{n}", None, None, ALICE, items(str(n))))
    assert list(store.recent) == ["resp_2", "resp_3", "resp_4"]
    await store.flush()  # evicted from memory, still in the database
    assert (await store.recall("resp_0", ALICE)).items == items("0")


async def test_a_failing_database_keeps_the_rows_pending_until_it_is_back(database, monkeypatch):
    # Real time: the writer waits on a worker thread, which an autojump clock would jump past.
    monkeypatch.setattr(conversations, "WRITE_RETRY_S", 0.01)
    store = store_of(database)
    real = conversations.insert_rows
    calls = []

    def failing_once(db, states):
        calls.append(len(states))
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        real(db, states)

    monkeypatch.setattr(conversations, "insert_rows", failing_once)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        store.keep(store.stored("resp_1", None, None, ALICE, items("hi")))
        with trio.fail_after(5):
            while store.pending:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert calls[:2] == [1, 1] and store.write_failures == 1
    assert rows(database) == ["resp_1"] and not store.pending


async def test_a_miss_is_read_once_more_for_a_write_another_worker_is_finishing(database, monkeypatch):
    other = store_of(database)  # another worker's store, over the same database
    state = other.stored("resp_elsewhere", None, None, ALICE, items("hi"))
    real = conversations.select_row
    reads = []

    def select_then_land(db, response_id):
        reads.append(response_id)
        found = real(db, response_id)
        if len(reads) == 1:
            conversations.insert_rows(db, [state])  # the other worker's write lands just after the first read
        return found

    monkeypatch.setattr(conversations, "select_row", select_then_land)
    store = store_of(database)
    assert (await store.recall("resp_elsewhere", ALICE)).items == items("hi")
    assert reads == ["resp_elsewhere", "resp_elsewhere"]
    assert await store.recall("resp_never", ALICE) is None


async def test_draining_at_shutdown_survives_a_failing_database(database, monkeypatch, caplog):
    def failing(db, states):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(conversations, "insert_rows", failing)
    store = store_of(database)
    store.keep(store.stored("resp_1", None, None, ALICE, items("hi")))
    await store.drain()  # logged, not raised: the shutdown goes on
    assert list(store.pending) == ["resp_1"] and "not written at shutdown" in caplog.text
