"""LiteLLM's exception classes, as hooks meet them (SPEC §6).

Hooks written for LiteLLM catch `RateLimitError`, read `original_exception.status_code`,
`.message`, `.llm_provider`, `.model`, or raise `BadRequestError(...)` themselves.  Each class
here has LiteLLM's name, constructor and attributes, and is also one of the gateway's own
errors (`gateway_trio.errors`): raised by a hook, it answers with its status and its body as any
gateway error does.

`as_litellm` turns a gateway error into the LiteLLM-named one hooks are handed.  The result is
an instance of both the LiteLLM class and the error's own class, with all its state, so
`isinstance(e, RateLimitError)` and the gateway's checks both hold, and a failure hook that
hands it back changes nothing of the client's answer (status, headers, body).
"""

from __future__ import annotations

from typing import Any, ClassVar

from gateway_trio.errors import (
    AuthError,
    BadRequest,
    BudgetExceeded,
    Forbidden,
    GatewayError,
    InternalError,
    NoDeployment,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    says_content_policy,
    says_context_window,
)

_TRAILING = ("response", "litellm_debug_info", "max_retries", "num_retries")
PROVIDER_FIRST = ("message", "llm_provider", "model", *_TRAILING)
MODEL_FIRST = ("message", "model", "llm_provider", *_TRAILING)
_EXTRAS = ("body", "request", "headers", "exception_status_code")


class LiteLLMException(GatewayError):
    """What every LiteLLM-named exception has: `status_code`, `message`, `llm_provider`, `model`.

    The constructor takes LiteLLM's arguments, positionally in each class's order, or by name.
    """

    _positional: ClassVar[tuple[str, ...]] = PROVIDER_FIRST
    llm_provider: str | None = None
    model: str | None = None
    response: Any = None
    litellm_debug_info: str | None = None
    max_retries: int | None = None
    num_retries: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self._positional
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} positional arguments")
        values = dict(zip(names, args))
        twice = values.keys() & kwargs.keys()
        if twice:
            raise TypeError(f"{type(self).__name__} got {min(twice)!r} twice")
        values.update(kwargs)
        status = values.pop("status_code", None)
        message = str(values.pop("message", None) or type(self).__name__)
        # GatewayError's own, not the next base's: those (LimitRefused, UpstreamError) take other arguments.
        GatewayError.__init__(
            self,
            message,
            param=values.pop("param", None),
            code=values.pop("code", None),
            retry_after=values.pop("retry_after", None),
            status=status,
        )
        for name in ("llm_provider", "model", *_TRAILING, *_EXTRAS):
            if name in values:
                object.__setattr__(self, name, values.pop(name))
        if values:
            raise TypeError(f"{type(self).__name__} got an unexpected argument {min(values)!r}")

    @property
    def status_code(self) -> int:
        return self.status

    @status_code.setter
    def status_code(self, value: int) -> None:
        self.status = value


class BadRequestError(LiteLLMException, BadRequest):
    _positional = MODEL_FIRST


class UnprocessableEntityError(LiteLLMException, BadRequest):
    _positional = MODEL_FIRST
    status = 422


class ContextWindowExceededError(BadRequestError):
    pass


class ContentPolicyViolationError(BadRequestError):
    pass


class UnsupportedParamsError(BadRequestError):
    pass


class AuthenticationError(LiteLLMException, AuthError):
    pass


class PermissionDeniedError(LiteLLMException, Forbidden):
    pass


class NotFoundError(LiteLLMException, NotFound):
    _positional = MODEL_FIRST


class RateLimitError(LiteLLMException, RateLimited):
    pass


class Timeout(LiteLLMException, UpstreamTimeout):
    _positional = MODEL_FIRST


class ServiceUnavailableError(LiteLLMException, NoDeployment):
    pass


class InternalServerError(LiteLLMException, InternalError):
    pass


class APIError(LiteLLMException, UpstreamError):
    """An upstream failure of any status: LiteLLM's takes the status first."""

    _positional = ("status_code", "message", "llm_provider", "model", "request", *_TRAILING[1:])
    upstream_status: int | None = None


class APIConnectionError(LiteLLMException, UpstreamError):
    upstream_status: int | None = None


class BudgetExceededError(LiteLLMException, BudgetExceeded):
    """A budget has no room for the call: LiteLLM's takes the cost and the budget."""

    _positional = ("current_cost", "max_budget", "message")
    current_cost: float | None = None
    max_budget: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = dict(zip(self._positional, args), **kwargs)
        current_cost, max_budget = values.pop("current_cost", None), values.pop("max_budget", None)
        values.setdefault(
            "message", f"Budget has been exceeded! Current cost: {current_cost}, Max budget: {max_budget}"
        )
        values.setdefault("code", self.default_code)
        super().__init__(**values)
        self.current_cost = current_cost
        self.max_budget = max_budget
        self.limit_headers: dict[str, str] = {}


LITELLM_EXCEPTION_TYPES: tuple[type[LiteLLMException], ...] = (
    AuthenticationError,
    NotFoundError,
    BadRequestError,
    UnprocessableEntityError,
    UnsupportedParamsError,
    Timeout,
    PermissionDeniedError,
    RateLimitError,
    ContextWindowExceededError,
    ContentPolicyViolationError,
    ServiceUnavailableError,
    InternalServerError,
    APIError,
    APIConnectionError,
    BudgetExceededError,
)

_BY_STATUS: dict[int, type[LiteLLMException]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: Timeout,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
    504: Timeout,
}


def litellm_class(error: GatewayError) -> type[LiteLLMException]:
    """LiteLLM's class for a gateway error: by what it is, then by the status it answers."""
    if isinstance(error, BudgetExceeded):
        return BudgetExceededError
    if isinstance(error, RateLimited):
        return RateLimitError
    if isinstance(error, UpstreamTimeout):
        return Timeout
    if isinstance(error, NoDeployment):
        return ServiceUnavailableError
    if isinstance(error, InternalError):
        return InternalServerError
    if isinstance(error, UpstreamError):
        if says_context_window(error):
            return ContextWindowExceededError
        if says_content_policy(error):
            return ContentPolicyViolationError
        if error.upstream_status is None:
            return APIConnectionError
        return _BY_STATUS.get(error.upstream_status, APIError)
    known = _BY_STATUS.get(error.status)
    if known is not None:
        return known
    return BadRequestError if 400 <= error.status < 500 else APIError


_COMBINED: dict[tuple[type, type], type] = {}


def _combined(named: type[LiteLLMException], own: type[GatewayError]) -> type[LiteLLMException]:
    """A class with LiteLLM's name that is also `own` (made once per pair, kept)."""
    if issubclass(named, own):
        return named
    key = (named, own)
    cls = _COMBINED.get(key)
    if cls is None:
        try:
            # `own` first: what the error does (headers, retries) stays its own; LiteLLM's class
            # adds its name and attributes.
            cls = type(
                named.__name__, (own, named), {"__module__": named.__module__, "__qualname__": named.__qualname__}
            )
        except TypeError:  # no consistent order of the two: LiteLLM's class alone
            cls = named
        _COMBINED[key] = cls
    return cls


def as_litellm(error: BaseException, *, llm_provider: str | None = None, model: str | None = None) -> BaseException:
    """The exception hooks are handed for `error`: a gateway error becomes its LiteLLM-named
    twin (same state, same answer to the client); anything else is handed on as it is."""
    if not isinstance(error, GatewayError):
        return error
    if isinstance(error, LiteLLMException):
        if error.llm_provider is None and llm_provider is not None:
            error.llm_provider = llm_provider
        if error.model is None and model is not None:
            error.model = model
        return error
    cls = _combined(litellm_class(error), type(error))
    twin = cls.__new__(cls, *error.args)
    state = twin.__dict__
    state.update(error.__dict__)
    # Class-level facts of the error's own class, which the twin's first bases may not share.
    state.update(
        status=error.status,
        error_type=error.error_type,
        anthropic_type=error.anthropic_type,
        llm_provider=llm_provider,
        model=model,
    )
    twin.__cause__, twin.__context__ = error.__cause__, error.__context__
    return twin.with_traceback(error.__traceback__)


__all__ = [
    "LITELLM_EXCEPTION_TYPES",
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "InternalServerError",
    "LiteLLMException",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServiceUnavailableError",
    "Timeout",
    "UnprocessableEntityError",
    "UnsupportedParamsError",
    "as_litellm",
]
