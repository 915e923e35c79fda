"""Guardrails: `from gateway_trio.guardrails import CustomGuardrail, GuardrailBlocked`.

The public names live in `base`; the rest of the wing runs them: `stage` decides which
guardrails run on a call, when, and what their verdicts do; `texts` finds the texts they read
and rewrite; `builtin` builds a configured one, a built-in (`regex`, `pii`, `http`,
`openai_moderation`, sharing their constructor and param checks in `params`, the last two
their HTTP client in `remote`) or the operator's class.  A guardrail is a hook that checks texts, so the wing sits above `hooks/`.
"""

from gateway_trio.errors import GuardrailBlocked
from gateway_trio.guardrails.base import CustomGuardrail

__all__ = ["CustomGuardrail", "GuardrailBlocked"]
