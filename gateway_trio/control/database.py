"""Opening the database of `[database] url`: one connection, migrated to this build's schema.

Every user of the database (the spend writer, the control store) opens it here, so no
connection is ever handed out before `control.schema.migrate` has run on it.  The spend wing
sits below the control plane and takes its connection from here (`spend_store_opener`).
Only SQLite exists today; the url forms are those `spend.store.sqlite_path` reads.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

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
