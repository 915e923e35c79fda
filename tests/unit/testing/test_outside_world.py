"""`gateway_trio.testing` is the outside world: it imports nothing of the gateway, so a test
that passes against the mock upstream passes because the gateway spoke the wire correctly,
not because both sides share code."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway_trio.testing

TESTING = Path(gateway_trio.testing.__file__).parent


def gateway_imports(path: Path) -> set[str]:
    """The `gateway_trio` modules `path` imports, other than `gateway_trio.testing`'s own."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    gateway = {name for name in found if name.split(".")[0] == "gateway_trio"}
    return {name for name in gateway if name.split(".")[:2] != ["gateway_trio", "testing"]}


def test_the_mock_upstream_imports_nothing_of_the_gateway():
    sources = sorted(TESTING.rglob("*.py"))
    assert sources and {str(path.relative_to(TESTING)): gateway_imports(path) for path in sources} == {
        str(path.relative_to(TESTING)): set() for path in sources
    }


def test_the_public_names_are_importable_from_the_package():
    from gateway_trio.testing import Behavior, MockUpstream

    assert MockUpstream().default == Behavior()
