"""Every room says what it holds: each module opens with a docstring, each wing's one more
than a placeholder (DESIGN: what this room holds and why it is here)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "gateway_trio"
WINGS = sorted(p.parent for p in PACKAGE.glob("*/__init__.py"))
MIN_WING_WORDS = 30  # a sentence on what the room holds and one on why it is there


def docstring(path: Path) -> str | None:
    return ast.get_docstring(ast.parse(path.read_text(), str(path)))


def test_every_module_opens_with_a_docstring():
    missing = sorted(
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__main__.py" and not docstring(p)
    )
    assert missing == []


@pytest.mark.parametrize("wing", WINGS, ids=[w.name for w in WINGS])
def test_every_wing_says_what_it_holds_and_why(wing: Path):
    text = docstring(wing / "__init__.py") or ""
    assert text.strip().lower() != wing.name and len(text.split()) >= MIN_WING_WORDS, text
