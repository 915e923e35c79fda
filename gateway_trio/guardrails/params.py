"""The built-in guardrails' `params`: one constructor reads them, one checker per kind of value.

Every built-in (`regex`, `pii`, `http`, `openai_moderation`) is built the same way: the
`[[guardrails]]` entry's name, mode and `default_on`, then its `params` table.  They share
`BuiltinGuardrail`'s constructor, declare the params they know with their defaults in `PARAMS`,
and read them in `configure` through `Params`, whose checks word every mistake alike:
`guardrail 'name': params.key ...`.  `build_guardrail` passes such a message on unchanged as
the config error, so a bad entry stops startup with one line naming the guardrail and the key.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar

import httpx

from gateway_trio.guardrails.base import CustomGuardrail


class Params:
    """A built-in guardrail's params table, read one checked value at a time."""

    def __init__(self, guardrail: str, values: Mapping[str, Any]) -> None:
        self.guardrail = guardrail
        self.values = values

    def __getitem__(self, key: str) -> Any:
        """The value as configured, for a check of the guardrail's own."""
        return self.values[key]

    def invalid(self, key: str, problem: str) -> ValueError:
        """The error for `params.<key>` (or `params.<key>[3]`) and what is wrong with it."""
        return ValueError(f"guardrail {self.guardrail!r}: params.{key} {problem}")

    def positive_number(self, key: str) -> float:
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.invalid(key, f"must be a positive number, got {value!r}")
        return float(value)

    def text(self, key: str) -> str:
        """A non-empty string."""
        value = self.values[key]
        if not isinstance(value, str) or not value:
            raise self.invalid(key, "must be a non-empty string")
        return value

    def optional_text(self, key: str) -> str | None:
        """A non-empty string, or None when not configured."""
        return None if self.values[key] is None else self.text(key)

    def choice(self, key: str, allowed: Collection[str]) -> str:
        value = self.values[key]
        if value not in allowed:
            raise self.invalid(key, f"must be one of {list(allowed)}, got {value!r}")
        return value

    def http_url(self, key: str) -> str:
        """A required http(s) URL; the error never echoes it (it may embed credentials)."""
        value = self.values[key]
        if value is None:
            raise self.invalid(key, "is required")
        if not isinstance(value, str):
            raise self.invalid(key, "must be a string")
        try:
            parsed = httpx.URL(value)
        except (httpx.InvalidURL, TypeError):
            raise self.invalid(key, "is not a valid URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise self.invalid(key, "must be an http:// or https:// URL")
        return value

    def string_table(self, key: str) -> dict[str, str]:
        """A table of string values (headers, say); empty when not configured."""
        value = self.values[key]
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise self.invalid(key, "must be a table of string values")
        return dict(value)


class BuiltinGuardrail(CustomGuardrail):
    """The shared constructor of the built-ins: `PARAMS` defaults, then `configure` checks them.

    Params a built-in does not know are refused by `build_guardrail` before it gets here.
    """

    # The params this guardrail knows, each with its default (None: not configured).
    PARAMS: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """CustomGuardrail's arguments; the params among them go over this guardrail's defaults."""
        super().__init__(*args, **{**self.PARAMS, **kwargs})
        self.configure(Params(self.guardrail_name, self.params))

    def configure(self, params: Params) -> None:
        """Check the params and keep what the guardrail needs of them."""


__all__ = ["BuiltinGuardrail", "Params"]
