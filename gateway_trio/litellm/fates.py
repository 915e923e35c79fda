"""What became of every key of a LiteLLM config: converted, unsupported or dropped.

The importer records a fate for each key path it handles (`model_list[0].litellm_params.rpm`);
`account_for_the_rest` then walks the whole input and gives every key it did not handle the
fate `unsupported`, so no key of the input can vanish silently, whatever LiteLLM adds later.
A fate on a key covers everything under it (a `headers` table is converted as one).  Reasons
name keys and LiteLLM features, never a value: values may be secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Fate = Literal["converted", "unsupported", "dropped"]
UNKNOWN = "has no equivalent here (not a key the importer knows)"


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _under(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith((ancestor + ".", ancestor + "["))


@dataclass
class Conversion:
    """The converted config, and the fate (with its reason) of every key path of the input."""

    config: dict[str, Any] = field(default_factory=dict)
    fates: dict[str, tuple[Fate, str]] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)  # key paths in the input's order

    def converted(self, path: str, note: str = "") -> None:
        self.fates[path] = ("converted", note)

    def unsupported(self, path: str, reason: str) -> None:
        self.fates[path] = ("unsupported", reason)

    def dropped(self, path: str, reason: str) -> None:
        self.fates[path] = ("dropped", reason)

    def fate_of(self, path: str) -> Fate | None:
        """The fate of `path`, set on it or on a key above it."""
        for marked, (fate, _) in self.fates.items():
            if _under(path, marked):
                return fate
        return None

    def report(self) -> list[str]:
        """The lines for stderr, in the input's order: every key not converted, and the
        conversions worth a note."""
        paths = sorted(self.fates, key=lambda path: self.order.get(path, len(self.order)))
        return [
            f"{fate}: {path}: {reason}"
            for path in paths
            for fate, reason in [self.fates[path]]
            if fate != "converted" or reason
        ]

    def account_for_the_rest(self, document: Any) -> None:
        """Mark `unsupported` the highest keys of `document` that no fate covers."""
        marked = list(self.fates)

        def visit(node: Any, path: str) -> None:
            items: Iterator[tuple[str | int, Any]]
            if isinstance(node, dict):
                items = iter(node.items())
            elif isinstance(node, list):
                items = enumerate(node)
            else:
                return
            for key, value in items:
                here = join(path, key if isinstance(key, int) else str(key))
                self.order.setdefault(here, len(self.order))
                if any(_under(here, m) for m in marked):
                    continue
                if any(_under(m, here) for m in marked):
                    visit(value, here)  # some keys below were handled, not all perhaps
                else:
                    self.unsupported(here, UNKNOWN)

        visit(document, "")


def leaf_paths(document: Any, path: str = "") -> Iterator[str]:
    """Every key path of `document` that holds no further keys (what a test checks is covered)."""
    if isinstance(document, dict) and document:
        for key, value in document.items():
            yield from leaf_paths(value, join(path, str(key)))
    elif isinstance(document, list) and document:
        for index, value in enumerate(document):
            yield from leaf_paths(value, join(path, index))
    elif path:
        yield path
