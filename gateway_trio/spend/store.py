"""Where spend records are kept (SPEC §3 `[database]`, §4 `GET /spend/logs` and `/spend/report`, §8).

The store is blocking on purpose: the spend writer actor runs every call in one worker thread
at a time, so the event loop never waits on a disk and sqlite never sees two threads at once.

The store does not create its tables: the database's schema is the control plane's migration
list (`control/schema.py`), run by whoever opens the database (`control/database.py`) before
the connection is handed here; this wing sits below the control plane and cannot run it.
Writing a record also adds its cost to the spend totals of its key, key and model, team, user
and end-user, in the same transaction, and only when the record is new: a batch written again
after a failure (or a record sent twice) is counted once.

`SqliteSpendStore` inserts row by row (SQLite's inserts are in-process calls);
`PostgresSpendStore` sends a batch as one multi-row statement over the connection face of
`spend.postgres` (each statement is a network round trip there).
"""

from __future__ import annotations

import functools
import logging
import os
import pathlib
import sqlite3
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Iterable, Literal, Protocol, Union

import orjson

from gateway_trio.spend.records import SpendRecord

if TYPE_CHECKING:
    from gateway_trio.spend.postgres import PostgresConnection

log = logging.getLogger(__name__)

# What a store runs on: sqlite3's connection, or PostgreSQL behind the same face (psycopg is
# the `postgres` extra: imported only when a postgresql url is opened).
Connection = Union[sqlite3.Connection, "PostgresConnection"]


def is_postgres_url(url: str) -> bool:
    return url.partition("://")[0].lower() in ("postgresql", "postgres")

MAX_QUERY_LIMIT = 1000
# Several gateway workers may share one file: wait for the write lock instead of failing.
BUSY_TIMEOUT_S = 5.0

# One column per SpendRecord field, in field order (a test keeps the two in step; the
# migrations create them, with these types).
COLUMNS: dict[str, str] = {
    "call_id": "TEXT PRIMARY KEY",
    "call_type": "TEXT",
    "stream": "INTEGER",
    "status": "TEXT",
    "start_time": "DOUBLE PRECISION",
    "end_time": "DOUBLE PRECISION",
    "api_key_hash": "TEXT",
    "key_alias": "TEXT",
    "team_id": "TEXT",
    "user_id": "TEXT",
    "end_user": "TEXT",
    "model_group": "TEXT",
    "model_id": "TEXT",
    "provider": "TEXT",
    "api_base": "TEXT",
    "ttft_ms": "DOUBLE PRECISION",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "cost": "DOUBLE PRECISION",
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

# What `/spend/report` may group by, and the column each names.
GroupBy = Literal["key", "team", "user", "end_user", "model"]
GROUP_COLUMNS: dict[str, str] = {
    "key": "api_key_hash",
    "team": "team_id",
    "user": "user_id",
    "end_user": "end_user",
    "model": "model_group",
}

# How every writer of the database begins its transaction: IMMEDIATE takes SQLite's write lock
# up front, so a busy file is waited on (busy timeout) rather than failing halfway when a read
# lock must be upgraded.  The one statement here a PostgreSQL backend says differently (BEGIN).
BEGIN_WRITE = "BEGIN IMMEDIATE"

# --- statements ------------------------------------------------------------------------------
# Every statement of this store, in the SQL SQLite and PostgreSQL share (`?` placeholders).
# Insert-if-absent, never replace: the first write of a call is its record, and the totals
# below are added only for a row this statement actually inserted (rowcount 1).
_INSERT = (
    f"INSERT INTO spend_logs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT (call_id) DO NOTHING"
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM spend_logs"
_ADD_KEY_SPEND = "UPDATE keys SET spend = spend + ? WHERE token = ?"
_ADD_TEAM_SPEND = "UPDATE teams SET spend = spend + ? WHERE team_id = ?"
_ADD_USER_SPEND = "UPDATE users SET spend = spend + ? WHERE user_id = ?"
# An end-user is created when first seen, as LiteLLM does, so its spend is known before an
# operator ever sets it a budget.
_ADD_END_USER_SPEND = (
    "INSERT INTO end_users (user_id, spend, created_at, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (user_id) DO UPDATE SET spend = end_users.spend + excluded.spend"
)
# Only for keys the store knows (the master key has no row, and gets none).
_ADD_KEY_MODEL_SPEND = (
    "INSERT INTO key_model_spend (token, model, spend) "
    "SELECT token, CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION) FROM keys WHERE token = ? "
    "ON CONFLICT (token, model) DO UPDATE SET spend = key_model_spend.spend + excluded.spend"
)


class UnsupportedDatabaseUrl(ValueError):
    """A `database.url` this build cannot open; the message never repeats the url (it may hold a password)."""


# A record the database would not take, and why: refused once, never retried.
Refused = tuple[SpendRecord, Exception]


class SpendStore(Protocol):
    """What the spend writer needs from a backend.  Every method blocks; call them from a thread."""

    def write_batch(self, records: list[SpendRecord]) -> list[Refused]:
        """Write `records`, returning those refused for what they hold.

        Raises only when the database itself fails (then nothing is known to be written, and
        the writer tries the batch again later); writing a record twice must keep one, and
        count its cost once.
        """
        ...

    def query(
        self,
        *,
        call_id: str | None = None,
        api_key_hash: str | None = None,
        key_alias: str | None = None,
        team_id: str | None = None,
        user_id: str | None = None,
        end_user: str | None = None,
        model: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]: ...

    def report(
        self, group_by: GroupBy, *, start: float | None = None, end: float | None = None
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
    if scheme in ("postgresql", "postgres"):
        raise UnsupportedDatabaseUrl("a postgresql url names no sqlite file")
    if scheme != "sqlite":
        raise UnsupportedDatabaseUrl(
            f"unsupported database url scheme {scheme!r}: use sqlite:///PATH or postgresql://user:password@host/db"
        )
    if rest == "":
        return ":memory:"  # `sqlite://`, as SQLAlchemy reads it
    if not rest.startswith("/"):
        raise UnsupportedDatabaseUrl("sqlite urls take no host: use sqlite:///relative.db or sqlite:////abs/path.db")
    path = rest[1:]
    if not path:
        raise UnsupportedDatabaseUrl("sqlite url has no path: use sqlite:///gateway.db")
    return path


def connect_sqlite(path: str) -> sqlite3.Connection:
    """A connection as every user of the database needs it: autocommit, WAL, busy timeout.

    Autocommit (`isolation_level=None`) so that each writer says where its transactions begin
    (`BEGIN IMMEDIATE`); `check_same_thread=False` because a limiter guarantees one thread at
    a time, not always the same thread.
    """
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        # WAL lets readers (/spend/logs, key lookups, other workers) read while a batch is written.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    except Exception:
        db.close()
        raise
    return db


PROBE_TIMEOUT_S = 0.1  # a file busy for longer is still a database that opens


class DatabaseUnavailable(ValueError):
    """The store a `database.url` names cannot be opened; the message names the path, never a password."""


def check_store(url: str) -> None:
    """Raise if the store `url` names could not be opened (blocking; creates no file, writes nothing).

    Run at start-up and by `check-config`: the writer opens the store only once the gateway is
    serving, where a missing folder would otherwise surface as a crash with a traceback.
    A postgresql url is only parsed: check-config connects to no server.
    """
    if is_postgres_url(url):
        try:
            from gateway_trio.spend.postgres import BadPostgresUrl, check_postgres_url
        except ImportError:
            raise UnsupportedDatabaseUrl(
                "postgresql urls need psycopg: pip install 'gateway-trio[postgres]'"
            ) from None
        try:
            check_postgres_url(url)
        except BadPostgresUrl as error:
            raise UnsupportedDatabaseUrl(str(error)) from None
        return
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
    """`spend_logs` and the spend totals, over one SQLite connection already migrated."""

    def __init__(self, db: Connection, *, owns_connection: bool = True) -> None:
        """`owns_connection=False` when the connection is shared (a `:memory:` database with the
        control store, under one limiter): then `close` leaves it open for its owner."""
        self._db = db
        self._owns_connection = owns_connection

    def write_batch(self, records: list[SpendRecord]) -> list[Refused]:
        """Insert the new ones of `records` and add up their costs, in one transaction while all is well.

        When a record is at fault (a constraint, a value too big) the batch is written again
        one record per transaction, so only that record is refused and the rest are kept.  A
        failure of the database itself (locked, disk, corrupt) is raised; rows written before
        it are found already there, not doubled nor counted again, when the writer tries again.
        """
        if not records:
            return []
        rows = [_encode(record) for record in records]
        try:
            self._insert(records, rows)
        except Exception as error:
            if is_database_failure(error):
                raise
            return self._insert_one_by_one(records, rows)
        return []

    def _insert_one_by_one(self, records: list[SpendRecord], rows: list[tuple[Any, ...]]) -> list[Refused]:
        refused: list[Refused] = []
        for record, row in zip(records, rows):
            try:
                self._insert([record], [row])
            except Exception as error:
                if is_database_failure(error):
                    raise
                refused.append((record, error))
        return refused

    def _insert(self, records: list[SpendRecord], rows: list[tuple[Any, ...]]) -> None:
        db = self._db
        db.execute(BEGIN_WRITE)
        try:
            new = [record for record, row in zip(records, rows) if db.execute(_INSERT, row).rowcount == 1]
            self._add_to_totals(new)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _add_to_totals(self, records: Iterable[SpendRecord]) -> None:
        """Add the costs of newly logged `records` to every total they count in (one statement per owner)."""
        keys: dict[str, float] = defaultdict(float)
        key_models: dict[tuple[str, str], float] = defaultdict(float)
        teams: dict[str, float] = defaultdict(float)
        users: dict[str, float] = defaultdict(float)
        end_users: dict[str, tuple[float, float]] = {}
        for record in records:
            cost = _cost(record.cost)
            if not cost:
                continue
            if record.api_key_hash:
                keys[record.api_key_hash] += cost
                if record.model_group:
                    key_models[(record.api_key_hash, record.model_group)] += cost
            if record.team_id:
                teams[record.team_id] += cost
            if record.user_id:
                users[record.user_id] += cost
            if record.end_user:
                spent, first_seen = end_users.get(record.end_user, (0.0, record.end_time))
                end_users[record.end_user] = (spent + cost, min(first_seen, record.end_time))
        # Rows in sorted order: two instances adding to the same totals at once lock them in
        # the same order, so PostgreSQL never has to break a deadlock between them.
        db = self._db
        if keys:
            db.executemany(_ADD_KEY_SPEND, [(cost, token) for token, cost in sorted(keys.items())])
        if key_models:
            db.executemany(
                _ADD_KEY_MODEL_SPEND, [(model, cost, token) for (token, model), cost in sorted(key_models.items())]
            )
        if teams:
            db.executemany(_ADD_TEAM_SPEND, [(cost, team) for team, cost in sorted(teams.items())])
        if users:
            db.executemany(_ADD_USER_SPEND, [(cost, user) for user, cost in sorted(users.items())])
        if end_users:
            db.executemany(
                _ADD_END_USER_SPEND, [(user, cost, seen, seen) for user, (cost, seen) in sorted(end_users.items())]
            )

    def query(
        self,
        *,
        call_id: str | None = None,
        api_key_hash: str | None = None,
        key_alias: str | None = None,
        team_id: str | None = None,
        user_id: str | None = None,
        end_user: str | None = None,
        model: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Records newest first.  `model` matches model_group; `start <= start_time < end`."""
        limit = int(limit)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where, params = _where(
            ("call_id = ?", call_id),
            ("api_key_hash = ?", api_key_hash),
            ("key_alias = ?", key_alias),
            ("team_id = ?", team_id),
            ("user_id = ?", user_id),
            ("end_user = ?", end_user),
            ("model_group = ?", model),
            ("start_time >= ?", start),
            ("start_time < ?", end),
        )
        sql = _SELECT + where + " ORDER BY start_time DESC, call_id DESC LIMIT ?"
        params.append(min(limit, MAX_QUERY_LIMIT))
        return [_decode(row) for row in self._db.execute(sql, params)]

    def report(
        self, group_by: GroupBy, *, start: float | None = None, end: float | None = None
    ) -> list[dict[str, Any]]:
        """Per group (`group_by` names the column): cost, tokens and requests, costliest first.

        Calls with no value in the column (a key-less call's team, say) form one group, `None`.
        """
        column = GROUP_COLUMNS.get(group_by)
        if column is None:
            raise ValueError(f"group_by must be one of {', '.join(GROUP_COLUMNS)}")
        where, params = _where(("start_time >= ?", start), ("start_time < ?", end))
        sql = (
            f"SELECT {column}, coalesce(sum(cost), 0), coalesce(sum(prompt_tokens), 0), "
            f"coalesce(sum(completion_tokens), 0), count(*) FROM spend_logs{where} "
            f"GROUP BY {column} ORDER BY 2 DESC, 1"
        )
        return [
            {
                "group_by": group_by,
                "group": group,
                "spend": spend,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "requests": requests,
            }
            for group, spend, prompt, completion, requests in self._db.execute(sql, params)
        ]

    def close(self) -> None:
        if self._owns_connection:
            self._db.close()


class PostgresSpendStore(SqliteSpendStore):
    """The same store over PostgreSQL (`spend.postgres.PostgresConnection`): a batch is ONE
    multi-row `INSERT ... ON CONFLICT (call_id) DO NOTHING RETURNING call_id`, and the totals of
    the rows it returns are added in the same transaction.  Two instances flushing the same
    call at once keep one row: the second insert waits for the first's commit, then skips it.
    """

    def _insert(self, records: list[SpendRecord], rows: list[tuple[Any, ...]]) -> None:
        db = self._db
        db.execute(BEGIN_WRITE)
        try:
            inserted: set[str] = set()
            for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
                chunk = rows[start : start + MAX_ROWS_PER_INSERT]
                params = [value for row in chunk for value in row]
                inserted.update(row[0] for row in db.execute(_multi_row_insert(len(chunk)), params))
            new = []
            for record in records:  # the first of a call id sent twice in one batch is the one written
                if record.call_id in inserted:
                    inserted.discard(record.call_id)
                    new.append(record)
            self._add_to_totals(new)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


# PostgreSQL takes at most 65535 parameters in one statement: 26 columns x 1000 rows is well below.
MAX_ROWS_PER_INSERT = 1000
_ROW_PLACEHOLDERS = f"({', '.join('?' for _ in COLUMNS)})"


@functools.lru_cache(maxsize=64)
def _multi_row_insert(count: int) -> str:
    """The insert of `count` rows at once (built once per batch size seen)."""
    values = ", ".join(_ROW_PLACEHOLDERS for _ in range(count))
    return (
        f"INSERT INTO spend_logs ({', '.join(COLUMNS)}) VALUES {values} "
        "ON CONFLICT (call_id) DO NOTHING RETURNING call_id"
    )


def _where(*clauses: tuple[str, Any]) -> tuple[str, list[Any]]:
    """` WHERE a AND b` of the clauses whose value is given, and their parameters."""
    given = [(clause, value) for clause, value in clauses if value is not None]
    if not given:
        return "", []
    return " WHERE " + " AND ".join(clause for clause, _ in given), [value for _, value in given]


def _cost(value: Any) -> float:
    """A record's cost as a total may take it: a finite, non-negative float, else nothing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    cost = float(value)
    return cost if 0.0 < cost < float("inf") else 0.0


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
