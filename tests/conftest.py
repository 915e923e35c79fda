import sys
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

# The mock upstream lives in scripts/ (it is also run standalone by the benchmark).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from mock_upstream import MockUpstream  # noqa: E402


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
