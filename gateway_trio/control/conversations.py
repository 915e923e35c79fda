"""The Responses API's stored conversations, for deployments that keep none (SPEC §4).

OpenAI keeps every response (unless `store: false`) so a follow-up may send only its new
input and `previous_response_id`.  Anthropic, the mock and other chat-only deployments keep
nothing, so the gateway keeps it for them: per answer, the whole conversation up to it (its
input items, then its output items, as Responses items), keyed by the response id the client
was given, with who made it (key hash, team) and when it expires.

Here because the control plane owns the database (`control.database`), and who may read a
row is a question of keys and teams.  A follow-up can come the moment the answer has gone
out, before any write could land: `keep` is synchronous and puts the row in a small
in-memory cache at once (and in `pending` until written); one writer task writes batches
through a worker thread under the shared connection's limiter, and prunes what expired or
exceeds the cap.  `recall` reads the cache, then the database on a miss (another worker's
answer, or one from before a restart).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from gateway_trio.config import ResponsesConfig
from gateway_trio.control.database import SharedDatabase
from gateway_trio.control.records import Tenant
from gateway_trio.runtime import turns
from gateway_trio.spend.store import BEGIN_WRITE

log = logging.getLogger(__name__)

T = TypeVar("T")

RECENT_ENTRIES = 4096  # rows the in-memory cache holds at most...
RECENT_BYTES = 64 << 20  # ...and bytes of JSON, whichever is reached first
MAX_PENDING = 4096  # rows waiting for the writer; past it a row is kept in memory only (counted)
PRUNE_INTERVAL_S = 60.0
WRITE_RETRY_S = 1.0  # after a failed write, the wait before the next try
# A miss is read once more after this long: with several workers, the answer a follow-up
# continues may have been given by another one whose writer is a few milliseconds behind.
MISS_REREAD_S = 0.1
PRUNE_BATCH = 1000  # rows over the cap removed per statement

_COLUMNS = (
    "response_id",
    "model_group",
    "deployment_id",
    "api_key_hash",
    "team_id",
    "items",
    "response",
    "size_bytes",
    "created_at",
    "expires_at",
)
_INSERT = (
    f"INSERT INTO response_states ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT (response_id) DO NOTHING"
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM response_states WHERE response_id = ?"
_DELETE = "DELETE FROM response_states WHERE response_id = ?"
_DELETE_EXPIRED = "DELETE FROM response_states WHERE expires_at <= ?"
_COUNT = "SELECT count(*) FROM response_states"
_OLDEST = "SELECT response_id FROM response_states ORDER BY created_at, response_id LIMIT ?"


@dataclass(frozen=True, slots=True)
class Owner:
    """Who made a stored response: its key's hash and team (None for the master key, or a
    caller without a key when the gateway has no master key)."""

    api_key_hash: str | None
    team_id: str | None

    @classmethod
    def of(cls, tenant: Tenant | None) -> Owner:
        if tenant is None:
            return cls(None, None)
        return cls(tenant.key.token, tenant.key.team_id)

    def may_read(self, stored: Owner) -> bool:
        """The same key, or a key of the same team: as OpenAI keeps responses per project."""
        if self.api_key_hash == stored.api_key_hash:
            return True
        return self.team_id is not None and self.team_id == stored.team_id


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored response: `items` is the JSON array of the conversation's Responses items,
    `response` the Response object the client was given (JSON; for `GET /v1/responses/{id}`)."""

    response_id: str
    model_group: str | None
    deployment_id: str | None
    owner: Owner
    items: bytes
    response: bytes
    created_at: float
    expires_at: float

    @property
    def size(self) -> int:
        return len(self.items) + len(self.response)

    def row(self) -> tuple[Any, ...]:
        return (
            self.response_id,
            self.model_group,
            self.deployment_id,
            self.owner.api_key_hash,
            self.owner.team_id,
            self.items.decode(),
            self.response.decode(),
            self.size,
            self.created_at,
            self.expires_at,
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StoredResponse:
        response_id, model_group, deployment_id, key_hash, team_id, items, response, _, created_at, expires_at = row
        return cls(
            response_id,
            model_group,
            deployment_id,
            Owner(key_hash, team_id),
            items.encode(),
            response.encode(),
            float(created_at),
            float(expires_at),
        )


# --- the blocking statements (run in a worker thread, under the connection's limiter) ----------


def insert_rows(db: sqlite3.Connection, states: Iterable[StoredResponse]) -> None:
    db.execute(BEGIN_WRITE)
    try:
        db.executemany(_INSERT, [state.row() for state in states])
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def select_row(db: sqlite3.Connection, response_id: str) -> StoredResponse | None:
    row = db.execute(_SELECT, (response_id,)).fetchone()
    return StoredResponse.from_row(row) if row is not None else None


def delete_row(db: sqlite3.Connection, response_id: str) -> None:
    db.execute(BEGIN_WRITE)
    try:
        db.execute(_DELETE, (response_id,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def prune_rows(db: sqlite3.Connection, now: float, max_rows: int) -> list[str]:
    """Delete what expired, then the oldest rows past `max_rows`; the ids of the latter."""
    db.execute(BEGIN_WRITE)
    try:
        db.execute(_DELETE_EXPIRED, (now,))
        removed: list[str] = []
        excess = db.execute(_COUNT).fetchone()[0] - max_rows
        while excess > 0:
            ids = [row[0] for row in db.execute(_OLDEST, (min(excess, PRUNE_BATCH),))]
            if not ids:
                break
            db.execute(f"DELETE FROM response_states WHERE response_id IN ({', '.join('?' for _ in ids)})", ids)
            removed.extend(ids)
            excess -= len(ids)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return removed


# --- the async store ------------------------------------------------------------------------


class ConversationStore:
    """Stored Responses conversations: `keep` (synchronous, at a call's end), `recall` (async),
    and `run`, the writer task, started in the gateway's nursery once the database is open.

    `clock` is wall time (rows outlive the process); tests may replace it.
    """

    def __init__(
        self, config: ResponsesConfig, database: SharedDatabase, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.database = database
        self.clock = clock
        self.recent: OrderedDict[str, StoredResponse] = OrderedDict()
        self._recent_bytes = 0
        self.pending: dict[str, StoredResponse] = {}
        self._wake_send, self._wake = trio.open_memory_channel[None](1)
        self._last_prune = float("-inf")
        # For /metrics and the logs: rows too large to keep, rows kept in memory only, write failures.
        self.too_large = 0
        self.unwritten = 0
        self.write_failures = 0

    def stored(
        self,
        response_id: str,
        model_group: str | None,
        deployment_id: str | None,
        owner: Owner,
        items: bytes,
        response: bytes = b"{}",
    ) -> StoredResponse:
        now = self.clock()
        expires_at = now + self.config.store_ttl_s
        return StoredResponse(response_id, model_group, deployment_id, owner, items, response, now, expires_at)

    def keep(self, state: StoredResponse) -> bool:
        """Keep `state` now (for a follow-up that comes at once) and have it written; False if
        it is larger than `max_stored_kb`.  Synchronous: the pipeline calls it at a call's end."""
        if state.size > self.config.max_stored_bytes:
            self.too_large += 1
            log.warning(
                "response %s not stored: its conversation is %d bytes, over [responses] max_stored_kb",
                state.response_id,
                state.size,
            )
            return False
        self._remember(state)
        if len(self.pending) >= MAX_PENDING:
            self.unwritten += 1  # served from memory while it lasts; the database is behind
        else:
            self.pending[state.response_id] = state
            try:
                self._wake_send.send_nowait(None)
            except trio.WouldBlock:
                pass  # the writer is already due to wake
        return True

    async def recall(self, response_id: str, reader: Owner) -> StoredResponse | None:
        """The stored response `response_id` if `reader` may continue it and it has not expired."""
        state = self.pending.get(response_id) or self.recent.get(response_id)
        if response_id in self.recent:
            self.recent.move_to_end(response_id)
        if state is None and self.database.is_open:
            state = await self._in_thread(select_row, response_id)
            if state is None:
                await trio.sleep(MISS_REREAD_S)
                state = await self._in_thread(select_row, response_id)
            if state is not None:
                self._remember(state)
        if state is None or state.expires_at <= self.clock() or not reader.may_read(state.owner):
            return None
        return state

    async def delete(self, response_id: str, reader: Owner) -> bool:
        """Delete the stored response if `reader` may read it (`DELETE /v1/responses/{id}`); whether it did."""
        if await self.recall(response_id, reader) is None:
            return False
        self.pending.pop(response_id, None)
        self._forget(response_id)
        if self.database.is_open:
            await self._in_thread(delete_row, response_id)
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer: writes what is pending in batches, and prunes every `PRUNE_INTERVAL_S`."""
        task_status.started()
        while True:
            if not self.pending:  # rows a failed write left are retried without a new wake
                with trio.move_on_after(PRUNE_INTERVAL_S):
                    await self._wake.receive()
            try:
                await self.flush()
            except Exception as error:  # noqa: BLE001 - whatever the driver raises: the rows stay pending
                self.write_failures += 1
                log.warning("stored responses not written yet (%s: %s); retrying", type(error).__name__, error)
                await trio.sleep(WRITE_RETRY_S)

    async def flush(self) -> None:
        """Write every pending row now, and prune when due (the writer's step; at shutdown, the last)."""
        if not self.database.is_open:
            return
        if self.pending:
            batch = list(self.pending.values())
            await self._in_thread(insert_rows, batch)
            for state in batch:
                if self.pending.get(state.response_id) is state:
                    del self.pending[state.response_id]
        if self.clock() - self._last_prune >= PRUNE_INTERVAL_S:
            await self.prune()

    async def drain(self) -> None:
        """At shutdown: write what is pending; a database that fails now loses those rows, logged."""
        try:
            await self.flush()
        except Exception as error:  # noqa: BLE001 - the shutdown goes on whatever the driver raised
            log.warning(
                "%d stored responses not written at shutdown (%s: %s)", len(self.pending), type(error).__name__, error
            )

    async def prune(self) -> None:
        """Remove what expired, and the oldest rows past `max_stored` (from memory too)."""
        now = self.clock()
        removed = await self._in_thread(prune_rows, now, self.config.max_stored)
        self._last_prune = now
        for response_id in removed:
            self._forget(response_id)
        for response_id in [rid for rid, state in self.recent.items() if state.expires_at <= now]:
            self._forget(response_id)

    def _remember(self, state: StoredResponse) -> None:
        self._forget(state.response_id)
        self.recent[state.response_id] = state
        self._recent_bytes += state.size
        while len(self.recent) > RECENT_ENTRIES or self._recent_bytes > RECENT_BYTES:
            _, oldest = self.recent.popitem(last=False)
            self._recent_bytes -= oldest.size

    def _forget(self, response_id: str) -> None:
        old = self.recent.pop(response_id, None)
        if old is not None:
            self._recent_bytes -= old.size

    async def _in_thread(self, statement: Callable[..., T], *args: Any) -> T:
        connection = self.database.connection
        async with turns.off_turn():  # a wait outside the process gives the CPU turn back
            return await trio.to_thread.run_sync(
                functools.partial(statement, connection, *args), limiter=self.database.limiter
            )
