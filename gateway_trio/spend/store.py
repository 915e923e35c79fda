"""Where spend records are kept (SPEC §3 `[database]`, §4 `GET /spend/logs`, §8).

The store is blocking on purpose: the spend writer actor runs every call in one worker thread
at a time, so the event loop never waits on a disk and sqlite never sees two threads at once.
`open_store` is the seam for other backends; only SQLite exists today.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sqlite3
from typing import Any, Callable, Protocol

import orjson

from gateway_trio.spend.records import SpendRecord

log = logging.getLogger(__name__)

MAX_QUERY_LIMIT = 1000
# Several gateway workers may share one file: wait for the write lock instead of failing.
BUSY_TIMEOUT_S = 5.0

# One column per SpendRecord field, in field order (a test keeps the two in step).
COLUMNS: dict[str, str] = {
    "call_id": "TEXT PRIMARY KEY",
    "call_type": "TEXT",
    "stream": "INTEGER",
    "status": "TEXT",
    "start_time": "REAL",
    "end_time": "REAL",
    "api_key_hash": "TEXT",
    "key_alias": "TEXT",
    "model_group": "TEXT",
    "model_id": "TEXT",
    "provider": "TEXT",
    "api_base": "TEXT",
    "ttft_ms": "REAL",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "cost": "REAL",
    "cache_hit": "INTEGER",
    "attempted_retries": "INTEGER",
    "attempted_fallbacks": "INTEGER",
    "guardrail_information": "TEXT",
    "error": "TEXT",
    "tags": "TEXT",
    "metadata": "TEXT",
}
JSON_COLUMNS = frozenset({"guardrail_information", "tags", "metadata"})
BOOL_COLUMNS = frozenset({"stream", "cache_hit"})
INDEXED_COLUMNS = ("start_time", "model_group", "api_key_hash")

_SCHEMA = "\n".join(
    [
        "CREATE TABLE IF NOT EXISTS spend_logs (",
        ",\n".join(f"    {name} {sql_type}" for name, sql_type in COLUMNS.items()),
        ");",
        *(f"CREATE INDEX IF NOT EXISTS ix_spend_logs_{name} ON spend_logs ({name});" for name in INDEXED_COLUMNS),
    ]
)
_INSERT = (
    f"INSERT OR REPLACE INTO spend_logs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM spend_logs"


class UnsupportedDatabaseUrl(ValueError):
    """A `database.url` this build cannot open; the message never repeats the url (it may hold a password)."""


# A record the database would not take, and why: refused once, never retried.
Refused = tuple[SpendRecord, Exception]


class SpendStore(Protocol):
    """What the spend writer needs from a backend.  Every method blocks; call them from a thread."""

    def write_batch(self, records: list[SpendRecord]) -> list[Refused]:
        """Write `records`, returning those refused for what they hold.

        Raises only when the database itself fails (then nothing is known to be written, and
        the writer tries the batch again later); writing a record twice must replace it.
        """
        ...

    def query(
        self,
        *,
        call_id: str | None = None,
        api_key_hash: str | None = None,
        model: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def is_database_failure(error: Exception) -> bool:
    """Whether sqlite failed as a database (busy, locked, disk, full, corrupt), not over a row.

    A row's own faults (a constraint, a value too big or of a type it cannot bind) are the
    other exceptions; those are refused, the database's are retried.
    """
    return isinstance(error, sqlite3.OperationalError) or type(error) is sqlite3.DatabaseError


def sqlite_path(url: str) -> str:
    """The file a `sqlite:///relative.db`, `sqlite:////abs.db` or `sqlite:///:memory:` url names."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise UnsupportedDatabaseUrl("database url must look like sqlite:///PATH")
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        raise UnsupportedDatabaseUrl("postgresql database urls are not supported yet")
    if scheme != "sqlite":
        raise UnsupportedDatabaseUrl(f"unsupported database url scheme {scheme!r}: use sqlite:///PATH")
    if rest == "":
        return ":memory:"  # `sqlite://`, as SQLAlchemy reads it
    if not rest.startswith("/"):
        raise UnsupportedDatabaseUrl("sqlite urls take no host: use sqlite:///relative.db or sqlite:////abs/path.db")
    path = rest[1:]
    if not path:
        raise UnsupportedDatabaseUrl("sqlite url has no path: use sqlite:///gateway.db")
    return path


def open_store(url: str) -> SpendStore:
    """Open the backend a `database.url` names (blocking)."""
    return SqliteSpendStore(sqlite_path(url))


def store_opener(url: str) -> Callable[[], SpendStore]:
    """A zero-argument opener for `url`, checked now so a bad url fails at startup, not later."""
    path = sqlite_path(url)
    return lambda: SqliteSpendStore(path)


PROBE_TIMEOUT_S = 0.1  # a file busy for longer is still a database that opens


class DatabaseUnavailable(ValueError):
    """The store a `database.url` names cannot be opened; the message names the path, never a password."""


def check_store(url: str) -> None:
    """Raise if the store `url` names could not be opened (blocking; creates no file, writes nothing).

    Run at start-up and by `check-config`: the writer opens the store only once the gateway is
    serving, where a missing folder would otherwise surface as a crash with a traceback.
    """
    path = sqlite_path(url)
    if path == ":memory:":
        return
    if not os.path.exists(path):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise DatabaseUnavailable(f"cannot create {path!r}: folder {folder!r} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise DatabaseUnavailable(f"cannot create {path!r}: folder {folder!r} is not writable")
        return
    if os.path.isdir(path):
        raise DatabaseUnavailable(f"{path!r} is a folder, not a database file")
    if not os.access(path, os.R_OK | os.W_OK):
        raise DatabaseUnavailable(f"{path!r} is not readable and writable")
    try:
        db = sqlite3.connect(f"{pathlib.Path(os.path.abspath(path)).as_uri()}?mode=rw", uri=True, timeout=PROBE_TIMEOUT_S)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header: is it SQLite?
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return  # another worker is writing: it opens, it is only busy
        raise DatabaseUnavailable(f"cannot open {path!r}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnavailable(f"cannot open {path!r}: {exc}") from None


class SqliteSpendStore:
    """`spend_logs` in one SQLite file (or `:memory:`), one connection, WAL journal."""

    def __init__(self, path: str) -> None:
        self.path = path
        # The writer's limiter guarantees one thread at a time, but not always the same thread.
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            # WAL lets /spend/logs readers (and other workers) read while a batch is written.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except Exception:
            self._db.close()
            raise

    def write_batch(self, records: list[SpendRecord]) -> list[Refused]:
        """Insert (or replace, by call_id) `records`, in one transaction while all is well.

        When a record is at fault (a constraint, a value too big) the batch is written again
        one record per transaction, so only that record is refused and the rest are kept.  A
        failure of the database itself (locked, disk, corrupt) is raised; rows written before
        it are replaced, not doubled, when the writer tries again.
        """
        if not records:
            return []
        rows = [_encode(record) for record in records]
        try:
            self._insert(rows)
        except Exception as error:
            if is_database_failure(error):
                raise
            return self._insert_one_by_one(records, rows)
        return []

    def _insert_one_by_one(self, records: list[SpendRecord], rows: list[tuple[Any, ...]]) -> list[Refused]:
        refused: list[Refused] = []
        for record, row in zip(records, rows):
            try:
                self._insert([row])
            except Exception as error:
                if is_database_failure(error):
                    raise
                refused.append((record, error))
        return refused

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        # IMMEDIATE takes the write lock up front, so a busy file is waited on here (busy
        # timeout) rather than failing halfway through when a read lock must be upgraded.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(_INSERT, rows)
        except Exception:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def query(
        self,
        *,
        call_id: str | None = None,
        api_key_hash: str | None = None,
        model: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Records newest first.  `model` matches model_group; `start <= start_time < end`."""
        limit = int(limit)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("call_id = ?", call_id),
            ("api_key_hash = ?", api_key_hash),
            ("model_group = ?", model),
            ("start_time >= ?", start),
            ("start_time < ?", end),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = _SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_time DESC, call_id DESC LIMIT ?"
        params.append(min(limit, MAX_QUERY_LIMIT))
        return [_decode(row) for row in self._db.execute(sql, params)]

    def close(self) -> None:
        self._db.close()


# --- rows ------------------------------------------------------------------------------------
# Encoding never raises: a record the database cannot hold would otherwise fail its batch on
# every retry and stall the whole spend log behind it.

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str, option=_JSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        log.warning("spend record field not JSON-serialisable; stored as its repr")
        return orjson.dumps(repr(value)).decode()


# What an sqlite INTEGER holds; a larger Python int fails the insert (OverflowError).
SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1


def _scalar(value: Any) -> Any:
    if isinstance(value, int) and not SQLITE_INT_MIN <= value <= SQLITE_INT_MAX:
        log.warning("spend record field holds an integer sqlite cannot store; stored as null")
        return None
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


def _encode(record: SpendRecord) -> tuple[Any, ...]:
    row = []
    for name in COLUMNS:
        value = getattr(record, name)
        if name in JSON_COLUMNS:
            row.append(_json(value))
        elif name in BOOL_COLUMNS:
            row.append(1 if value else 0)
        else:
            row.append(_scalar(value))
    return tuple(row)


def _decode(row: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(COLUMNS, row))
    for name in JSON_COLUMNS:
        if out[name] is not None:
            out[name] = orjson.loads(out[name])
    for name in BOOL_COLUMNS:
        if out[name] is not None:
            out[name] = bool(out[name])
    return out
