"""The hook API (SPEC §6): a base class whose methods match LiteLLM's CustomLogger.

Existing LiteLLM callback classes port by changing one import.  Every method here is a no-op;
the gateway calls only the methods a subclass overrides (see `gateway_trio.hooks.inline`), with
keyword arguments of these names, as LiteLLM does: a method may take `**kwargs` instead.

LiteLLM's response classes (`ModelResponse`, `Choices`, `Usage`, ...) and exception classes
(`RateLimitError`, `BadRequestError`, `Timeout`, ...) are importable from here too, so a hook's
`isinstance` checks and `raise`s port with the same one import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, AsyncGenerator, AsyncIterator, Literal

from gateway_trio.hooks.exceptions import (
    LITELLM_EXCEPTION_TYPES,
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    LiteLLMException,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
    UnprocessableEntityError,
    UnsupportedParamsError,
)
from gateway_trio.hooks.views import (
    AnthropicMessagesResponse,
    AnthropicUsage,
    ChatCompletionMessageToolCall,
    Choices,
    Delta,
    EmbeddingResponse,
    Function,
    LiteLLMObject,
    Message,
    ModelResponse,
    ModelResponseStream,
    OpenAIModerationResponse,
    ResponseAPIUsage,
    ResponsesAPIResponse,
    StreamingChoices,
    TextChoices,
    TextCompletionResponse,
    TranscriptionResponse,
    Usage,
)

# The `call_type` hooks are handed (LiteLLM's names): a public type only; each is an
# `Api.call_type` of `gateway_trio.apis`, where what differs between the APIs is decided.
CallType = Literal[
    "completion", "text_completion", "embeddings", "moderation", "responses",
    "anthropic_messages", "count_tokens", "audio_transcription", "image_generation", "pass_through_endpoint",
]


@dataclass(slots=True)
class UserAPIKeyAuth:
    """Who made the call, as hooks see it, with LiteLLM's field names: the hash of the key,
    never the key itself.

    Filled from the key, its team and its user (`gateway_trio.control.tenants`); the master
    key fills only the first fields.  Times (`expires`, `budget_reset_at`) are UTC datetimes,
    as LiteLLM hands them.
    """

    api_key: str | None = None  # sha256 of the caller's key
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    team_alias: str | None = None
    models: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    max_budget: float | None = None
    spend: float = 0.0
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    token: str | None = None  # LiteLLM's other name of the same hash
    key_name: str | None = None  # "sk-...abcd"
    end_user_id: str | None = None
    soft_budget: float | None = None
    max_parallel_requests: int | None = None
    budget_duration: str | None = None
    budget_reset_at: datetime | None = None
    expires: datetime | None = None
    allowed_routes: list[str] = field(default_factory=list)
    blocked: bool | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    model_max_budget: dict[str, Any] = field(default_factory=dict)
    model_spend: dict[str, float] = field(default_factory=dict)
    team_metadata: dict[str, Any] | None = None
    team_max_budget: float | None = None
    team_spend: float | None = None
    team_models: list[str] = field(default_factory=list)
    team_rpm_limit: int | None = None
    team_tpm_limit: int | None = None
    team_blocked: bool = False
    user_role: str | None = None
    user_email: str | None = None
    user_rpm_limit: int | None = None
    user_tpm_limit: int | None = None
    end_user_rpm_limit: int | None = None
    end_user_tpm_limit: int | None = None
    end_user_max_budget: float | None = None


class DualCache:
    """A small in-process cache handed to `async_pre_call_hook`, shared by every call."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def get_cache(self, key: str, **_: Any) -> Any:
        return self._values.get(key)

    def set_cache(self, key: str, value: Any, **_: Any) -> None:
        self._values[key] = value

    def delete_cache(self, key: str) -> None:
        self._values.pop(key, None)

    async def async_get_cache(self, key: str, **kwargs: Any) -> Any:
        return self.get_cache(key, **kwargs)

    async def async_set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        self.set_cache(key, value, **kwargs)


class CustomLogger:
    """Subclass and override what you need; see SPEC §6 for when each method runs."""

    def __init__(self, **kwargs: Any) -> None:
        pass

    # --- logging: run off the request path by the callback actor -----------------------

    def log_pre_api_call(self, model: str, messages: Any, kwargs: dict[str, Any]) -> None:
        pass

    def log_post_api_call(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    async def async_log_pre_api_call(self, model: str, messages: Any, kwargs: dict[str, Any]) -> None:
        pass

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        pass

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        pass

    # --- in-line hooks: awaited in the pipeline, with a timeout --------------------------

    async def async_pre_call_hook(
        self, user_api_key_dict: UserAPIKeyAuth, cache: DualCache, data: dict[str, Any], call_type: CallType
    ) -> dict[str, Any] | str | None:
        """Return a dict to replace the request, a string to refuse it, or raise to reject it."""
        return None

    async def async_moderation_hook(
        self, data: dict[str, Any], user_api_key_dict: UserAPIKeyAuth, call_type: CallType
    ) -> Any:
        """Runs while the upstream works on the call (a copy of the request); raise to reject
        it, which cancels the upstream call.  What it returns is ignored."""
        return None

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: UserAPIKeyAuth, response: Any
    ) -> Any:
        """Return a replacement response, or None to keep it; raise to reject the answer (an
        `HTTPException`-style `status_code` is its status, else 400)."""
        return None

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: UserAPIKeyAuth,
        traceback_str: str | None = None,
    ) -> Any:
        """Return an exception to replace the client-facing error, or None."""
        return None

    async def async_post_call_streaming_hook(self, user_api_key_dict: UserAPIKeyAuth, response: Any) -> Any:
        """Called per chunk; return the (possibly edited) chunk."""
        return response

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: UserAPIKeyAuth, response: AsyncIterator[Any], request_data: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        """Wraps the whole stream: may edit, drop or add chunks."""
        async for chunk in response:
            yield chunk

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
        request_headers: dict[str, str] | None = None,
        call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        """Headers to add to the HTTP response; `response` is None on failure."""
        return None


__all__ = [
    "LITELLM_EXCEPTION_TYPES", "APIConnectionError", "APIError", "AnthropicMessagesResponse", "AnthropicUsage",
    "AuthenticationError", "BadRequestError", "BudgetExceededError", "ChatCompletionMessageToolCall", "Choices",
    "ContentPolicyViolationError", "ContextWindowExceededError", "CustomLogger", "Delta", "DualCache",
    "EmbeddingResponse", "Function", "InternalServerError", "LiteLLMException", "LiteLLMObject", "Message",
    "ModelResponse", "ModelResponseStream", "NotFoundError", "OpenAIModerationResponse", "PermissionDeniedError",
    "RateLimitError", "ResponseAPIUsage", "ResponsesAPIResponse", "ServiceUnavailableError", "StreamingChoices",
    "TextChoices", "TextCompletionResponse", "Timeout", "TranscriptionResponse", "UnprocessableEntityError",
    "UnsupportedParamsError", "Usage", "UserAPIKeyAuth",
]
