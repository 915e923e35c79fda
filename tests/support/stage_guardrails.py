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


class RedactingStreamGuardrail(CustomGuardrail):
    """A guardrail written as hook methods: rewrites 'bad' in streamed chunks and answers."""

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        async for chunk in response:
            for choice in chunk.choices:
                if choice.delta.get("content"):
                    choice.delta.content = choice.delta.content.replace("bad", "***")
            yield chunk

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        message = response.choices[0].message
        message.content = message.content.replace("bad", "***")
        return response
