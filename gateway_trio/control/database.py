"""Opening the database of `[database] url`: migrated to this build's schema before any use.

Every user of the database (the spend writer, the control store) opens it here, so no
connection is ever handed out before `control.schema.migrate` has run on it.  The spend wing
sits below the control plane and takes its store from here (`spend_store_opener`).

SQLite (`sqlite:///PATH`) is one sqlite3 connection; PostgreSQL (`postgresql://...`) is a
psycopg_pool pool behind sqlite3's face (`spend.postgres.PostgresConnection`), so the stores
and the migrations are the same code for both.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import trio

from gateway_trio.control.schema import Connection, migrate
from gateway_trio.spend.store import (
    PostgresSpendStore,
    SqliteSpendStore,
    connect_sqlite,
    is_postgres_url,
    sqlite_path,
)

if TYPE_CHECKING:  # psycopg is the `postgres` extra: imported when a postgresql url is opened
    from gateway_trio.spend.postgres import PostgresConnection

C = TypeVar("C", bound=Connection)

# A short-lived pool (migrations, `ControlStore.open`) needs few connections.
SMALL_POOL = 2
DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_TIMEOUT_S = 5.0


def open_sqlite(path: str) -> sqlite3.Connection:
    """A connection to the SQLite file at `path` (or `:memory:`), migrated (blocking)."""
    return _migrated(connect_sqlite(path))


def open_postgres(
    url: str,
    *,
    pool_size: int = SMALL_POOL,
    timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
    on_round_trip: Callable[[float, bool], None] | None = None,
) -> PostgresConnection:
    """A pool on the PostgreSQL database `url` names, migrated (blocking).

    Raises sqlite3.OperationalError when the server cannot be reached (the message names
    neither the url nor its password) and `SchemaError` when it cannot be migrated.
    """
    from gateway_trio.spend.postgres import PostgresConnection

    db = PostgresConnection(url, min_size=1, max_size=pool_size, timeout_s=timeout_s, on_round_trip=on_round_trip)
    db.open(timeout_s)
    return _migrated(db)


def _migrated(db: C) -> C:
    """`db` brought to this build's schema, or closed if it cannot be (the error raised)."""
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def open_database(url: str) -> Connection:
    """A migrated connection to the database `url` names (blocking).

    Raises `spend.store.UnsupportedDatabaseUrl` for a url this build cannot open and
    `control.schema.SchemaError` when the database cannot be brought to this schema.
    """
    if is_postgres_url(url):
        return open_postgres(url)
    return open_sqlite(sqlite_path(url))


def migrate_database(url: str) -> None:
    """Bring the database `url` names to this build's schema, then close it (blocking).

    `serve` runs it once before any worker starts, so a database that cannot be migrated is
    one line at start-up rather than a traceback from the first actor that opens it.
    """
    open_database(url).close()


def spend_store_opener(url: str) -> Callable[[], SqliteSpendStore]:
    """The spend writer's opener for `url`, checked now so a bad url fails at start-up, not later.

    `sqlite:///:memory:` is one database per connection: the spend store then has its own.
    """
    if is_postgres_url(url):
        return lambda: PostgresSpendStore(open_postgres(url))
    path = sqlite_path(url)
    return lambda: SqliteSpendStore(open_sqlite(path))


# Round-trip latency buckets (seconds) of `gateway_database_latency_seconds`.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DatabaseHealth:
    """Whether the database answered its last statement, its failures and round-trip times.

    Told by worker threads (`round_trip`), read by `/metrics`: a lock keeps the counts whole.
    """

    def __init__(self) -> None:
        self.up = False
        self.errors = 0
        self.buckets = [0] * len(LATENCY_BUCKETS)  # not cumulative: `cumulative()` sums them
        self.count = 0
        self.total_s = 0.0
        self._lock = threading.Lock()

    def round_trip(self, seconds: float, answered: bool) -> None:
        with self._lock:
            self.up = answered
            if not answered:
                self.errors += 1
            self.count += 1
            self.total_s += seconds
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.buckets[index] += 1
                    break

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus histogram buckets (`le`, count), `+Inf` last."""
        with self._lock:
            out, running = [], 0
            for bound, count in zip(LATENCY_BUCKETS, self.buckets):
                running += count
                out.append((repr(bound), running))
            out.append(("+Inf", self.count))
            return out


class SharedDatabase:
    """The database every user shares in this process, and the limiter on its threads.

    SQLite: one connection, not one per user (`sqlite:///:memory:` is a database per
    connection, and the spend totals the spend writer adds must land in the tables the control
    store reads); `limiter` lets one worker thread at a time use it.  PostgreSQL: one pool of
    `pool_size` connections, and a limiter of that size, so a thread never waits for a
    connection while holding a slot another could use.  Opened by the gateway before any
    user starts; building one opens nothing (check-config connects to no database).
    """

    def __init__(
        self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE, pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S
    ) -> None:
        self.url = url
        self.is_postgres = is_postgres_url(url)
        # A url this build cannot open fails here, at start-up.
        self.path = None if self.is_postgres else sqlite_path(url)
        self.pool_size = pool_size
        self.pool_timeout_s = pool_timeout_s
        self.limiter = trio.CapacityLimiter(pool_size if self.is_postgres else 1)
        self.health = DatabaseHealth()
        self._connection: Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._connection is not None

    @property
    def is_up(self) -> bool:
        """Open, and (PostgreSQL) its last statement was answered."""
        return self._connection is not None and (self.health.up or not self.is_postgres)

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the database is not open yet (SharedDatabase.open)")
        return self._connection

    async def open(self) -> Connection:
        if self._connection is None:
            self._connection = await trio.to_thread.run_sync(self._open_blocking, limiter=self.limiter)
        return self._connection

    def _open_blocking(self) -> Connection:
        if self.path is not None:
            return open_sqlite(self.path)
        db = open_postgres(
            self.url, pool_size=self.pool_size, timeout_s=self.pool_timeout_s, on_round_trip=self.health.round_trip
        )
        self.health.up = True
        return db

    def spend_store(self) -> SqliteSpendStore:
        """The spend writer's store over the shared connection (its opener)."""
        connection = self.connection
        if getattr(connection, "dialect", "sqlite") == "postgresql":
            return PostgresSpendStore(connection, owns_connection=False)
        return SqliteSpendStore(connection, owns_connection=False)

    async def aclose(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await trio.to_thread.run_sync(connection.close, limiter=self.limiter)
