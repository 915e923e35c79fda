"""One exception hierarchy for everything a client can be told, mapped to HTTP in one place.

Each error knows its HTTP status and its OpenAI `type`; `openai_body` and `anthropic_body`
render it for the two wire formats.  Whose fault an error is decides what it may do to a
deployment: only the upstream's own failures (`UpstreamTimeout`, and `UpstreamError` for a
connection, a 5xx or a 429) are retried and counted towards cooldowns; `InternalError`
(our side of the wire) and `DeploymentBusy` (our own queue) never are.  Messages must
never carry a secret: they are built from names and statuses, never from upstream URLs with
credentials or from keys.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

# The longest wait a `retry-after` may ask for: an upstream's `inf`, `nan` or 1e308 must not
# reach a client, a backoff sleep or an integer conversion as it came.
MAX_RETRY_AFTER_S = 3600.0
# The longest wait admission may give: the time to a budget's reset (a month at most, or
# a few of them for a `3mo` budget) told as it is.
MAX_LIMIT_RETRY_AFTER_S = 400 * 86400.0


class GatewayError(Exception):
    """Base of every error the gateway turns into an HTTP answer."""

    status: int = 500
    error_type: str = "internal_error"
    anthropic_type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = clamp_retry_after(retry_after)
        if status is not None:
            self.status = status

    def openai_body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code if self.code is not None else str(self.status),
            }
        }

    def anthropic_body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.anthropic_type, "message": self.message}}

    def openai_json(self) -> bytes:
        return orjson.dumps(self.openai_body())

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(1, round(self.retry_after)))}


class BadRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"


class AuthError(GatewayError):
    status = 401
    error_type = "authentication_error"
    anthropic_type = "authentication_error"


class Forbidden(GatewayError):
    status = 403
    error_type = "permission_error"
    anthropic_type = "permission_error"


class NotFound(GatewayError):
    status = 404
    error_type = "not_found_error"
    anthropic_type = "not_found_error"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    anthropic_type = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_error"
    anthropic_type = "rate_limit_error"


class LimitRefused(RateLimited):
    """Admission refused a call to stay within a key's (or its team's, user's, end-user's)
    limits: never the upstream's doing, so never retried or counted against a deployment.

    It carries the `x-ratelimit-*` and spend headers the call's answer gets, since a refused
    call of a limited key tells its client where it stands as much as an admitted one.
    """

    default_code = "rate_limit_exceeded"
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None, headers: dict[str, str] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, code=code or self.default_code, retry_after=retry_after)
        if retry_after is not None and math.isfinite(retry_after):
            # Our own wait, not an upstream's: the time to a budget's reset may be weeks away.
            self.retry_after = min(max(retry_after, 0.0), MAX_LIMIT_RETRY_AFTER_S)
        self.limit_headers = headers or {}

    def headers(self) -> dict[str, str]:
        return {**self.limit_headers, **super().headers()}


class BudgetExceeded(LimitRefused):
    """A budget (key, per-model key, team, user or end-user) has no room for the call."""

    default_code = "budget_exceeded"


class RateLimitExceeded(LimitRefused):
    """An rpm, tpm or parallel-request limit has no room for the call."""

    default_code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """The upstream failed or answered something we could not read.

    `upstream_status` keeps the provider's own status so the retry policy can tell a 429 or a
    5xx (worth retrying) from a 4xx (the request itself is wrong, never retried).
    """

    status = 502
    error_type = "upstream_error"
    anthropic_type = "api_error"

    def __init__(self, message: str, *, upstream_status: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status
        if upstream_status == 429:
            self.status, self.error_type, self.anthropic_type = 429, "rate_limit_error", "rate_limit_error"
        elif upstream_status is not None and 400 <= upstream_status < 500:
            # The upstream refused the request itself: pass its verdict on as-is.
            self.status = upstream_status
            self.error_type = "invalid_request_error" if upstream_status != 401 else "authentication_error"

    @property
    def retryable(self) -> bool:
        status = self.upstream_status
        return status is None or status == 429 or status >= 500 or status in (408, 409)


class DeploymentBusy(RateLimited):
    """Every slot of the chosen deployment (`max_parallel_requests`) stayed taken until the
    request's deadline ran out.

    The upstream never saw the request, so this says nothing of its health: not retried (the
    deadline is gone), never counted towards a cooldown.
    """

    retryable = False


class InternalError(GatewayError):
    """Something failed on our side of the wire: a bug in an adapter or a translation, a body
    a hook left that cannot be encoded, a call the gateway could not finish.

    The upstream did nothing wrong and another attempt would fail the same way, so it is never
    retried, never fallen back from and never counted against a deployment.  The message names
    only where it happened; the traceback goes to the log.
    """

    status = 500
    error_type = "internal_error"
    anthropic_type = "api_error"
    retryable = False


class UpstreamTimeout(GatewayError):
    status = 504
    error_type = "timeout_error"
    anthropic_type = "timeout_error"
    retryable = True


class NoDeployment(GatewayError):
    status = 503
    error_type = "service_unavailable_error"
    anthropic_type = "overloaded_error"


class GuardrailBlocked(GatewayError):
    status = 400
    error_type = "guardrail_blocked"
    anthropic_type = "invalid_request_error"


def clamp_retry_after(seconds: float | None) -> float | None:
    """A wait fit to repeat to a client or to sleep on: finite, at least 0, at most
    `MAX_RETRY_AFTER_S`; None for no usable value (absent or not a number)."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def is_retryable(error: GatewayError) -> bool:
    """True for failures another attempt might not hit: timeouts, connect errors, 429, 5xx."""
    return bool(getattr(error, "retryable", False))


# What upstreams say when a prompt does not fit the model's context window, or when their
# content filter refused it: how an `UpstreamError` is told apart for hooks (LiteLLM's
# `ContextWindowExceededError`, `ContentPolicyViolationError`).
CONTEXT_WINDOW_HINTS = ("context_length_exceeded", "maximum context length", "prompt is too long", "context window")
CONTENT_POLICY_HINTS = ("content_policy_violation", "content_filter", "content management policy", "safety system")


def says_context_window(error: GatewayError) -> bool:
    """An upstream's 400 saying the prompt is longer than the model's context window."""
    message = error.message.lower()
    return isinstance(error, UpstreamError) and error.status == 400 and any(h in message for h in CONTEXT_WINDOW_HINTS)


def says_content_policy(error: GatewayError) -> bool:
    """An upstream's 400 saying its content filter refused the request."""
    text = f"{error.code or ''} {error.message}".lower()
    return isinstance(error, UpstreamError) and error.status == 400 and any(h in text for h in CONTENT_POLICY_HINTS)
