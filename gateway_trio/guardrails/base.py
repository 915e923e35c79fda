"""The guardrail API (SPEC §7): a CustomLogger subclass that checks texts.

A guardrail either implements `apply_guardrail` — it gets the texts of the request or the
response and returns them (edited, to mask) or raises `GuardrailBlocked` — or implements the
hook methods itself.  The guardrail actor stage decides when it runs (`event_hook` modes).
"""

from __future__ import annotations

from typing import Any, Iterable, Literal

from gateway_trio.errors import GuardrailBlocked
from gateway_trio.hooks import CustomLogger

GuardrailMode = Literal["pre_call", "during_call", "post_call", "logging_only"]
InputType = Literal["request", "response"]


class CustomGuardrail(CustomLogger):
    def __init__(
        self,
        guardrail_name: str | None = None,
        event_hook: GuardrailMode | list[GuardrailMode] | None = None,
        default_on: bool = False,
        **params: Any,
    ) -> None:
        super().__init__()
        self.guardrail_name = guardrail_name or type(self).__name__
        hooks = event_hook if event_hook is not None else "pre_call"
        self.event_hook: list[str] = [hooks] if isinstance(hooks, str) else list(hooks)
        self.default_on = default_on
        self.params = params

    def should_run_guardrail(self, data: dict[str, Any], event_type: str) -> bool:
        """Whether this guardrail runs for `event_type` on this request.

        The gateway has already chosen it (default_on, the request's, the key's or the
        deployment's list); this checks that the mode matches.  Override to narrow further.
        An error raised here is a failed run, like one in `apply_guardrail`: it blocks unless
        the guardrail is `fail_open`.
        """
        return event_type in self.event_hook

    async def apply_guardrail(
        self, inputs: dict[str, Any], request_data: dict[str, Any], input_type: InputType
    ) -> dict[str, Any]:
        """Check `inputs["texts"]`; return `inputs` (edited to mask) or raise GuardrailBlocked."""
        return inputs

    @property
    def implements_apply(self) -> bool:
        return type(self).apply_guardrail is not CustomGuardrail.apply_guardrail


def blocked(guardrail: str, reason: str) -> GuardrailBlocked:
    return GuardrailBlocked(f"blocked by guardrail {guardrail!r}: {reason}", code="guardrail_blocked")


def texts_of(values: Iterable[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


__all__ = ["CustomGuardrail", "GuardrailBlocked", "blocked"]
