"""The control plane's store: keys, teams, users and end-users in the database (SPEC §9).

`ControlStore` is blocking, over one migrated connection; `Store` is its async face, which
runs every call in a worker thread under one `CapacityLimiter` (the caller's CPU turn
given back meanwhile, as for every wait outside the process), so the event loop never waits
on the disk and the connection never sees two threads (or two transactions) at once.  With
PostgreSQL the "connection" is a pool (`spend.postgres`) with a transaction per thread, and the
limiter is sized to the pool (`control.database.SharedDatabase`).  A database that does not
answer is a `DatabaseUnavailable` (503) to the caller.
Give the spend writer the same limiter when it shares the connection (a `:memory:` database
is one database per connection, so there it must).

Records go in and come out as the frozen records of `control.records`; mappings and tuples
are JSON in TEXT columns, booleans INTEGER 0/1.  The store sets `created_at` (when not given)
and `updated_at`.  It never changes `spend` in an update: the spend writer adds to it as calls
are logged, `reset_budget` zeroes it, `set_spend` sets it when an operator says so.

Every statement is built here, once, at import, in the SQL SQLite and PostgreSQL share, with
`?` placeholders; table and column names come from this module only, never from a caller.
"""

from __future__ import annotations

import functools
import math
import sqlite3
import time
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any, Callable, Generic, Iterable, Literal, Mapping, Sequence, TypeVar

import orjson
import trio

from gateway_trio.control.database import open_database
from gateway_trio.control.records import (
    EndUserRecord,
    KeyRecord,
    ModelBudget,
    TeamMember,
    TeamRecord,
    UserRecord,
)
from gateway_trio.errors import BadRequest, GatewayError, NotFound
from gateway_trio.runtime import turns
from gateway_trio.spend.store import BEGIN_WRITE, Connection, is_database_failure

R = TypeVar("R")
T = TypeVar("T")

DEFAULT_PAGE_SIZE = 10  # LiteLLM's /key/list default
MAX_PAGE_SIZE = 100

BudgetTable = Literal["keys", "teams", "users", "end_users", "key_model_spend"]
BlockTable = Literal["keys", "teams", "end_users"]


class DatabaseUnavailable(GatewayError):
    """The database did not answer: admin writes (and reads of what is not cached) answer 503."""

    status = 503
    error_type = "service_unavailable_error"
    anthropic_type = "overloaded_error"


class AlreadyExists(BadRequest):
    """An insert that would repeat a unique id or alias (LiteLLM answers these 400, naming the field)."""


# --- encoding -------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (ModelBudget, TeamMember)):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


def _dump(value: Any) -> str:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _load_tuple(text: str | None) -> tuple[Any, ...]:
    return tuple(orjson.loads(text)) if text else ()


def _load_mapping(text: str | None) -> Mapping[str, Any]:
    return MappingProxyType(orjson.loads(text)) if text else MappingProxyType({})


def _load_model_budgets(text: str | None) -> Mapping[str, ModelBudget]:
    return MappingProxyType({model: ModelBudget(**budget) for model, budget in orjson.loads(text or "{}").items()})


def _load_members(text: str | None) -> tuple[TeamMember, ...]:
    return tuple(TeamMember(**member) for member in orjson.loads(text or "[]"))


_TUPLE_FIELDS = {"models", "guardrails", "tags", "allowed_routes", "teams"}
_MAPPING_FIELDS = {"aliases", "metadata", "model_rpm_limit", "model_tpm_limit"}
_BOOL_FIELDS = {"blocked", "config_owned"}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    **{name: _load_tuple for name in _TUPLE_FIELDS},
    **{name: _load_mapping for name in _MAPPING_FIELDS},
    **{name: bool for name in _BOOL_FIELDS},
    "model_max_budget": _load_model_budgets,
    "members_with_roles": _load_members,
}
_JSON_FIELDS = _TUPLE_FIELDS | _MAPPING_FIELDS | {"model_max_budget", "members_with_roles"}


def _encode(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return _dump(value)
    if name in _BOOL_FIELDS:
        return 1 if value else 0
    return value


# --- tables ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table(Generic[R]):
    """One record type's table and every statement on it, built once (`_table`)."""

    name: str
    id_column: str
    record: type[R]
    columns: tuple[str, ...]  # the record's fields stored in this table
    updated_columns: tuple[str, ...]  # those an update writes: never the id, spend or created_at
    select: str
    insert: str
    update: str

    def row(self, record: R) -> tuple[Any, ...]:
        return tuple(_encode(column, getattr(record, column)) for column in self.columns)

    def update_row(self, record: R) -> tuple[Any, ...]:
        values = [_encode(column, getattr(record, column)) for column in self.updated_columns]
        return (*values, getattr(record, self.id_column))

    def decode(self, row: Sequence[Any], **extra: Any) -> R:
        values = {column: _DECODERS.get(column, _identity)(value) for column, value in zip(self.columns, row)}
        return self.record(**values, **extra)


def _identity(value: Any) -> Any:
    return value


def _table(name: str, id_column: str, record: type[R], not_stored: Iterable[str] = ()) -> _Table[R]:
    skip = set(not_stored)
    columns = tuple(f.name for f in fields(record) if f.name not in skip)  # type: ignore[arg-type]
    updated = tuple(c for c in columns if c not in (id_column, "spend", "created_at"))
    return _Table(
        name,
        id_column,
        record,
        columns,
        updated,
        select=f"SELECT {', '.join(columns)} FROM {name}",
        insert=f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        update=f"UPDATE {name} SET {', '.join(f'{c} = ?' for c in updated)} WHERE {id_column} = ?",
    )


# A key's per-model spend lives in `key_model_spend` (the spend writer adds to it there).
KEYS = _table("keys", "token", KeyRecord, not_stored=("model_spend", "model_budget_reset_at"))
TEAMS = _table("teams", "team_id", TeamRecord)
USERS = _table("users", "user_id", UserRecord)
END_USERS = _table("end_users", "user_id", EndUserRecord)
_TABLES: dict[str, _Table[Any]] = {table.name: table for table in (KEYS, TEAMS, USERS, END_USERS)}

_SELECT_MODEL_SPEND = "SELECT token, model, spend, budget_reset_at FROM key_model_spend WHERE token = ?"
_RENAME_KEY = "UPDATE keys SET token = ?, key_name = ?, updated_at = ? WHERE token = ?"
_RENAME_KEY_MODEL_SPEND = "UPDATE key_model_spend SET token = ? WHERE token = ?"
_DELETE_KEY_MODEL_SPEND = "DELETE FROM key_model_spend WHERE token = ?"
_INSERT_MODEL_BUDGET = (
    "INSERT INTO key_model_spend (token, model, spend, budget_reset_at) SELECT token, ?, 0, ? FROM keys "
    "WHERE token = ? ON CONFLICT (token, model) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a delete removed: the ids asked for that existed, and the keys that went with them
    (the key cache must forget those too)."""

    ids: tuple[str, ...]
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    """One page of a list, and how many there are in all (LiteLLM's `total_count`)."""

    items: tuple[R, ...]
    total_count: int
    page: int
    size: int

    @property
    def total_pages(self) -> int:
        return max(1, math.ceil(self.total_count / self.size))


# --- the blocking store ---------------------------------------------------------------------


class ControlStore:
    """Keys, teams, users and end-users over one migrated connection.  Every method blocks.

    Changes run in `BEGIN IMMEDIATE` transactions (several workers may share the file: the
    write lock is waited on, busy timeout, rather than failing when a read must upgrade).
    """

    def __init__(self, db: Connection, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    @classmethod
    def open(cls, url: str) -> ControlStore:
        """The store of the database `url` names, migrated (blocking)."""
        return cls(open_database(url))

    def close(self) -> None:
        self._db.close()

    # --- keys --------------------------------------------------------------------------

    def get_key(self, token: str) -> KeyRecord | None:
        return self._get_key("token", token)

    def get_key_by_alias(self, key_alias: str) -> KeyRecord | None:
        return self._get_key("key_alias", key_alias)

    def _get_key(self, column: str, value: str) -> KeyRecord | None:
        row = self._db.execute(f"{KEYS.select} WHERE {column} = ?", (value,)).fetchone()
        return None if row is None else self._key_of(row)

    def _key_of(self, row: Sequence[Any]) -> KeyRecord:
        token = row[0]
        spends: dict[str, float] = {}
        resets: dict[str, float | None] = {}
        for _, model, spend, reset_at in self._db.execute(_SELECT_MODEL_SPEND, (token,)):
            spends[model] = spend
            resets[model] = reset_at
        return KEYS.decode(
            row, model_spend=MappingProxyType(spends), model_budget_reset_at=MappingProxyType(resets)
        )

    def insert_key(self, record: KeyRecord) -> KeyRecord:
        """Insert a new key; its per-model budgets get their spend rows (and reset times) now."""
        with self.transaction():
            stored = self._insert(KEYS, record)
            for model, reset_at in record.model_budget_reset_at.items():
                self._db.execute(_INSERT_MODEL_BUDGET, (model, reset_at, record.token))
        return self._reread_key(stored.token)

    def update_key(self, record: KeyRecord) -> KeyRecord:
        """Write every setting of `record` (found by `token`); its spend is left as it is."""
        with self.transaction():
            self._update(KEYS, record)
            for model, reset_at in record.model_budget_reset_at.items():
                self._db.execute(_INSERT_MODEL_BUDGET, (model, reset_at, record.token))
        return self._reread_key(record.token)

    def delete_keys(self, tokens: Iterable[str]) -> list[str]:
        """Delete the keys of `tokens`; returns those that existed (the others are not an error here)."""
        deleted = []
        with self.transaction():
            for token in tokens:
                if self._db.execute("DELETE FROM keys WHERE token = ?", (token,)).rowcount:
                    self._db.execute(_DELETE_KEY_MODEL_SPEND, (token,))
                    deleted.append(token)
        return deleted

    def list_keys(
        self,
        *,
        team_id: str | None = None,
        user_id: str | None = None,
        key_alias: str | None = None,
        page: int = 1,
        size: int = DEFAULT_PAGE_SIZE,
    ) -> Page[KeyRecord]:
        rows, total, page, size = self._page(
            KEYS, (("team_id", team_id), ("user_id", user_id), ("key_alias", key_alias)), page, size
        )
        return Page(tuple(self._key_of(row) for row in rows), total, page, size)

    def regenerate(self, old_token: str, new_token: str, new_key_name: str) -> KeyRecord:
        """Give the key of `old_token` a new secret: same settings and spend, the old token gone at once."""
        with self.transaction():
            renamed = self._db.execute(_RENAME_KEY, (new_token, new_key_name, self._clock(), old_token)).rowcount
            if not renamed:
                raise NotFound("key not found", param="key")
            self._db.execute(_RENAME_KEY_MODEL_SPEND, (new_token, old_token))
        return self._reread_key(new_token)

    def _reread_key(self, token: str) -> KeyRecord:
        record = self.get_key(token)
        if record is None:  # deleted by another worker the moment after this one wrote it
            raise NotFound("key not found", param="key")
        return record

    # --- teams -------------------------------------------------------------------------

    def get_team(self, team_id: str) -> TeamRecord | None:
        return self._get(TEAMS, team_id)

    def insert_team(self, record: TeamRecord) -> TeamRecord:
        with self.transaction():
            return self._insert(TEAMS, record)

    def update_team(self, record: TeamRecord) -> TeamRecord:
        with self.transaction():
            return self._update(TEAMS, record)

    def delete_teams(self, team_ids: Iterable[str]) -> Deleted:
        """Delete the teams, their keys (as LiteLLM does) and their place in their users' `teams`.

        Config-owned keys are kept: the config, not the admin routes, decides those.
        """
        with self.transaction():
            teams = [team for team in map(self.get_team, team_ids) if team is not None]
            gone = self._delete(TEAMS, [team.team_id for team in teams])
            tokens = self._delete_keys_where("team_id", gone)
            for team in teams:
                for member in team.members_with_roles:
                    if member.user_id is not None:
                        self._change_user_teams(member.user_id, remove=team.team_id)
        return Deleted(tuple(gone), tuple(tokens))

    def list_teams(self, *, page: int = 1, size: int = MAX_PAGE_SIZE) -> Page[TeamRecord]:
        rows, total, page, size = self._page(TEAMS, (), page, size)
        return Page(tuple(TEAMS.decode(row) for row in rows), total, page, size)

    def add_member(self, team_id: str, member: TeamMember) -> TeamRecord:
        """Add `member` to the team (replacing one with the same user_id or email), and the team to the user."""
        with self.transaction():
            team = self._require(TEAMS, team_id)
            kept = tuple(m for m in team.members_with_roles if not _same_member(m, member))
            updated = self._update(TEAMS, replace(team, members_with_roles=(*kept, member)))
            if member.user_id is not None:
                self._change_user_teams(member.user_id, add=team_id)
        return updated

    def remove_member(self, team_id: str, *, user_id: str | None = None, user_email: str | None = None) -> TeamRecord:
        """Remove the member with `user_id` (or `user_email`); NotFound when the team has none such."""
        gone = TeamMember(user_id=user_id, user_email=user_email)
        with self.transaction():
            team = self._require(TEAMS, team_id)
            kept = tuple(m for m in team.members_with_roles if not _same_member(m, gone))
            if len(kept) == len(team.members_with_roles):
                raise NotFound(f"team {team_id!r} has no such member", param="member")
            updated = self._update(TEAMS, replace(team, members_with_roles=kept))
            for member in team.members_with_roles:
                if _same_member(member, gone) and member.user_id is not None:
                    self._change_user_teams(member.user_id, remove=team_id)
        return updated

    def _change_user_teams(self, user_id: str, *, add: str | None = None, remove: str | None = None) -> None:
        user = self._get(USERS, user_id)
        if user is None:
            return  # a member need not be a user of this gateway (LiteLLM's members may be emails)
        teams = tuple(t for t in user.teams if t != add and t != remove)
        if add is not None:
            teams = (*teams, add)
        if teams != user.teams:
            self._update(USERS, replace(user, teams=teams))

    # --- users -------------------------------------------------------------------------

    def get_user(self, user_id: str) -> UserRecord | None:
        return self._get(USERS, user_id)

    def insert_user(self, record: UserRecord) -> UserRecord:
        with self.transaction():
            return self._insert(USERS, record)

    def update_user(self, record: UserRecord) -> UserRecord:
        with self.transaction():
            return self._update(USERS, record)

    def delete_users(self, user_ids: Iterable[str]) -> Deleted:
        """Delete the users, their keys (as LiteLLM does) and their memberships of their teams."""
        with self.transaction():
            users = [user for user in map(self.get_user, user_ids) if user is not None]
            gone = self._delete(USERS, [user.user_id for user in users])
            tokens = self._delete_keys_where("user_id", gone)
            for user in users:
                for team_id in user.teams:
                    team = self.get_team(team_id)
                    if team is not None:
                        kept = tuple(m for m in team.members_with_roles if m.user_id != user.user_id)
                        if kept != team.members_with_roles:
                            self._update(TEAMS, replace(team, members_with_roles=kept))
        return Deleted(tuple(gone), tuple(tokens))

    def _delete_keys_where(self, column: Literal["team_id", "user_id"], owners: list[str]) -> list[str]:
        tokens = [
            token
            for owner in owners
            for (token,) in self._db.execute(f"SELECT token FROM keys WHERE {column} = ? AND config_owned = 0", (owner,))
        ]
        return self.delete_keys(tokens)

    def list_users(self, *, page: int = 1, size: int = MAX_PAGE_SIZE) -> Page[UserRecord]:
        rows, total, page, size = self._page(USERS, (), page, size)
        return Page(tuple(USERS.decode(row) for row in rows), total, page, size)

    # --- end-users ---------------------------------------------------------------------

    def get_end_user(self, user_id: str) -> EndUserRecord | None:
        return self._get(END_USERS, user_id)

    def insert_end_user(self, record: EndUserRecord) -> EndUserRecord:
        with self.transaction():
            return self._insert(END_USERS, record)

    def update_end_user(self, record: EndUserRecord) -> EndUserRecord:
        with self.transaction():
            return self._update(END_USERS, record)

    def delete_end_users(self, user_ids: Iterable[str]) -> list[str]:
        return self._delete(END_USERS, user_ids)

    def list_end_users(self, *, page: int = 1, size: int = MAX_PAGE_SIZE) -> Page[EndUserRecord]:
        rows, total, page, size = self._page(END_USERS, (), page, size)
        return Page(tuple(END_USERS.decode(row) for row in rows), total, page, size)

    # --- across tables -----------------------------------------------------------------

    def set_blocked(self, table: BlockTable, id_: str, blocked: bool) -> Any:
        """Block or unblock a key (by token), team or end-user; returns the record as it now is."""
        spec = _block_table(table)
        with self.transaction():
            record = self._require(spec, id_)
            if record.blocked != blocked:
                record = self._update(spec, replace(record, blocked=blocked))
        return self._reread_key(id_) if spec is KEYS else record

    def set_spend(self, table: Literal["keys", "teams", "users", "end_users"], id_: str, spend: float) -> None:
        """Set a total outright (`/key/update` with `spend`, as LiteLLM allows); NotFound when absent."""
        spec = _TABLES[table]
        with self.transaction():
            changed = self._db.execute(
                f"UPDATE {spec.name} SET spend = ?, updated_at = ? WHERE {spec.id_column} = ?",
                (float(spend), self._clock(), id_),
            ).rowcount
        if not changed:
            raise NotFound(f"{spec.id_column} {id_!r} not found", param=spec.id_column)

    def reset_budget(
        self, table: BudgetTable, id_: str | tuple[str, str], expected_reset_at: float | None, new_reset_at: float | None
    ) -> bool:
        """Zero the spend and move `budget_reset_at` on, if it still is `expected_reset_at`.

        Compare-and-set: two workers that both see a budget due reset it once; the one that
        loses gets False (and reads the record again).  `key_model_spend` takes `(token, model)`.
        """
        # `= NULL` is never true, and a NULL parameter's type is unknown to PostgreSQL: say which.
        due = "budget_reset_at IS NULL" if expected_reset_at is None else "budget_reset_at = ?"
        expected: tuple[Any, ...] = () if expected_reset_at is None else (expected_reset_at,)
        if table == "key_model_spend":
            token, model = id_  # type: ignore[misc]
            sql = f"UPDATE key_model_spend SET spend = 0, budget_reset_at = ? WHERE token = ? AND model = ? AND {due}"
            params: tuple[Any, ...] = (new_reset_at, token, model, *expected)
        else:
            spec = _TABLES[table]
            sql = (
                f"UPDATE {spec.name} SET spend = 0, budget_reset_at = ?, updated_at = ? "
                f"WHERE {spec.id_column} = ? AND {due}"
            )
            params = (new_reset_at, self._clock(), id_, *expected)
        with self.transaction():
            return self._db.execute(sql, params).rowcount == 1

    def start_budget_period(self, table: BudgetTable, id_: str | tuple[str, str], reset_at: float) -> bool:
        """Set the first `budget_reset_at` of a budget that has none yet, keeping its spend.

        For a `budget_duration` set on a row (or a per-model budget first spent on) whose period
        has not begun: compare-and-set on NULL, so of two workers one sets it.  For
        `key_model_spend` (`(token, model)`) the row is made when the key has spent nothing there yet.
        """
        with self.transaction():
            if table == "key_model_spend":
                token, model = id_  # type: ignore[misc]
                self._db.execute(_INSERT_MODEL_BUDGET, (model, None, token))
                sql = "UPDATE key_model_spend SET budget_reset_at = ? WHERE token = ? AND model = ? AND budget_reset_at IS NULL"
                return self._db.execute(sql, (reset_at, token, model)).rowcount == 1
            spec = _TABLES[table]
            sql = f"UPDATE {spec.name} SET budget_reset_at = ? WHERE {spec.id_column} = ? AND budget_reset_at IS NULL"
            return self._db.execute(sql, (reset_at, id_)).rowcount == 1

    def tokens(self) -> list[str]:
        """Every key's hash: the control plane's set of keys that exist (see control/plane.py)."""
        return [row[0] for row in self._db.execute("SELECT token FROM keys")]

    def config_owned_ids(self, table: Literal["keys", "teams"]) -> list[str]:
        """The ids of the rows the config declared (for reconciliation)."""
        spec = _TABLES[table]
        return [row[0] for row in self._db.execute(f"SELECT {spec.id_column} FROM {spec.name} WHERE config_owned = 1")]

    # --- the machinery -----------------------------------------------------------------

    def transaction(self) -> _Transaction:
        """A `with` block whose changes through this store commit together or not at all."""
        return _Transaction(self._db)

    def _get(self, spec: _Table[R], id_: str) -> R | None:
        row = self._db.execute(f"{spec.select} WHERE {spec.id_column} = ?", (id_,)).fetchone()
        return None if row is None else spec.decode(row)

    def _require(self, spec: _Table[R], id_: str) -> R:
        record = self._get(spec, id_)
        if record is None:
            raise NotFound(f"{spec.id_column} {id_!r} not found", param=spec.id_column)
        return record

    def _insert(self, spec: _Table[R], record: R) -> R:
        now = self._clock()
        stored = replace(record, created_at=record.created_at or now, updated_at=now)  # type: ignore[type-var]
        try:
            self._db.execute(spec.insert, spec.row(stored))
        except sqlite3.IntegrityError as error:
            raise _conflict(spec, record, error) from None
        return stored

    def _update(self, spec: _Table[R], record: R) -> R:
        stored = replace(record, updated_at=self._clock())  # type: ignore[type-var]
        try:
            changed = self._db.execute(spec.update, spec.update_row(stored)).rowcount
        except sqlite3.IntegrityError as error:
            raise _conflict(spec, record, error) from None
        if not changed:
            id_ = getattr(record, spec.id_column)
            raise NotFound(f"{spec.id_column} {id_!r} not found", param=spec.id_column)
        return self._require(spec, getattr(record, spec.id_column))

    def _delete(self, spec: _Table[Any], ids: Iterable[str]) -> list[str]:
        sql = f"DELETE FROM {spec.name} WHERE {spec.id_column} = ?"
        with self.transaction():
            return [id_ for id_ in ids if self._db.execute(sql, (id_,)).rowcount]

    def _page(
        self, spec: _Table[Any], filters: Iterable[tuple[str, str | None]], page: int, size: int
    ) -> tuple[list[Sequence[Any]], int, int, int]:
        page = max(1, int(page))
        size = min(max(1, int(size)), MAX_PAGE_SIZE)
        given = [(column, value) for column, value in filters if value is not None]
        where = (" WHERE " + " AND ".join(f"{column} = ?" for column, _ in given)) if given else ""
        params = [value for _, value in given]
        total = self._db.execute(f"SELECT count(*) FROM {spec.name}{where}", params).fetchone()[0]
        rows = self._db.execute(
            f"{spec.select}{where} ORDER BY created_at, {spec.id_column} LIMIT ? OFFSET ?",
            [*params, size, (page - 1) * size],
        ).fetchall()
        return rows, int(total), page, size


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on any exception; nests (the inner joins the outer)."""

    def __init__(self, db: Connection) -> None:
        self._db = db
        self._outermost = False

    def __enter__(self) -> None:
        self._outermost = not self._db.in_transaction
        if self._outermost:
            self._db.execute(BEGIN_WRITE)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if not self._outermost:
            return
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _same_member(member: TeamMember, other: TeamMember) -> bool:
    if other.user_id is not None:
        return member.user_id == other.user_id
    return other.user_email is not None and member.user_email == other.user_email


def _block_table(table: str) -> _Table[Any]:
    if table not in ("keys", "teams", "end_users"):
        raise ValueError(f"{table!r} cannot be blocked")
    return _TABLES[table]


def _conflict(spec: _Table[Any], record: Any, error: sqlite3.IntegrityError) -> Exception:
    """The 400 a repeated id or alias is; any other integrity failure stays what it is."""
    if "unique" not in str(error).lower():  # SQLite: "UNIQUE constraint failed"; PostgreSQL: UniqueViolation
        return error
    id_ = getattr(record, spec.id_column)
    alias = getattr(record, "key_alias", None)
    if spec is KEYS and alias is not None:
        # The token is a fresh hash: a clash is (all but surely) the alias.
        return AlreadyExists(f"a key with key_alias {alias!r} already exists", param="key_alias")
    shown = "this key" if spec is KEYS else repr(id_)
    return AlreadyExists(f"{spec.id_column} {shown} already exists", param=spec.id_column)


# --- the async face -------------------------------------------------------------------------


class Store:
    """The control store for trio code: each call runs in a worker thread, one at a time.

    `limiter` is the one lock on the connection; hand it to anything else that uses the same
    connection (the spend writer, for a `:memory:` database).
    """

    def __init__(self, store: ControlStore, *, limiter: trio.CapacityLimiter | None = None) -> None:
        self.blocking = store
        self.limiter = limiter if limiter is not None else trio.CapacityLimiter(1)

    @classmethod
    async def open(cls, url: str) -> Store:
        """Open (and migrate) the database `url` names, in a worker thread."""
        return cls(await trio.to_thread.run_sync(ControlStore.open, url))

    async def run(self, call: Callable[[ControlStore], T]) -> T:
        """`call(store)` in a worker thread under the limiter: for what the named methods do not cover."""
        return await self._call(call, self.blocking)

    async def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # A request waiting on the database gives its CPU turn back meanwhile (runtime/turns).
        async with turns.off_turn():
            try:
                return await trio.to_thread.run_sync(functools.partial(method, *args, **kwargs), limiter=self.limiter)
            except sqlite3.Error as error:
                if is_database_failure(error):
                    # The database is away (or locked past its timeout): a 503 the caller may
                    # retry, never a 500; the message says which, never the url.
                    raise DatabaseUnavailable("the database is unavailable; try again shortly") from error
                raise

    async def aclose(self) -> None:
        await self._call(self.blocking.close)

    # keys
    async def get_key(self, token: str) -> KeyRecord | None:
        return await self._call(self.blocking.get_key, token)

    async def get_key_by_alias(self, key_alias: str) -> KeyRecord | None:
        return await self._call(self.blocking.get_key_by_alias, key_alias)

    async def insert_key(self, record: KeyRecord) -> KeyRecord:
        return await self._call(self.blocking.insert_key, record)

    async def update_key(self, record: KeyRecord) -> KeyRecord:
        return await self._call(self.blocking.update_key, record)

    async def delete_keys(self, tokens: Iterable[str]) -> list[str]:
        return await self._call(self.blocking.delete_keys, list(tokens))

    async def list_keys(self, **filters: Any) -> Page[KeyRecord]:
        return await self._call(self.blocking.list_keys, **filters)

    async def regenerate(self, old_token: str, new_token: str, new_key_name: str) -> KeyRecord:
        return await self._call(self.blocking.regenerate, old_token, new_token, new_key_name)

    # teams
    async def get_team(self, team_id: str) -> TeamRecord | None:
        return await self._call(self.blocking.get_team, team_id)

    async def insert_team(self, record: TeamRecord) -> TeamRecord:
        return await self._call(self.blocking.insert_team, record)

    async def update_team(self, record: TeamRecord) -> TeamRecord:
        return await self._call(self.blocking.update_team, record)

    async def delete_teams(self, team_ids: Iterable[str]) -> Deleted:
        return await self._call(self.blocking.delete_teams, list(team_ids))

    async def list_teams(self, **paging: int) -> Page[TeamRecord]:
        return await self._call(self.blocking.list_teams, **paging)

    async def add_member(self, team_id: str, member: TeamMember) -> TeamRecord:
        return await self._call(self.blocking.add_member, team_id, member)

    async def remove_member(self, team_id: str, *, user_id: str | None = None, user_email: str | None = None) -> TeamRecord:
        return await self._call(self.blocking.remove_member, team_id, user_id=user_id, user_email=user_email)

    # users
    async def get_user(self, user_id: str) -> UserRecord | None:
        return await self._call(self.blocking.get_user, user_id)

    async def insert_user(self, record: UserRecord) -> UserRecord:
        return await self._call(self.blocking.insert_user, record)

    async def update_user(self, record: UserRecord) -> UserRecord:
        return await self._call(self.blocking.update_user, record)

    async def delete_users(self, user_ids: Iterable[str]) -> Deleted:
        return await self._call(self.blocking.delete_users, list(user_ids))

    async def list_users(self, **paging: int) -> Page[UserRecord]:
        return await self._call(self.blocking.list_users, **paging)

    # end-users
    async def get_end_user(self, user_id: str) -> EndUserRecord | None:
        return await self._call(self.blocking.get_end_user, user_id)

    async def insert_end_user(self, record: EndUserRecord) -> EndUserRecord:
        return await self._call(self.blocking.insert_end_user, record)

    async def update_end_user(self, record: EndUserRecord) -> EndUserRecord:
        return await self._call(self.blocking.update_end_user, record)

    async def delete_end_users(self, user_ids: Iterable[str]) -> list[str]:
        return await self._call(self.blocking.delete_end_users, list(user_ids))

    async def list_end_users(self, **paging: int) -> Page[EndUserRecord]:
        return await self._call(self.blocking.list_end_users, **paging)

    # across tables
    async def set_blocked(self, table: BlockTable, id_: str, blocked: bool) -> Any:
        return await self._call(self.blocking.set_blocked, table, id_, blocked)

    async def set_spend(self, table: Literal["keys", "teams", "users", "end_users"], id_: str, spend: float) -> None:
        await self._call(self.blocking.set_spend, table, id_, spend)

    async def start_budget_period(self, table: BudgetTable, id_: str | tuple[str, str], reset_at: float) -> bool:
        return await self._call(self.blocking.start_budget_period, table, id_, reset_at)

    async def reset_budget(
        self, table: BudgetTable, id_: str | tuple[str, str], expected_reset_at: float | None, new_reset_at: float | None
    ) -> bool:
        return await self._call(self.blocking.reset_budget, table, id_, expected_reset_at, new_reset_at)
