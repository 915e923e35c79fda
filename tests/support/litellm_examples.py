"""LiteLLM's documented example hooks, ported by changing only their imports.

Written fresh from what LiteLLM's docs say its proxy examples do (`custom_callbacks.py`:
`MyCustomHandler`, loaded as `proxy_handler_instance`; `custom_guardrail.py`:
`myCustomGuardrail`), not copied.  Where the docs' examples print, these keep what they would
print in `seen`, so a test can read it.  Everything between the import block and the witness at
the end reads its arguments exactly as a LiteLLM hook does, in the docs' own style.
"""
# ruff: noqa: UP045, BLE001, SIM102 - the docs' style (Optional, nested ifs, a catch-all), kept as written there

# --- the imports: the only lines that differ from a LiteLLM hook file -------------------------
# LiteLLM:  import litellm
#           from litellm.integrations.custom_logger import CustomLogger
#           from litellm.integrations.custom_guardrail import CustomGuardrail
#           from litellm.proxy._types import UserAPIKeyAuth
#           from litellm.caching.caching import DualCache
import logging
from typing import Any, ClassVar, Literal, Optional

import gateway_trio.hooks as litellm
from gateway_trio.guardrails import CustomGuardrail
from gateway_trio.hooks import CustomLogger, DualCache, UserAPIKeyAuth

verbose_proxy_logger = logging.getLogger("litellm_examples")


# --- custom_callbacks.py ---------------------------------------------------------------------
class MyCustomHandler(CustomLogger):
    def __init__(self):
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def log_pre_api_call(self, model, messages, kwargs):
        self.seen.append(("Pre-API Call", {"model": model, "messages": messages, "kwargs": kwargs}))

    def log_post_api_call(self, kwargs, response_obj, start_time, end_time):
        self.seen.append(("Post-API Call", {"kwargs": kwargs}))

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.seen.append(("On Success", {"kwargs": kwargs, "response_obj": response_obj}))

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.seen.append(("On Failure", {"kwargs": kwargs, "response_obj": response_obj}))

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        # log: key, user, model, prompt, response, tokens, cost
        # Access kwargs passed to litellm.completion()
        model = kwargs.get("model", None)
        messages = kwargs.get("messages", None)
        user = kwargs.get("user", None)

        # Access litellm_params passed to litellm.completion(), example access `metadata`
        litellm_params = kwargs.get("litellm_params", {})
        metadata = litellm_params.get("metadata", {})  # headers passed to LiteLLM proxy, can be found here

        # The cost LiteLLM computed for the call
        response_cost: Optional[float] = kwargs.get("response_cost", None)

        # tokens used in response
        usage = response_obj["usage"]
        standard_logging_object = kwargs.get("standard_logging_object", None)

        self.seen.append(
            (
                "On Async Success",
                {
                    "model": model,
                    "messages": messages,
                    "user": user,
                    "metadata": metadata,
                    "proxy_server_request": litellm_params.get("proxy_server_request"),
                    "api_call_start_time": kwargs.get("api_call_start_time"),
                    "start_time": start_time,
                    "end_time": end_time,
                    "response_cost": response_cost,
                    "usage": usage,
                    "total_tokens": usage.total_tokens,
                    "response_model": response_obj.model,
                    "content": response_obj.choices[0].message.content,
                    "response_obj": response_obj,
                    "standard_logging_object": standard_logging_object,
                    "cost_line": f"Model {response_obj.model} Cost: ${response_cost:.8f}",
                },
            )
        )

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        try:
            # Access kwargs passed to litellm.completion()
            model = kwargs.get("model", None)
            messages = kwargs.get("messages", None)
            user = kwargs.get("user", None)

            # Access litellm_params passed to litellm.completion(), example access `metadata`
            litellm_params = kwargs.get("litellm_params", {})
            metadata = litellm_params.get("metadata", {})

            # Access Exceptions & Traceback
            exception_event = kwargs.get("exception", None)
            traceback_event = kwargs.get("traceback_exception", None)

            self.seen.append(
                (
                    "On Async Failure",
                    {
                        "model": model,
                        "messages": messages,
                        "user": user,
                        "metadata": metadata,
                        "exception": exception_event,
                        "status_code": exception_event.status_code,
                        "traceback": traceback_event,
                        "response_obj": response_obj,
                        "standard_logging_object": kwargs.get("standard_logging_object"),
                    },
                )
            )
        except Exception as e:
            print(f"Exception: {e}")

    async def async_post_call_failure_hook(
        self, request_data: dict, original_exception: Exception, user_api_key_dict: UserAPIKeyAuth
    ):
        self.seen.append(
            (
                "Post-Call Failure",
                {
                    "exception": original_exception,
                    "class": type(original_exception).__name__,
                    "status_code": getattr(original_exception, "status_code", None),
                    "is_rate_limit": isinstance(original_exception, litellm.RateLimitError),
                },
            )
        )


proxy_handler_instance = MyCustomHandler()


# --- custom_guardrail.py ---------------------------------------------------------------------
class myCustomGuardrail(CustomGuardrail):
    def __init__(self, **kwargs):
        # store kwargs as optional_params
        self.optional_params = kwargs
        super().__init__(**kwargs)

    async def async_pre_call_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        cache: DualCache,
        data: dict,
        call_type: Literal[
            "completion",
            "text_completion",
            "embeddings",
            "image_generation",
            "moderation",
            "audio_transcription",
        ],
    ) -> Optional[dict]:
        """Runs before the LLM API call, on input only: masks the word `litellm`."""
        _messages = data.get("messages")
        if _messages:
            for message in _messages:
                _content = message.get("content")
                if isinstance(_content, str):
                    if "litellm" in _content.lower():
                        _content = _content.replace("litellm", "********")
                        message["content"] = _content
        verbose_proxy_logger.debug("async_pre_call_hook: Message after masking %s", _messages)
        return data

    async def async_moderation_hook(self, data: dict, user_api_key_dict: UserAPIKeyAuth, call_type: str):
        """Runs in parallel to the LLM API call, on input only: can only accept or reject."""
        _messages = data.get("messages")
        if _messages:
            for message in _messages:
                _content = message.get("content")
                if isinstance(_content, str):
                    if "litellm" in _content.lower():
                        raise ValueError("Guardrail failed words - `litellm` detected")

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: UserAPIKeyAuth, response):
        """Runs on the LLM API call's response: rejects it when it mentions coffee."""
        verbose_proxy_logger.debug("async_post_call_success_hook response: %s", response)
        if isinstance(response, litellm.ModelResponse):
            for choice in response.choices:
                if isinstance(choice, litellm.Choices):
                    verbose_proxy_logger.debug("async_post_call_success_hook choice: %s", choice)
                    if choice.message.content and "coffee" in choice.message.content:
                        raise ValueError("Guardrail failed Coffee Detected")


# --- the suite's witness (not part of the examples) ---------------------------------------------
class WatchedCustomGuardrail(myCustomGuardrail):
    """The docs' guardrail, unchanged, with a note of what its post-call hook did: whether a
    raise blocks the answer is the guardrail stage's business; here it is what the hook saw."""

    outcomes: ClassVar[list[tuple[str, Any]]] = []

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        try:
            result = await super().async_post_call_success_hook(data, user_api_key_dict, response)
        except ValueError as error:
            self.outcomes.append(("raised", str(error)))
            raise
        self.outcomes.append(("passed", type(response).__name__))
        return result
