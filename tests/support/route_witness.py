"""A hook and a guardrail that only watch, for the route matrix."""

from gateway_trio.guardrails import CustomGuardrail
from gateway_trio.hooks import CustomLogger


class Witness(CustomLogger):
    def __init__(self):
        super().__init__()
        self.successes = []
        self.failures = []

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None, call_info=None):
        return {"x-witness": "failure" if response is None else "success",
                "x-witness-provider": str(call_info["provider"])}

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.successes.append(kwargs)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.failures.append(kwargs)


class WatchingGuardrail(CustomGuardrail):
    async def apply_guardrail(self, inputs, request_data, input_type):
        return inputs
