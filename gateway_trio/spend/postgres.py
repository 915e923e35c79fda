"""PostgreSQL behind the face the stores are written against: sqlite3's connection (SPEC §10).

The spend store, the control store and the migrations speak the DB-API as sqlite3 offers it:
`execute` (with `?` placeholders), `executemany`, `in_transaction`, `BEGIN IMMEDIATE` /
`COMMIT` / `ROLLBACK` statements and sqlite3's exception classes.  `PostgresConnection` gives
a psycopg_pool `ConnectionPool` that face, so every statement and every transaction rule is
written once for both databases:

- each statement is translated once (`?` -> `%s`, a literal `%` doubled, `BEGIN IMMEDIATE`
  -> `BEGIN`) and the translation cached;
- outside a transaction a statement borrows a pooled connection (autocommit) for itself;
  `BEGIN` holds one connection for the calling thread until `COMMIT` or `ROLLBACK`, so
  several worker threads (a `CapacityLimiter` sized to the pool) run transactions at once;
- psycopg's errors are raised as sqlite3's classes of the same meaning (a constraint is an
  `IntegrityError`, a lost server an `OperationalError`), the psycopg error as the cause.

psycopg's async mode is asyncio-only: this is the sync driver, always called from a worker
thread (`trio.to_thread.run_sync`), never from the event loop.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import conninfo as psycopg_conninfo
from psycopg_pool import ConnectionPool

T = TypeVar("T")

DIALECT = "postgresql"
CONNECT_TIMEOUT_S = 5


class BadPostgresUrl(ValueError):
    """A postgresql url that does not parse; the message never repeats the url (it may hold a password)."""


def check_postgres_url(url: str) -> None:
    """Raise `BadPostgresUrl` if libpq cannot read `url`.  Connects to nothing (check-config)."""
    try:
        psycopg_conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise BadPostgresUrl(
            "postgresql url does not parse: use postgresql://user:password@host:5432/database"
        ) from None


# --- translation ---------------------------------------------------------------------------

_BEGIN = re.compile(r"\s*BEGIN(\s+(IMMEDIATE|DEFERRED|EXCLUSIVE))?\s*", re.IGNORECASE)


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """`sql` in psycopg's placeholder style: `?` -> `%s`, `%` -> `%%` (the stores quote no `?`)."""
    if _BEGIN.fullmatch(sql):
        return "BEGIN"
    return sql.replace("%", "%%").replace("?", "%s")


# --- errors ----------------------------------------------------------------------------------


def as_sqlite_error(error: psycopg.Error) -> sqlite3.Error:
    """The sqlite3 exception of the same meaning (the stores tell a row's fault from the database's by class)."""
    message = f"{type(error).__name__}: {error}".strip()
    if isinstance(error, psycopg.IntegrityError):
        return sqlite3.IntegrityError(message)
    if isinstance(error, psycopg.DataError):
        return sqlite3.DataError(message)
    if isinstance(error, psycopg.ProgrammingError):
        return sqlite3.ProgrammingError(message)
    if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError, psycopg.InternalError)):
        return sqlite3.OperationalError(message)  # the server is away, restarting, or out of room
    return sqlite3.DatabaseError(message)


class _Translated:
    """Raise psycopg's errors as sqlite3's (`with _Translated():`)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        if isinstance(error, psycopg.Error):
            raise as_sqlite_error(error) from error


_translated = _Translated()


# --- results ---------------------------------------------------------------------------------


class Result:
    """What `execute` returns: the rows already fetched (the connection went back to the pool)."""

    __slots__ = ("_next", "_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


def _run(connection: psycopg.Connection[Any], sql: str, params: Sequence[Any] | None) -> Result:
    with connection.cursor() as cursor:
        cursor.execute(sql, params if params else None)  # type: ignore[arg-type]
        rows = cursor.fetchall() if cursor.description is not None else []
        return Result(rows, cursor.rowcount)


def _run_many(connection: psycopg.Connection[Any], sql: str, seq: Iterable[Sequence[Any]]) -> Result:
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(seq))  # type: ignore[arg-type]
        return Result([], cursor.rowcount)


# --- the connection ------------------------------------------------------------------------


class PostgresConnection:
    """A psycopg_pool `ConnectionPool` with sqlite3's connection face (see the module docstring).

    Thread-safe: each thread's transaction has its own pooled connection.  `on_round_trip`
    is told every statement's duration and whether the database answered (for `/metrics`).
    """

    dialect = DIALECT

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout_s: float = 5.0,
        on_round_trip: Callable[[float, bool], None] | None = None,
    ) -> None:
        check_postgres_url(url)
        self.max_size = max_size
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            # A connection found dead at checkout is replaced, not handed out: after a server
            # restart the first statements get fresh connections rather than failing each.
            check=ConnectionPool.check_connection,
            name="gateway-trio",
        )
        self._local = threading.local()
        self.on_round_trip = on_round_trip
        self.closed = False

    def open(self, timeout_s: float = 10.0) -> None:
        """Open the pool and wait for its first connections (blocking); raises sqlite3.OperationalError."""
        try:
            self._pool.open(wait=True, timeout=timeout_s)
        except psycopg.Error as error:  # psycopg_pool.PoolTimeout: the server is not there
            self._pool.close()
            raise sqlite3.OperationalError(f"cannot connect to PostgreSQL: {type(error).__name__}: {error}") from None

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "connection", None) is not None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        text = translate(sql)
        held = getattr(self._local, "connection", None)
        if text == "BEGIN":
            return self._begin()
        if held is not None and text in ("COMMIT", "ROLLBACK"):
            return self._end(held, text)
        if held is not None:
            return self._timed(lambda: _run(held, text, params))
        return self._timed(lambda: self._borrowed(lambda connection: _run(connection, text, params)))

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> Result:
        text = translate(sql)
        held = getattr(self._local, "connection", None)
        if held is not None:
            return self._timed(lambda: _run_many(held, text, seq))
        return self._timed(lambda: self._borrowed(lambda connection: _run_many(connection, text, seq)))

    def close(self) -> None:
        self.closed = True
        self._pool.close()

    # --- the machinery -----------------------------------------------------------------

    def _borrowed(self, use: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self._pool.connection() as connection:
            return use(connection)

    def _begin(self) -> Result:
        if self.in_transaction:
            raise sqlite3.OperationalError("cannot start a transaction within a transaction")

        def begin() -> Result:
            connection = self._pool.getconn()
            try:
                connection.execute("BEGIN")
            except BaseException:
                self._pool.putconn(connection)
                raise
            self._local.connection = connection
            return Result([], -1)

        return self._timed(begin)

    def _end(self, connection: psycopg.Connection[Any], text: str) -> Result:
        """COMMIT or ROLLBACK, then give the connection back (the pool discards a broken one)."""
        self._local.connection = None
        try:
            if text == "COMMIT":
                return self._timed(lambda: _run(connection, text, None))
            try:
                connection.execute("ROLLBACK")
            except psycopg.Error:
                pass  # a lost connection has no transaction left to roll back
            return Result([], -1)
        finally:
            self._pool.putconn(connection)

    def _timed(self, step: Callable[[], T]) -> T:
        started = time.perf_counter()
        answered = False
        try:
            with _translated:
                result = step()
            answered = True
            return result
        except sqlite3.OperationalError:
            raise
        except sqlite3.Error:
            answered = True  # the server answered: with a refusal, but it is up
            raise
        finally:
            if self.on_round_trip is not None:
                self.on_round_trip(time.perf_counter() - started, answered)
