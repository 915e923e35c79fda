"""Guardrails: `from gateway_trio.guardrails import CustomGuardrail, GuardrailBlocked`."""

from gateway_trio.errors import GuardrailBlocked
from gateway_trio.guardrails.base import CustomGuardrail

__all__ = ["CustomGuardrail", "GuardrailBlocked"]
