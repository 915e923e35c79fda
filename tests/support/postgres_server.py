"""A real PostgreSQL server for the tests: one per session, a fresh database per test.

The server is Debian's PostgreSQL (`scripts/test` installs the `postgresql` package when it
is missing and it may).  It refuses to run as root, and the tests run as root on CI machines:
then `initdb` and `postgres` run as the unprivileged `postgres` user.  The data folder is a
temp dir, the port ephemeral, the unix socket inside the data folder, `fsync=off` (the data is
thrown away).  A database per test is `CREATE DATABASE ... TEMPLATE` of an empty one, a few
tens of milliseconds.

Missing binaries skip the PostgreSQL tests with the reason, except under `CI=true`, where
a missing server is a failure, never a skip.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
UNPRIVILEGED_USER = "postgres"
START_TIMEOUT_S = 60
TEST_DATABASE = "gateway_tests"


def find_bin_dir() -> str | None:
    """The folder holding `initdb`, `pg_ctl` and `postgres`: on PATH, else Debian's versioned one."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return os.path.dirname(on_path)
    for folder in sorted(glob.glob(BIN_GLOB), reverse=True):  # the newest version first
        if all(os.path.exists(os.path.join(folder, name)) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def missing(reason: str) -> None:
    """Skip, or fail under CI=true (a missing server must never pass unseen there)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason} (scripts/test installs it)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """One running server; `stop()` and `start()` for the outage tests."""

    bin_dir: str
    root: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="gw-pg-"))
    port: int = field(default_factory=_free_port)
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> str:
        return os.path.join(self.root, "data")

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_server_user(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)

    def init(self) -> None:
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(UNPRIVILEGED_USER)
            except KeyError:
                missing(f"running as root and there is no {UNPRIVILEGED_USER!r} user to run the server as")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        done = self._as_server_user(
            os.path.join(self.bin_dir, "initdb"),
            "-D",
            self.data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        done = self._as_server_user(
            os.path.join(self.bin_dir, "pg_ctl"),
            "-D",
            self.data,
            "-l",
            os.path.join(self.root, "log"),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )
        if done.returncode != 0:
            log_file = os.path.join(self.root, "log")
            log = Path(log_file).read_text() if os.path.exists(log_file) else ""
            raise RuntimeError(f"PostgreSQL did not start: {done.stdout}\n{done.stderr}\n{log}")

    def stop(self) -> None:
        """Stop at once (`-m fast`: open connections are cut, as in a real outage)."""
        self._as_server_user(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def create_database(self) -> str:
        """A fresh, empty database as the gateway sees it; its url.

        A schema of its own in one shared database, made the connection's `search_path` by
        the url: as empty as a new database for the migrations and the stores, in about a
        millisecond (`CREATE DATABASE` checkpoints, ~150 ms).
        """
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(TEST_DATABASE), autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url(TEST_DATABASE)}?options=-csearch_path%3D{name}"

    def create_test_database(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{TEST_DATABASE}"')

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        missing("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    server = PostgresServer(bin_dir)  # type: ignore[arg-type]
    server.init()
    server.start()
    server.create_test_database()
    return server
