"""The house holds by construction: no import circles, and no wing imports a wing above it.

Read from the source with `ast` (nothing is imported), every import counts: module level,
inside functions (a lazy import is still a dependency), but not under `if TYPE_CHECKING:`,
which only type checkers follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "gateway_trio"

# Lowest first.  A module may import its own wing and the wings below it, never one above.
# The top-level modules are the shared ground every wing stands on, in this order.
LAYERS = [
    {"errors", "config"},
    {"runtime", "upstream"},
    {"deployment"},
    {"channels"},
    {"adapters"},
    {"spend"},
    {"hooks"},
    {"calls", "auth", "apis"},
    {"guardrails"},
    {"actors"},
    {"control"},
    {"pipeline"},
    {"litellm"},
    {"gateway"},
    {"routes"},
    {"frontend"},
    {"testing", "cli", "__main__"},
]
RANK = {wing: rank for rank, wing in enumerate(LAYERS) for wing in wing}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The gateway_trio modules `path` imports (the module, for `from module import name`)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names if alias.name.startswith("gateway_trio"))
            elif isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("gateway_trio"):
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    found.add(sub if sub in modules else child.module)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) - {module_name(p)} for p in paths}


def wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_no_module_imports_itself_back_through_others():
    assert cycles(graph()) == []


def test_every_wing_has_a_place_in_the_layers():
    wings = {wing(m) for m in graph()} - {"__init__"}
    assert wings <= set(RANK), f"wings without a layer: {sorted(wings - set(RANK))}"


def test_no_wing_imports_a_wing_above_it():
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in targets
        if wing(source) in RANK and wing(target) in RANK and RANK[wing(target)] > RANK[wing(source)]
    )
    assert upward == []


def test_the_top_level_keeps_only_what_everything_shares():
    loose = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(loose) <= 9, loose


def test_the_detector_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
