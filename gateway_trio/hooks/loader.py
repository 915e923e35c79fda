"""Importing the operator's hooks: only `package.module:object` names written in the config.

Nothing from a request is ever imported or evaluated; a name is resolved with importlib and
getattr, never with eval.  Whatever goes wrong while importing (a missing module, a syntax
error, an exception raised by the module itself) is a `ConfigError` of one line, so that a bad
name stops `check-config` and `serve` with a message instead of a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from gateway_trio.config import ConfigError


def one_line(error: BaseException) -> str:
    """An exception as `Type: message` on one line (an import error's text may span several)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def load_object(name: str, *, what: str = "hook") -> Any:
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{what} {name!r}: expected 'package.module:object'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what} {name!r}: cannot import {module_name!r}: {one_line(exc)}") from None
    except Exception as exc:  # the module itself failed: SyntaxError, NameError, its own raise
        raise ConfigError(f"{what} {name!r}: importing {module_name!r} failed: {one_line(exc)}") from None
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
            raise ConfigError(f"hook {name!r}: constructing it failed: {one_line(exc)}") from None
    return target


def load_function(name: str, *, what: str = "callback") -> Any:
    """A plain callable (LiteLLM's `success_callback` style functions)."""
    target = load_object(name, what=what)
    if not callable(target):
        raise ConfigError(f"{what} {name!r}: is not callable (a {type(target).__name__})")
    return target


def load_actor(name: str) -> Any:
    """An `async def actor(events)`: anything else would only fail once the gateway is serving."""
    target = load_object(name, what="actor")
    if not (inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))):
        raise ConfigError(f"actor {name!r}: must be an async function taking the event channel")
    return target


def allow_imports_beside(config_source: str) -> None:
    """Make modules next to the config file importable, as LiteLLM users expect."""
    path = Path(config_source)
    if not path.is_file():
        return
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
