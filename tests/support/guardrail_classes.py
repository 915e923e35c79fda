"""Guardrail classes the built-in tests load by "module:ClassName", as an operator's config would."""

from __future__ import annotations

from typing import Any

from gateway_trio.guardrails import CustomGuardrail
from gateway_trio.guardrails.base import blocked


class Shout(CustomGuardrail):
    """Upper-cases every text; blocks texts containing `forbidden` (a required param)."""

    def __init__(self, forbidden: str | None = None, **kwargs: Any) -> None:
        if not forbidden:
            raise ValueError("params.forbidden is required")
        super().__init__(**kwargs)
        self.forbidden = forbidden

    async def apply_guardrail(self, inputs: dict[str, Any], request_data: dict[str, Any], input_type: str) -> dict[str, Any]:
        texts = inputs["texts"]
        if any(self.forbidden in t for t in texts):
            raise blocked(self.guardrail_name, "forbidden word")
        return {**inputs, "texts": [t.upper() for t in texts]}


class KwargsGuardrail(CustomGuardrail):
    """A guardrail whose own methods take only **kwargs (the hook-kwargs tests read `calls`)."""

    calls: list = []

    def should_run_guardrail(self, **kwargs):
        KwargsGuardrail.calls.append(("should_run_guardrail", set(kwargs)))
        return True

    async def apply_guardrail(self, **kwargs):
        KwargsGuardrail.calls.append(("apply_guardrail", set(kwargs)))
        return kwargs["inputs"]


class NotAGuardrail:
    """A class that is not a CustomGuardrail: loading it must be refused."""


shout_instance = Shout(forbidden="x")  # an instance, not a class: also refused


class MaskingDuringCall(CustomGuardrail):
    """Masks SECRET in whatever it checks, and sets `masked` (a test's trio.Event) when it has."""

    masked: Any = None

    async def apply_guardrail(self, inputs: dict[str, Any], request_data: Any, input_type: str) -> dict[str, Any]:
        if MaskingDuringCall.masked is not None:
            MaskingDuringCall.masked.set()
        return {"texts": [text.replace("SECRET", "[MASKED]") for text in inputs["texts"]]}
