"""The `regex` guardrail: block a request or response when any configured pattern matches.

The block reason names the pattern's index, never the matched text: a pattern is usually
there to catch something that must not travel (a key, an internal host name), and the reason
goes back to the client and into the spend log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from gateway_trio.guardrails.base import InputType, blocked
from gateway_trio.guardrails.params import BuiltinGuardrail, Params

FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
DEFAULT_MESSAGE = "text matches a blocked pattern"


class RegexGuardrail(BuiltinGuardrail):
    """params: `patterns` (required list), `flags` ("i", "m", "s" letters), `message`."""

    PARAMS: ClassVar[Mapping[str, Any]] = {"patterns": None, "flags": "", "message": None}

    def configure(self, params: Params) -> None:
        self.patterns = compile_patterns(params)
        self.message = params.optional_text("message") or DEFAULT_MESSAGE

    async def apply_guardrail(
        self, inputs: dict[str, Any], request_data: dict[str, Any], input_type: InputType
    ) -> dict[str, Any]:
        index = self.first_match(inputs.get("texts") or [])
        if index is not None:
            raise blocked(self.guardrail_name, f"{self.message} (pattern #{index})")
        return inputs

    def first_match(self, texts: list[Any]) -> int | None:
        """Index of the first pattern that matches any text, or None."""
        for index, pattern in enumerate(self.patterns):
            for text in texts:
                if isinstance(text, str) and pattern.search(text):
                    return index
        return None


def compile_patterns(params: Params) -> list[re.Pattern[str]]:
    patterns, flags = params["patterns"], params["flags"]
    if patterns is None:
        raise params.invalid("patterns", "is required")
    if isinstance(patterns, str):
        patterns = [patterns]  # a lone pattern is an easy TOML slip; accept it
    if not isinstance(patterns, list) or not patterns:
        raise params.invalid("patterns", "must be a non-empty list of regexes")
    if not isinstance(flags, str) or any(letter not in FLAGS for letter in flags):
        raise params.invalid("flags", f"must be a string of {''.join(FLAGS)!r} letters")
    combined = 0
    for letter in flags:
        combined |= FLAGS[letter]
    compiled = []
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern:
            raise params.invalid(f"patterns[{index}]", "must be a non-empty string")
        try:
            compiled.append(re.compile(pattern, combined))
        except re.error as exc:
            raise params.invalid(f"patterns[{index}]", f"is not a valid regex: {exc}") from None
    return compiled


__all__ = ["RegexGuardrail"]
