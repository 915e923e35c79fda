"""The in-line hooks, run by the pipeline for every route, each with a timeout.

A `HookSet` sorts the configured hook objects by the methods they actually override, once at
start-up, so a call pays only for the hooks that exist.  A hook that raises or times out is
logged and counted and the call goes on; the exceptions are the hooks meant to stop a call
(SPEC §6): `async_pre_call_hook`, `async_moderation_hook` and `async_post_call_success_hook`
reject it by raising (`rejection` turns what they raise into the client's error), and the
failure hook's replacement error.  Every hook method is called with keyword arguments, as
LiteLLM calls it (`bind`).

Guardrails written as hook methods are not run here for the methods of their modes
(`MODE_METHODS`): the guardrail stage runs those, in their mode only, and records each run.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Iterable, TypeVar

import orjson
import trio

from gateway_trio.errors import AuthError, BadRequest, Forbidden, GatewayError, NotFound, RateLimited
from gateway_trio.hooks import CustomLogger, DualCache, UserAPIKeyAuth
from gateway_trio.runtime import turns
from gateway_trio.runtime.histogram import Histogram

if TYPE_CHECKING:
    from gateway_trio.runtime.tracing import CallTrace

log = logging.getLogger(__name__)
T = TypeVar("T")

IN_LINE = (
    "async_pre_call_hook",
    "async_moderation_hook",
    "async_post_call_success_hook",
    "async_post_call_failure_hook",
    "async_post_call_streaming_hook",
    "async_post_call_streaming_iterator_hook",
    "async_post_call_response_headers_hook",
)
LOGGING = (
    "log_pre_api_call",
    "async_log_pre_api_call",
    "log_post_api_call",
    "log_success_event",
    "log_failure_event",
    "async_log_success_event",
    "async_log_failure_event",
)


# LiteLLM's name for each argument of each hook method, in LiteLLM's order (SPEC §6, §7).
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "log_pre_api_call": ("model", "messages", "kwargs"),
    "async_log_pre_api_call": ("model", "messages", "kwargs"),
    **dict.fromkeys(
        ("log_post_api_call", "log_success_event", "log_failure_event", "async_log_success_event",
         "async_log_failure_event"),
        ("kwargs", "response_obj", "start_time", "end_time"),
    ),
    "async_pre_call_hook": ("user_api_key_dict", "cache", "data", "call_type"),
    "async_moderation_hook": ("data", "user_api_key_dict", "call_type"),
    "async_post_call_success_hook": ("data", "user_api_key_dict", "response"),
    "async_post_call_failure_hook": ("request_data", "original_exception", "user_api_key_dict", "traceback_str"),
    "async_post_call_streaming_hook": ("user_api_key_dict", "response"),
    "async_post_call_streaming_iterator_hook": ("user_api_key_dict", "response", "request_data"),
    "async_post_call_response_headers_hook": ("data", "user_api_key_dict", "response", "request_headers", "call_info"),
    "should_run_guardrail": ("data", "event_type"),
    "apply_guardrail": ("inputs", "request_data", "input_type"),
}
# The hook methods a guardrail written as hook methods runs in each of its modes (SPEC §7): only
# these, only in that mode, and run by the guardrail stage, which records each run.
MODE_METHODS: dict[str, tuple[str, ...]] = {
    "pre_call": ("async_pre_call_hook",),
    "during_call": ("async_moderation_hook",),
    "post_call": (
        "async_post_call_success_hook",
        "async_post_call_streaming_iterator_hook",
        "async_post_call_streaming_hook",
    ),
}
GUARDRAIL_METHODS = frozenset(m for methods in MODE_METHODS.values() for m in methods)

# Other names hooks give an argument: LiteLLM's own name for `call_info`.
ALIASES = {"litellm_call_info": "call_info"}

_BY_NAME = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def overrides(hook: Any, method: str) -> bool:
    """True when `hook` brings its own `method` rather than the base class's no-op."""
    own = getattr(type(hook), method, None)
    if own is None:
        return False
    return own is not getattr(CustomLogger, method, None)


def hook_name(hook: Any) -> str:
    return type(hook).__qualname__


@dataclass(frozen=True, slots=True)
class CallForm:
    """How one class's hook method takes its arguments.

    `keywords` pairs each parameter to pass with the argument it gets (LiteLLM's way: by
    name, so `**kwargs` and any parameter order work); None means the method names its
    parameters otherwise and gets the first `positional` arguments in LiteLLM's order.
    """

    keywords: tuple[tuple[str, str], ...] | None
    positional: int = 0


@functools.lru_cache(maxsize=None)
def calling_form(cls: type, method: str) -> CallForm:
    """How `cls.method` takes LiteLLM's arguments: worked out once per class and method from
    its signature, never per call.

    By name whenever the method can take them so (`**kwargs`, LiteLLM's names in any order, an
    older signature naming fewer of them); positionally, in LiteLLM's order, when it names its
    parameters otherwise (hooks written for the positional calls of earlier versions).
    """
    names = ARGUMENTS[method]
    try:
        parameters = _parameters(cls, method)
    except (TypeError, ValueError):  # no signature to read (a builtin): as LiteLLM would
        return CallForm(tuple((n, n) for n in names))
    known = {*names, *(alias for alias, name in ALIASES.items() if name in names)}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    by_name = {p.name for p in parameters if p.kind in _BY_NAME}
    required = [p for p in parameters if p.default is p.empty and p.kind not in _VARIADIC]
    positional = [p for p in parameters if p.kind in _POSITIONAL]
    named = takes_any or bool(by_name & known) or not positional
    if named and all(p.name in known and p.kind in _BY_NAME for p in required):
        pairs = [(n, n) for n in names if takes_any or n in by_name]
        pairs += [(alias, name) for alias, name in ALIASES.items() if name in names and (takes_any or alias in by_name)]
        return CallForm(tuple(pairs))
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return CallForm(None, len(names))
    return CallForm(None, min(len(positional), len(names)))


def _parameters(cls: type, method: str) -> list[inspect.Parameter]:
    attribute = getattr(cls, method)
    parameters = list(inspect.signature(attribute).parameters.values())
    if inspect.isfunction(attribute) and not isinstance(inspect.getattr_static(cls, method), staticmethod):
        parameters = parameters[1:]  # self
    return parameters


def bind(hook: Any, method: str, /, **arguments: Any) -> Callable[[], Any]:
    """`hook.method` with `arguments` (LiteLLM's names, all of them) in the form it takes.

    A zero-argument callable, so that it can also be handed to a worker thread.
    """
    form = calling_form(type(hook), method)
    function = getattr(hook, method)
    if form.keywords is None:
        return functools.partial(function, *(arguments[n] for n in ARGUMENTS[method][:form.positional]))
    return functools.partial(function, **{parameter: arguments[name] for parameter, name in form.keywords})


@functools.lru_cache(maxsize=None)
def headers_hook_form(cls: type) -> str:
    """How a class's response-headers hook wants `call_info`: checked once per class.

    "call_info" and "litellm_call_info" name the keyword; "kwargs" means it takes **kwargs;
    "none" is the old form without it.  (A description for people: calls go through `bind`.)
    """
    parameters = inspect.signature(cls.async_post_call_response_headers_hook).parameters
    if "call_info" in parameters:
        return "call_info"
    if "litellm_call_info" in parameters:
        return "litellm_call_info"
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return "kwargs"
    return "none"


# The error class a hook's rejection takes for its status: its OpenAI `type` follows the status.
_REJECTION_CLASSES: dict[int, type[GatewayError]] = {
    400: BadRequest, 401: AuthError, 403: Forbidden, 404: NotFound, 429: RateLimited,
}


def rejection(error: Exception, default_status: int = 400) -> GatewayError:
    """The client's error for what a hook raised to reject a call (pre-call, moderation,
    post-call success): a `GatewayError` as it is; else the exception's HTTP `status_code`
    (fastapi's / starlette's `HTTPException` style, its `detail` the message), else
    `default_status`.

    LiteLLM's proxy answers a plain exception with a 500; a rejection is the hook's verdict,
    not a fault of the server, and the OpenAI SDKs retry a 5xx (the upstream would be called
    again for an answer that is rejected again), so a plain exception is a 400 here.
    """
    if isinstance(error, GatewayError):
        return error
    status = getattr(error, "status_code", None)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status < 600:
        status = default_status
    detail = getattr(error, "detail", None)
    if detail is None or detail == "":
        message = str(error) or type(error).__name__
    elif isinstance(detail, str):
        message = detail
    else:
        try:
            message = orjson.dumps(detail).decode()
        except TypeError:
            message = str(detail)
    cls = _REJECTION_CLASSES.get(status, GatewayError)
    return cls(message, status=status, code=str(status))


class HookRefusal(Exception):
    """`async_pre_call_hook` returned a string: the call is refused with that text."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


Active = frozenset[str] | None  # names of the guardrails active on a call; None: no filtering

# How a guarded hook call went.
RAN, FAILED, TIMED_OUT = "ran", "failed", "timed_out"
RAISED = "raised"  # a deciding hook raised: its verdict on the call (a rejection), not a failure
REJECTED = "rejected"  # a span's outcome: a deciding hook raised (its verdict), or its run was cancelled


def _hook_span(trace: CallTrace, hook: Any, what: str, started_ns: int, outcome: str) -> None:
    """The span `hook <Class.method>` of one in-line hook call, under its call's span."""
    trace.child(f"hook {hook_name(hook)}.{what}", started_ns, time.time_ns(), {"gateway.hook.outcome": outcome},
                None if outcome == RAN else outcome)


class HookSet:
    """`scoped` maps guardrails that implement hook methods to their names: such a hook's other
    methods (failure, response headers) run only on calls where that guardrail is active
    (default_on, asked for, or the deployment's); the methods of its modes (`MODE_METHODS`)
    are the guardrail stage's to run, never this set's."""

    def __init__(self, hooks: Iterable[Any], *, timeout_s: float = 5.0, scoped: dict[str, Any] | None = None) -> None:
        scoped = scoped or {}
        plain = list(hooks)
        self.hooks = [*plain, *scoped.values()]
        self.scope_of = {id(hook): name for name, hook in scoped.items()}
        self.timeout_s = timeout_s
        self.cache = DualCache()
        self.failures: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()  # per-chunk hooks skipped for the rest of a stream
        # For /metrics: runs by ("hook.method", outcome) and their durations by "hook.method".
        self.runs: Counter[tuple[str, str]] = Counter()
        self.durations: dict[str, Histogram] = {}
        self._names: dict[tuple[int, str], str] = {}
        self.by_method = {
            m: [h for h in (plain if m in GUARDRAIL_METHODS else self.hooks) if overrides(h, m)]
            for m in IN_LINE + LOGGING
        }
        self.pre_call = self.by_method["async_pre_call_hook"]
        self.moderators = self.by_method["async_moderation_hook"]
        self.post_success = self.by_method["async_post_call_success_hook"]
        self.post_failure = self.by_method["async_post_call_failure_hook"]
        self.per_chunk = self.by_method["async_post_call_streaming_hook"]
        self.stream_wrappers = self.by_method["async_post_call_streaming_iterator_hook"]
        self.header_hooks = self.by_method["async_post_call_response_headers_hook"]
        self.logs = any(self.by_method[m] for m in LOGGING)

    def _chosen(self, hooks: list[Any], active: Active) -> list[Any]:
        if not self.scope_of or active is None:
            return hooks
        return [h for h in hooks if id(h) not in self.scope_of or self.scope_of[id(h)] in active]

    @property
    def sees_chunks(self) -> bool:
        return bool(self.per_chunk or self.stream_wrappers)

    def count_failure(self, hook: Any, what: str, error: BaseException | None) -> None:
        key = f"{hook_name(hook)}.{what}"
        self.failures[key] += 1
        if error is None:
            log.warning("hook %s timed out after %.1f s (%d failures)", key, self.timeout_s, self.failures[key])
        else:
            log.warning("hook %s failed: %r (%d failures)", key, error, self.failures[key])

    def _timed(self, hook: Any, what: str, outcome: str, started: float) -> None:
        """Count one run of `hook.what` and its duration (a dict lookup and a bisect)."""
        name = self._names.get((id(hook), what))
        if name is None:
            name = self._names[id(hook), what] = f"{hook_name(hook)}.{what}"
            self.durations.setdefault(name, Histogram())  # one carried over by a reload stays
        self.runs[name, outcome] += 1
        self.durations[name].observe(trio.current_time() - started)

    async def _guarded(
        self, hook: Any, what: str, run: Callable[[], Awaitable[T]], trace: CallTrace | None = None
    ) -> tuple[str, T | None]:
        """Run one hook call with the timeout; (how it went, result). Failures are counted, not raised."""
        return await self._run(hook, what, run, trace, deciding=False)

    async def _deciding(
        self, hook: Any, what: str, run: Callable[[], Awaitable[T]], trace: CallTrace | None = None
    ) -> tuple[str, T | None]:
        """Run one call of a hook meant to stop calls: what it raises is raised (its verdict);
        a timeout is counted and the call goes on, as for any hook."""
        return await self._run(hook, what, run, trace, deciding=True)

    async def _run(
        self, hook: Any, what: str, run: Callable[[], Awaitable[T]], trace: CallTrace | None, *, deciding: bool
    ) -> tuple[str, T | None]:
        started, started_ns = trio.current_time(), (time.time_ns() if trace is not None else 0)
        outcome: str | None = None  # None: cancelled (not a run to count)
        try:
            async with turns.off_turn():  # user code: what it waits on is not ours to order
                with trio.move_on_after(self.timeout_s):
                    try:
                        result = await run()
                    except Exception as error:
                        if deciding:
                            outcome = RAISED  # its verdict (a refusal), not a failure
                            raise
                        outcome = FAILED
                        self.count_failure(hook, what, error)
                        return FAILED, None
                    outcome = RAN
                    return RAN, result
            outcome = TIMED_OUT
            self.count_failure(hook, what, None)
            return TIMED_OUT, None
        finally:
            if outcome is not None:
                self._timed(hook, what, outcome, started)
            if trace is not None:
                if deciding:
                    spanned = REJECTED if outcome in (None, RAISED) else outcome
                else:
                    spanned = outcome or FAILED
                _hook_span(trace, hook, what, started_ns, spanned)

    # --- pre call ------------------------------------------------------------------------

    async def run_pre_call(
        self, user: UserAPIKeyAuth, data: dict[str, Any], call_type: str, active: Active = None,
        trace: CallTrace | None = None,
    ) -> dict[str, Any]:
        """Let each hook edit, refuse (HookRefusal) or reject (its exception) the request."""
        for hook in self._chosen(self.pre_call, active):
            ran, result = await self._deciding(
                hook, "async_pre_call_hook",
                bind(hook, "async_pre_call_hook", user_api_key_dict=user, cache=self.cache, data=data, call_type=call_type),
                trace,
            )
            if ran is not RAN:
                continue
            if isinstance(result, str):
                raise HookRefusal(result)
            if isinstance(result, dict):
                data = result
        return data

    # --- during the call -------------------------------------------------------------------

    async def run_moderation(
        self, data: dict[str, Any], user: UserAPIKeyAuth, call_type: str, hooks: Iterable[Any] | None = None,
        trace: CallTrace | None = None,
    ) -> None:
        """Each `async_moderation_hook` (or those of `hooks`), while the upstream works on the
        call: what one raises rejects the call (the caller cancels the upstream call); what
        they return is ignored."""
        for hook in self.moderators if hooks is None else hooks:
            await self._deciding(
                hook, "async_moderation_hook",
                bind(hook, "async_moderation_hook", data=data, user_api_key_dict=user, call_type=call_type),
                trace,
            )

    # --- after the answer ----------------------------------------------------------------

    async def run_post_success(
        self, data: dict[str, Any], user: UserAPIKeyAuth, response: Any, active: Active = None,
        trace: CallTrace | None = None,
    ) -> Any:
        """Each success hook may replace the response; what one raises rejects the answer."""
        for hook in self._chosen(self.post_success, active):
            ran, result = await self._deciding(
                hook, "async_post_call_success_hook",
                bind(hook, "async_post_call_success_hook", data=data, user_api_key_dict=user, response=response),
                trace,
            )
            if ran is RAN and result is not None:
                response = result
        return response

    async def run_post_failure(
        self, data: dict[str, Any], error: Exception, user: UserAPIKeyAuth, traceback_str: str | None,
        active: Active = None, trace: CallTrace | None = None,
    ) -> Exception:
        for hook in self._chosen(self.post_failure, active):
            ran, result = await self._guarded(
                hook, "async_post_call_failure_hook",
                bind(hook, "async_post_call_failure_hook", request_data=data, original_exception=error,
                     user_api_key_dict=user, traceback_str=traceback_str),
                trace,
            )
            if ran is RAN and isinstance(result, Exception):
                error = result
        return error

    async def run_response_headers(
        self,
        data: dict[str, Any],
        user: UserAPIKeyAuth,
        response: Any,
        request_headers: dict[str, str],
        call_info: dict[str, Any],
        active: Active = None,
        trace: CallTrace | None = None,
    ) -> dict[str, str]:
        """Merged headers from every headers hook; later hooks win."""
        merged: dict[str, str] = {}
        for hook in self._chosen(self.header_hooks, active):
            run = bind(hook, "async_post_call_response_headers_hook", data=data, user_api_key_dict=user,
                       response=response, request_headers=request_headers, call_info=call_info)
            ran, headers = await self._guarded(hook, "async_post_call_response_headers_hook", run, trace)
            if ran is RAN and isinstance(headers, dict):
                merged.update({str(k): str(v) for k, v in headers.items()})
        return merged

    # --- streams ------------------------------------------------------------------------

    def chunk_hooks(self, call_id: str, active: Active = None) -> ChunkHooks:
        """The per-chunk hooks of one stream."""
        return ChunkHooks(self, call_id, self._chosen(self.per_chunk, active))

    def wrap_stream(
        self, user: UserAPIKeyAuth, chunks: AsyncIterator[Any], data: dict[str, Any], active: Active = None
    ) -> AsyncIterator[Any]:
        """Chain every iterator hook around the stream, first configured innermost."""
        for hook in self._chosen(self.stream_wrappers, active):
            chunks = bind(
                hook, "async_post_call_streaming_iterator_hook", user_api_key_dict=user, response=chunks, request_data=data
            )()
        return chunks


PER_CHUNK = "async_post_call_streaming_hook"


class ChunkHooks:
    """The per-chunk hooks of one stream.

    A hook that times out is skipped for the rest of that stream, and counted: called again on
    every chunk, it would hold each of them for the whole timeout.  One that raises is only
    counted; it costs the stream nothing.
    """

    def __init__(self, hookset: HookSet, call_id: str, hooks: list[Any]) -> None:
        self.hookset = hookset
        self.call_id = call_id
        self.hooks = list(hooks)

    def __bool__(self) -> bool:
        return bool(self.hooks)

    async def run(self, user: UserAPIKeyAuth, chunk: Any) -> Any:
        for hook in tuple(self.hooks):
            ran, result = await self.hookset._guarded(
                hook, PER_CHUNK, bind(hook, PER_CHUNK, user_api_key_dict=user, response=chunk)
            )
            if ran is TIMED_OUT:
                self.hooks.remove(hook)
                self._skip(hook)
            elif ran is RAN and result is not None:
                chunk = result
        return chunk

    def _skip(self, hook: Any) -> None:
        key = f"{hook_name(hook)}.{PER_CHUNK}"
        self.hookset.skipped[key] += 1
        log.warning("hook %s timed out: skipped for the rest of the stream of call %s", key, self.call_id)
