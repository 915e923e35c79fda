"""The database's schema, as a forward-only list of numbered migrations (issue 12 point 1).

One database (`[database] url`) holds the spend log and the control plane's objects, so one
list describes all of it.  Version 1 is the `spend_logs` table exactly as the releases before
the control plane created it (they wrote no version), so their databases migrate in place;
every later version is a step from the one before, never an edit of an old step.

`migrate` runs at start: every pending step in ONE transaction, the version recorded in the
same transaction, so a failure leaves the database as it was (SQLite and PostgreSQL both run
DDL inside a transaction).  A database written by newer code is refused rather than guessed at.

The SQL is the subset SQLite and PostgreSQL share: TEXT/DOUBLE PRECISION/INTEGER/BIGINT, no
AUTOINCREMENT, JSON kept in TEXT, booleans as INTEGER 0/1, `?` placeholders (the DB-API
"qmark" style; a PostgreSQL backend rewrites them where it prepares statements).  Floats are
DOUBLE PRECISION, not REAL: in SQLite the two are the same 8-byte REAL affinity (so the
previous release's `REAL` columns are version 1 as they stand), but PostgreSQL's REAL is
4 bytes, which would round a unix time to minutes and a cost to 7 digits.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Sequence

from gateway_trio.spend.store import BEGIN_WRITE, Connection


class SchemaError(Exception):
    """The database cannot be brought to this build's schema: a start-up error, never the url."""


class MigrationFailed(SchemaError):
    """A step failed; the transaction was rolled back, so the database is still at `from_version`."""

    def __init__(self, version: int, description: str, from_version: int, cause: Exception) -> None:
        super().__init__(
            f"database migration to schema version {version} ({description}) failed: "
            f"{type(cause).__name__}: {cause}; nothing was changed, the database is still at version {from_version}"
        )
        self.version = version
        self.from_version = from_version


class DatabaseTooNew(SchemaError):
    """The database was migrated by a newer build; an older one must not write into it."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the database is at schema version {found}, newer than this build knows ({known}): "
            "upgrade gateway-trio, or point [database] url at another database"
        )
        self.found = found
        self.known = known


@dataclass(frozen=True, slots=True)
class Migration:
    """One step: the statements that take the database from `version - 1` to `version`."""

    version: int
    description: str
    statements: tuple[str, ...]


# --- version 1: the spend log of the releases before the control plane -----------------------
# Written out, not derived from spend/store.py's COLUMNS: that list grows, this step never does.
# The releases before declared the floats REAL; SQLite gives both spellings the same affinity.

_V1_SPEND_LOGS = """
CREATE TABLE IF NOT EXISTS spend_logs (
    call_id TEXT PRIMARY KEY,
    call_type TEXT,
    stream INTEGER,
    status TEXT,
    start_time DOUBLE PRECISION,
    end_time DOUBLE PRECISION,
    api_key_hash TEXT,
    key_alias TEXT,
    model_group TEXT,
    model_id TEXT,
    provider TEXT,
    api_base TEXT,
    ttft_ms DOUBLE PRECISION,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost DOUBLE PRECISION,
    cache_hit INTEGER,
    attempted_retries INTEGER,
    attempted_fallbacks INTEGER,
    guardrail_information TEXT,
    error TEXT,
    tags TEXT,
    metadata TEXT
)"""

# --- version 2: the control plane ---------------------------------------------------------------
# Every owner of a budget has `spend DOUBLE PRECISION NOT NULL DEFAULT 0` (since the last
# reset) and `budget_reset_at` (unix seconds; NULL: never resets).  Mappings and lists are JSON.

_V2_KEYS = """
CREATE TABLE keys (
    token TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    key_alias TEXT,
    user_id TEXT,
    team_id TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    aliases TEXT NOT NULL DEFAULT '{}',
    max_budget DOUBLE PRECISION,
    soft_budget DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    rpm_limit BIGINT,
    tpm_limit BIGINT,
    max_parallel_requests BIGINT,
    model_max_budget TEXT NOT NULL DEFAULT '{}',
    model_rpm_limit TEXT NOT NULL DEFAULT '{}',
    model_tpm_limit TEXT NOT NULL DEFAULT '{}',
    guardrails TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    blocked INTEGER NOT NULL DEFAULT 0,
    allowed_routes TEXT NOT NULL DEFAULT '[]',
    expires DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    config_owned INTEGER NOT NULL DEFAULT 0
)"""

_V2_TEAMS = """
CREATE TABLE teams (
    team_id TEXT PRIMARY KEY,
    team_alias TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    max_budget DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    rpm_limit BIGINT,
    tpm_limit BIGINT,
    max_parallel_requests BIGINT,
    guardrails TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    blocked INTEGER NOT NULL DEFAULT 0,
    members_with_roles TEXT NOT NULL DEFAULT '[]',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    config_owned INTEGER NOT NULL DEFAULT 0
)"""

_V2_USERS = """
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    user_email TEXT,
    user_role TEXT NOT NULL DEFAULT 'internal_user',
    models TEXT NOT NULL DEFAULT '[]',
    max_budget DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    rpm_limit BIGINT,
    tpm_limit BIGINT,
    max_parallel_requests BIGINT,
    teams TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)"""

_V2_END_USERS = """
CREATE TABLE end_users (
    user_id TEXT PRIMARY KEY,
    alias TEXT,
    max_budget DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    rpm_limit BIGINT,
    tpm_limit BIGINT,
    blocked INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)"""

# A key's spend per model group, for `model_max_budget` (each model resets on its own).
_V2_KEY_MODEL_SPEND = """
CREATE TABLE key_model_spend (
    token TEXT NOT NULL,
    model TEXT NOT NULL,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_reset_at DOUBLE PRECISION,
    PRIMARY KEY (token, model)
)"""

# --- version 3: Responses API state for deployments served through chat -----------------------
# One row per stored response: the whole conversation up to and including it (input items, then
# output items, as Responses items in JSON), so a follow-up reads one row, and the Response object
# itself (for `GET /v1/responses/{id}`).  `response_id` is the id the client was given;
# `api_key_hash` / `team_id` say who may continue it; `size_bytes` is items plus response.

_V3_RESPONSE_STATES = """
CREATE TABLE response_states (
    response_id TEXT PRIMARY KEY,
    model_group TEXT,
    deployment_id TEXT,
    api_key_hash TEXT,
    team_id TEXT,
    items TEXT NOT NULL,
    response TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "the spend log",
        (
            _V1_SPEND_LOGS,
            "CREATE INDEX IF NOT EXISTS ix_spend_logs_start_time ON spend_logs (start_time)",
            "CREATE INDEX IF NOT EXISTS ix_spend_logs_model_group ON spend_logs (model_group)",
            "CREATE INDEX IF NOT EXISTS ix_spend_logs_api_key_hash ON spend_logs (api_key_hash)",
        ),
    ),
    Migration(
        2,
        "keys, teams, users, end-users and who spent each logged call",
        (
            "ALTER TABLE spend_logs ADD COLUMN team_id TEXT",
            "ALTER TABLE spend_logs ADD COLUMN user_id TEXT",
            "ALTER TABLE spend_logs ADD COLUMN end_user TEXT",
            "CREATE INDEX ix_spend_logs_team_id ON spend_logs (team_id)",
            "CREATE INDEX ix_spend_logs_user_id ON spend_logs (user_id)",
            "CREATE INDEX ix_spend_logs_end_user ON spend_logs (end_user)",
            _V2_KEYS,
            # Unique where given: NULLs are distinct in a unique index in both databases.
            "CREATE UNIQUE INDEX ix_keys_key_alias ON keys (key_alias)",
            "CREATE INDEX ix_keys_team_id ON keys (team_id)",
            "CREATE INDEX ix_keys_user_id ON keys (user_id)",
            _V2_TEAMS,
            _V2_USERS,
            _V2_END_USERS,
            _V2_KEY_MODEL_SPEND,
        ),
    ),
    Migration(
        3,
        "Responses API state of answers served through chat",
        (
            _V3_RESPONSE_STATES,
            "CREATE INDEX ix_response_states_expires_at ON response_states (expires_at)",
            "CREATE INDEX ix_response_states_created_at ON response_states (created_at)",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
)
# One number for "the gateway-trio schema" among the database's advisory locks.
_PG_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(7406351)"
_RECORD_VERSION = "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)"


def schema_version(db: Connection) -> int:
    """The version the database is at: 0 when empty or written before versions were recorded.

    Call inside `migrate`'s transaction (it creates the version table when missing, which
    SQLite and PostgreSQL can both do, rather than asking a catalogue each names differently).
    A database of the releases before the control plane holds `spend_logs` and no version:
    step 1 (all `IF NOT EXISTS`) then finds its table and keeps every row.
    """
    db.execute(_VERSION_TABLE)
    found = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return int(found or 0)


def migrate(db: Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring `db` (autocommit mode: `isolation_level=None`) to the latest version; return it.

    Blocking.  All pending steps run in one write transaction, taken before the version is
    read, so two workers starting at once migrate once: the second waits (busy timeout), then
    finds nothing to do.  Running it again is a no-op.
    """
    _check_sequence(migrations)
    known = migrations[-1].version if migrations else 0
    db.execute(BEGIN_WRITE)
    try:
        if getattr(db, "dialect", "sqlite") == "postgresql":
            # PostgreSQL's BEGIN takes no lock: two instances starting at once queue here, and
            # the second then finds the version the first recorded (held to the commit).
            db.execute(_PG_MIGRATION_LOCK)
        current = schema_version(db)
        if current > known:
            raise DatabaseTooNew(current, known)
        pending = [step for step in migrations if step.version > current]
        for step in pending:
            try:
                for statement in step.statements:
                    db.execute(statement)
                db.execute(_RECORD_VERSION, (step.version, time.time()))
            except sqlite3.Error as error:
                raise MigrationFailed(step.version, step.description, current, error) from error
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return max(current, known)


def _check_sequence(migrations: Sequence[Migration]) -> None:
    """Versions are 1, 2, 3, ...: a gap or a repeat is a programming error caught at first use."""
    versions = [step.version for step in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ... in order, got {versions}")
