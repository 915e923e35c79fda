"""Fixtures every test may use: the mock upstream (`gateway_trio.testing`) and a client aimed at it.

The suite's own helpers live in tests/support/ and are imported by their plain names
(`from harness import ...`, `"hook_classes:Recorder"` in a config): pyproject's pytest
`pythonpath` puts tests/support (and tests, for the `hostile` package) on the path.
"""

from typing import AsyncIterator

import httpx
import pytest

from gateway_trio.testing import MockUpstream


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
