"""The `pii` guardrail: mask (or block on) email addresses, phone numbers and card numbers.

Patterns lean towards missing an odd format rather than mangling ordinary text: phone numbers
need a `+` prefix or North American 3-3-4 grouping with separators, so years, counts and order
numbers pass; a card number must also pass the Luhn check.  Every pattern is anchored with a
look-behind so that a long run of characters is scanned once, not once per position.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Callable, ClassVar

from gateway_trio.guardrails.base import InputType, blocked
from gateway_trio.guardrails.params import BuiltinGuardrail, Params

ENTITIES = ("email", "phone", "card")
ACTIONS = ("mask", "block")
MASKS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]"}

EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,63}(?![A-Za-z0-9-])"
)
_SEP = r"[ .-]"
PHONE = re.compile(
    r"(?<![\w+])(?:"
    # International: +CC then separated groups (an optional "(0)" or area code in parentheses),
    # or the bare E.164 form.  Digit count is checked afterwards (7..15).
    rf"\+\d{{1,4}}(?:{_SEP}?\(\d{{1,4}}\){_SEP}?\d{{1,6}})?(?:{_SEP}\d{{1,6}}){{0,6}}"
    r"|\+\d{7,15}"
    # North American: optional 1, area code (in parentheses or followed by a separator), 3-4.
    rf"|(?:1{_SEP}?)?(?:\(\d{{3}}\){_SEP}?|\d{{3}}{_SEP})\d{{3}}{_SEP}\d{{4}}"
    r")(?!\d)"
)
# 13..19 digits, each optionally preceded by one space or dash; Luhn decides afterwards.
CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?![\d])")
_DIGIT = re.compile(r"\d")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (and ~90% of random numbers fail)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _is_card(match: re.Match[str]) -> bool:
    return luhn_valid(_digits(match.group()))


def _is_phone(match: re.Match[str]) -> bool:
    return 7 <= len(_digits(match.group())) <= 15


def _is_email(match: re.Match[str]) -> bool:
    return True


# Order matters: emails first (they may hold digits), then cards (so a card's digit groups are
# gone before the phone pattern looks), then phones.
_DETECTORS: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], bool]]] = {
    "email": (EMAIL, _is_email),
    "card": (CARD, _is_card),
    "phone": (PHONE, _is_phone),
}


class PIIGuardrail(BuiltinGuardrail):
    """params: `entities` (subset of email, phone, card; default all), `action` (mask | block)."""

    PARAMS: ClassVar[Mapping[str, Any]] = {"entities": None, "action": "mask"}

    def configure(self, params: Params) -> None:
        chosen = list(ENTITIES) if params["entities"] is None else params["entities"]
        if not isinstance(chosen, list) or not chosen or any(e not in ENTITIES for e in chosen):
            raise params.invalid("entities", f"must be a non-empty list from {list(ENTITIES)}")
        self.entities = [e for e in _DETECTORS if e in chosen]
        self.action = params.choice("action", ACTIONS)
        # Masking a stream only helps before the text leaves: hold chunks until checked.
        self.default_stream_mode = "buffer" if self.action == "mask" else "end"

    async def apply_guardrail(
        self, inputs: dict[str, Any], request_data: dict[str, Any], input_type: InputType
    ) -> dict[str, Any]:
        texts = inputs.get("texts") or []
        if self.action == "block":
            found = [e for e in self.entities if any(isinstance(t, str) and self._contains(e, t) for t in texts)]
            if found:
                # Name the kinds found, never the values.
                raise blocked(self.guardrail_name, f"text contains {', '.join(found)}")
            return inputs
        masked = [self.mask(t) if isinstance(t, str) else t for t in texts]
        if masked == texts:
            return inputs
        return {**inputs, "texts": masked}

    def mask(self, text: str) -> str:
        """`text` with each enabled entity replaced by its placeholder."""
        for entity in self.entities:
            if not _worth_scanning(entity, text):
                continue
            pattern, accept = _DETECTORS[entity]
            placeholder = MASKS[entity]
            text = pattern.sub(lambda m: placeholder if accept(m) else m.group(), text)
        return text

    def _contains(self, entity: str, text: str) -> bool:
        if not _worth_scanning(entity, text):
            return False
        pattern, accept = _DETECTORS[entity]
        return any(accept(m) for m in pattern.finditer(text))


def _worth_scanning(entity: str, text: str) -> bool:
    """A cheap pre-check (C-speed) that skips the full pattern on most texts."""
    if entity == "email":
        return "@" in text
    return _DIGIT.search(text) is not None


__all__ = ["PIIGuardrail", "luhn_valid"]
