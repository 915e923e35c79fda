"""Exceptions hooks are handed, and may raise, have LiteLLM's class names and attributes (SPEC §6).

A gateway error becomes its LiteLLM-named twin: an instance of both classes with the same
state, so the client's answer (status, headers, body) is the same whichever a hook hands back.
"""

from __future__ import annotations

import pytest

from gateway_trio import hooks
from gateway_trio.errors import (
    AuthError,
    BadRequest,
    BudgetExceeded,
    DeploymentBusy,
    Forbidden,
    GatewayError,
    GuardrailBlocked,
    InternalError,
    NoDeployment,
    NotFound,
    RateLimitExceeded,
    UpstreamError,
    UpstreamTimeout,
)
from gateway_trio.hooks.exceptions import as_litellm

CASES = [
    (UpstreamError("slow down", upstream_status=429, retry_after=3), "RateLimitError", 429),
    (UpstreamError("could not connect to the upstream"), "APIConnectionError", 502),
    (UpstreamError("upstream 503", upstream_status=503), "ServiceUnavailableError", 502),
    (UpstreamError("upstream 500", upstream_status=500), "InternalServerError", 502),
    (UpstreamError("upstream 502", upstream_status=502), "APIError", 502),
    (UpstreamError("bad field", upstream_status=400), "BadRequestError", 400),
    (
        UpstreamError("This model's maximum context length is 8192 tokens", upstream_status=400),
        "ContextWindowExceededError",
        400,
    ),
    (UpstreamError("rejected: content_filter triggered", upstream_status=400), "ContentPolicyViolationError", 400),
    (UpstreamError("bad key upstream", upstream_status=401), "AuthenticationError", 401),
    (UpstreamError("no such model", upstream_status=404), "NotFoundError", 404),
    (UpstreamError("unprocessable", upstream_status=422), "UnprocessableEntityError", 422),
    (UpstreamTimeout("no answer in time"), "Timeout", 504),
    (NoDeployment("no healthy deployment"), "ServiceUnavailableError", 503),
    (RateLimitExceeded("rpm limit", retry_after=2), "RateLimitError", 429),
    (BudgetExceeded("over budget", retry_after=60), "BudgetExceededError", 429),
    (DeploymentBusy("every slot taken"), "RateLimitError", 429),
    (AuthError("unknown key"), "AuthenticationError", 401),
    (Forbidden("model not allowed"), "PermissionDeniedError", 403),
    (NotFound("no such route"), "NotFoundError", 404),
    (BadRequest("missing model"), "BadRequestError", 400),
    (GuardrailBlocked("blocked by guardrail"), "BadRequestError", 400),
    (InternalError("adapter bug"), "InternalServerError", 500),
    (GatewayError("odd", status=418), "BadRequestError", 418),
]


@pytest.mark.parametrize(
    ("error", "name", "status"), CASES, ids=[name + str(i) for i, (_, name, _) in enumerate(CASES)]
)
def test_a_gateway_error_becomes_its_litellm_named_twin(error, name, status):
    twin = as_litellm(error, llm_provider="openai", model="gpt-4o-mini")
    assert type(twin).__name__ == name
    assert isinstance(twin, getattr(hooks, name)) and isinstance(twin, type(error))
    assert isinstance(twin, hooks.LiteLLMException)
    assert (twin.status_code, twin.message, twin.llm_provider, twin.model) == (
        status,
        error.message,
        "openai",
        "gpt-4o-mini",
    )
    assert str(twin) == str(error)
    # Handed back by a failure hook, it answers the client exactly as the original would.
    assert twin.status == error.status and twin.headers() == error.headers()
    assert twin.openai_body() == error.openai_body() and twin.anthropic_body() == error.anthropic_body()
    assert getattr(twin, "retryable", None) == getattr(error, "retryable", None)


def test_the_twin_keeps_the_error_s_own_state():
    error = BudgetExceeded("over", retry_after=10, headers={"x-gateway-key-spend": "1.0"})
    twin = as_litellm(error)
    assert twin.limit_headers == {"x-gateway-key-spend": "1.0"}
    assert twin.headers() == {"x-gateway-key-spend": "1.0", "retry-after": "10"}
    upstream = as_litellm(UpstreamError("x", upstream_status=503))
    assert upstream.upstream_status == 503 and upstream.retryable


def test_other_exceptions_are_handed_on_as_they_are():
    error = ValueError("a hook's own")
    assert as_litellm(error) is error


def test_litellm_classes_take_litellm_s_constructor_arguments():
    rate = hooks.RateLimitError("slow down", "openai", "gpt-4o")  # message, llm_provider, model
    assert (rate.status_code, rate.llm_provider, rate.model) == (429, "openai", "gpt-4o")
    bad = hooks.BadRequestError("bad", "gpt-4o", "openai")  # message, model, llm_provider
    assert (bad.status_code, bad.model, bad.llm_provider) == (400, "gpt-4o", "openai")
    named = hooks.NotFoundError(message="gone", model="m", llm_provider="p", response=None, num_retries=2)
    assert named.status_code == 404 and named.num_retries == 2
    api = hooks.APIError(502, "upstream broke", "openai", "gpt-4o")  # status first
    assert api.status_code == 502 and api.message == "upstream broke"
    budget = hooks.BudgetExceededError(1.5, 1.0)
    assert (budget.current_cost, budget.max_budget, budget.status_code) == (1.5, 1.0, 429)
    assert budget.openai_body()["error"]["code"] == "budget_exceeded" and "1.5" in budget.message
    assert hooks.Timeout("late", "m", "p").status_code == 504
    assert isinstance(hooks.ContextWindowExceededError("long", "m", "p"), hooks.BadRequestError)
    with pytest.raises(TypeError):
        hooks.RateLimitError("m", bogus=1)
    with pytest.raises(TypeError):
        hooks.RateLimitError("m", "p", llm_provider="p")


def test_a_raised_litellm_exception_answers_as_a_gateway_error():
    error = hooks.RateLimitError("slow down", "openai", "gpt-4o")
    assert isinstance(error, GatewayError)
    assert error.openai_body()["error"]["type"] == "rate_limit_error"
    assert error.anthropic_body()["error"]["type"] == "rate_limit_error"
    error.status_code = 503
    assert error.status == 503


def test_every_class_is_public_with_litellm_s_name():
    for cls in hooks.LITELLM_EXCEPTION_TYPES:
        assert getattr(hooks, cls.__name__) is cls and cls.__name__ in hooks.__all__
