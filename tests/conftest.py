"""Fixtures every test may use: the mock upstream (`gateway_trio.testing`) and a client aimed at it.

The suite's own helpers live in tests/support/ and are imported by their plain names
(`from harness import ...`, `"hook_classes:Recorder"` in a config): pyproject's pytest
`pythonpath` puts tests/support (and tests, for the `hostile` package) on the path.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import harness
import httpx
import pytest
from postgres_server import PostgresServer, start_server

from gateway_trio.testing import MockUpstream


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (skipped, or failed under CI=true, when absent)."""
    server = start_server()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty database of each kind; also the one `harness.make_config` configures.

    The control-plane and spend tests take it, so each runs against SQLite and PostgreSQL.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    monkeypatch.setattr(harness, "DEFAULT_DATABASE_URL", url)
    return url


@pytest.fixture
async def upstream(nursery) -> MockUpstream:
    """A mock LLM upstream on 127.0.0.1:<ephemeral>, stopped with the test's nursery."""
    mock = MockUpstream()
    await nursery.start(mock.serve)
    return mock


@pytest.fixture
def mock(upstream: MockUpstream) -> MockUpstream:
    """The mock upstream under the name its own tests use."""
    return upstream


@pytest.fixture
async def client(upstream: MockUpstream) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client aimed at the mock upstream."""
    async with httpx.AsyncClient(base_url=upstream.base_url, timeout=5) as http:
        yield http
