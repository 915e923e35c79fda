"""Custom guardrails for the stage tests."""

import trio

from gateway_trio.guardrails import CustomGuardrail, GuardrailBlocked


class Exploding(CustomGuardrail):
    async def apply_guardrail(self, inputs, request_data, input_type):
        raise RuntimeError("internal guardrail bug")


class Sleepy(CustomGuardrail):
    async def apply_guardrail(self, inputs, request_data, input_type):
        await trio.sleep(30)
        return inputs


class SlowBlocker(CustomGuardrail):
    """Blocks after a short think: long enough for the upstream call to be under way."""

    async def apply_guardrail(self, inputs, request_data, input_type):
        await trio.sleep(0.3)
        raise GuardrailBlocked("blocked during the call")
