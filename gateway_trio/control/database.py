"""Opening the database of `[database] url`: one connection, migrated to this build's schema.

Every user of the database (the spend writer, the control store) opens it here, so no
connection is ever handed out before `control.schema.migrate` has run on it.  The spend wing
sits below the control plane and takes its connection from here (`spend_store_opener`).
Only SQLite exists today; the url forms are those `spend.store.sqlite_path` reads.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

import trio

from gateway_trio.control.schema import migrate
from gateway_trio.spend.store import SqliteSpendStore, connect_sqlite, sqlite_path


def open_sqlite(path: str) -> sqlite3.Connection:
    """A connection to the SQLite file at `path` (or `:memory:`), migrated (blocking)."""
    db = connect_sqlite(path)
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def open_database(url: str) -> sqlite3.Connection:
    """A migrated connection to the database `url` names (blocking).

    Raises `spend.store.UnsupportedDatabaseUrl` for a url this build cannot open and
    `control.schema.SchemaError` when the database cannot be brought to this schema.
    """
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
    path = sqlite_path(url)
    return lambda: SqliteSpendStore(open_sqlite(path))


class SharedDatabase:
    """The one connection every user of the database shares in this process, and its lock.

    One connection, not one per user: `sqlite:///:memory:` is a database per connection, and
    the spend totals the spend writer adds must land in the tables the control store reads.
    `limiter` lets one worker thread at a time use the connection; every user runs its
    blocking calls under it.  Opened by the gateway before any of them starts.
    """

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)  # a url this build cannot open fails here, at start-up
        self.limiter = trio.CapacityLimiter(1)
        self._connection: sqlite3.Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._connection is not None

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError("the database is not open yet (SharedDatabase.open)")
        return self._connection

    async def open(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = await trio.to_thread.run_sync(open_sqlite, self.path, limiter=self.limiter)
        return self._connection

    def spend_store(self) -> SqliteSpendStore:
        """The spend writer's store over the shared connection (its opener)."""
        return SqliteSpendStore(self.connection, owns_connection=False)

    async def aclose(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await trio.to_thread.run_sync(connection.close, limiter=self.limiter)
