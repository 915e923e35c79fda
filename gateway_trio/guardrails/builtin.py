"""Building a configured guardrail: a built-in by name, or the operator's class by import path.

Every failure becomes a `ConfigError` naming the guardrail, so a bad `[[guardrails]]` entry
stops startup with one clear line instead of failing on the first request.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.config import ConfigError
from gateway_trio.guardrails.base import CustomGuardrail, GuardrailMode
from gateway_trio.guardrails.http import HTTPGuardrail
from gateway_trio.guardrails.moderation import OpenAIModerationGuardrail
from gateway_trio.guardrails.pii import PIIGuardrail
from gateway_trio.guardrails.regex import RegexGuardrail
from gateway_trio.hooks.loader import load_object

BUILTINS: dict[str, type[CustomGuardrail]] = {
    "regex": RegexGuardrail,
    "pii": PIIGuardrail,
    "openai_moderation": OpenAIModerationGuardrail,
    "http": HTTPGuardrail,
}


def build_guardrail(
    name: str,
    guardrail: str,
    mode: GuardrailMode | list[GuardrailMode],
    default_on: bool,
    params: dict[str, Any],
) -> CustomGuardrail:
    """Instantiate `guardrail` (a built-in name or "package.module:ClassName") as `name`."""
    cls = guardrail_class(name, guardrail)
    if guardrail in BUILTINS:
        # Built-ins know their params, so a typo is caught here rather than silently ignored.
        # (The stage has already taken its own stream_* keys out of the table.)
        known = list(getattr(cls, "PARAMS", {}))
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ConfigError(
                f"guardrail {name!r}: unknown params for {guardrail!r}: {', '.join(unknown)} "
                f"(known: {', '.join(known)})"
            )
    try:
        return cls(guardrail_name=name, event_hook=mode, default_on=default_on, **params)
    except Exception as exc:  # the constructor validates params; report it as config
        prefix = f"guardrail {name!r}"
        detail = str(exc)
        if isinstance(exc, ValueError) and detail.startswith(prefix):
            raise ConfigError(detail) from None  # the built-ins' messages already name it
        raise ConfigError(f"{prefix}: constructing {guardrail!r} failed: {type(exc).__name__}: {detail}") from None


def guardrail_class(name: str, guardrail: str) -> type[CustomGuardrail]:
    """The class a `guardrail = "..."` value names."""
    if guardrail in BUILTINS:
        return BUILTINS[guardrail]
    if ":" not in guardrail:
        known = ", ".join(sorted(BUILTINS))
        raise ConfigError(
            f"guardrail {name!r}: unknown built-in {guardrail!r} (known: {known}; "
            "or a class as 'package.module:ClassName')"
        )
    try:
        target = load_object(guardrail, what="guardrail class")
    except ConfigError as exc:
        raise ConfigError(f"guardrail {name!r}: {exc}") from None
    except Exception as exc:  # the module itself failed while importing (SyntaxError, ...)
        raise ConfigError(f"guardrail {name!r}: importing {guardrail!r} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(target, type) or not issubclass(target, CustomGuardrail):
        raise ConfigError(f"guardrail {name!r}: {guardrail!r} is not a CustomGuardrail subclass")
    return target


__all__ = ["BUILTINS", "build_guardrail", "guardrail_class"]
