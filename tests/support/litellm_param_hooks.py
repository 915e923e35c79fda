"""A pre-call hook that sets LiteLLM's request parameters in `data`, as LiteLLM hooks may."""

from gateway_trio.hooks import CustomLogger


class SetsLiteLLMParams(CustomLogger):
    """Adds `metadata` tags and, when the user asks for it, a `mock_response` and `num_retries`."""

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        data = dict(data)
        data["metadata"] = {"tags": ["from-hook"], "hooked": True}
        data["num_retries"] = 0
        if data.get("messages", [{}])[-1].get("content") == "mock me":
            data["mock_response"] = "mocked by a hook"
        return data


handler = SetsLiteLLMParams()
