"""Importing the operator's hooks: only `package.module:object` names written in the config.

Nothing from a request is ever imported or evaluated; a name is resolved with importlib and
getattr, never with eval.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from gateway_trio.config import ConfigError


def load_object(name: str, *, what: str = "hook") -> Any:
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{what} {name!r}: expected 'package.module:object'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what} {name!r}: cannot import {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"{what} {name!r}: {module_name!r} has no attribute {attribute!r}") from None
    return target


def load_hook(name: str) -> Any:
    """A hook object: an instance as named, or a class instantiated with no arguments."""
    target = load_object(name)
    if isinstance(target, type):
        try:
            return target()
        except Exception as exc:  # the operator's constructor: report, never crash startup silently
            raise ConfigError(f"hook {name!r}: constructing it failed: {exc}") from None
    return target


def allow_imports_beside(config_source: str) -> None:
    """Make modules next to the config file importable, as LiteLLM users expect."""
    path = Path(config_source)
    if not path.is_file():
        return
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
