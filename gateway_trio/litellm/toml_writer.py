"""A small TOML writer for the configs the gateway generates (tables, arrays of tables,
strings, numbers, booleans, arrays and inline tables)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key(name: str) -> str:
    return name if BARE_KEY.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def value(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError("TOML here takes finite numbers only")
        return repr(item)
    if isinstance(item, str):
        return json.dumps(item, ensure_ascii=False)
    if isinstance(item, (list, tuple)):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }" if item else "{}"
    raise TypeError(f"cannot write {type(item).__name__} as TOML")


def _table(lines: list[str], header: str, table: dict[str, Any], subtables: tuple[str, ...] = ()) -> None:
    lines.append(header)
    for name, item in table.items():
        if name not in subtables:
            lines.append(f"{key(name)} = {value(item)}")
    prefix = header.strip("[]")
    for name in subtables:
        if table.get(name):
            lines.append(f"[{prefix}.{name}]")
            for sub, item in table[name].items():
                lines.append(f"{key(sub)} = {value(item)}")


def dumps(document: dict[str, Any], *, subtables: dict[str, tuple[str, ...]] | None = None) -> str:
    """Plain tables first, then arrays of tables; `subtables` names the keys of array entries
    written as their own sub-tables (`[models.info]`) rather than inline."""
    subtables = subtables or {}
    lines: list[str] = []
    for name, item in document.items():
        if isinstance(item, dict):
            _table(lines, f"[{key(name)}]", item)
            lines.append("")
    for name, item in document.items():
        if isinstance(item, list) and all(isinstance(entry, dict) for entry in item):
            for entry in item:
                _table(lines, f"[[{key(name)}]]", entry, subtables.get(name, ()))
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"
