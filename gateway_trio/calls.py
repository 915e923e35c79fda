"""A Call: one client request as it travels the pipeline, whatever route it came from.

A `Call` is owned by its request's task and changes as it goes (routing, retries, usage).
What leaves that task for another (a logging event for the callback actor) is a
`CallSnapshot`: frozen, taken once, so a retry or later code cannot change what is logged.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from gateway_trio.deployment import Deployment
from gateway_trio.hooks import UserAPIKeyAuth
from gateway_trio.spend.records import GuardrailRun

if TYPE_CHECKING:
    from gateway_trio.apis.base import Api
    from gateway_trio.apis.wires import Wire
    from gateway_trio.control.admission import Admission
    from gateway_trio.control.records import Tenant
    from gateway_trio.runtime.tracing import CallTrace

# Headers that carry credentials: never forwarded to hooks, logs or upstreams.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie", "x-goog-api-key"}
)


def public_headers(headers: Any) -> dict[str, str]:
    """The client's headers minus credentials, names lower-cased."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}


@dataclass(frozen=True, slots=True)
class Overrides:
    """LiteLLM's per-request routing parameters (`fallbacks`, `num_retries`, `timeout`, ... in the
    body, `x-gateway-*` / `x-litellm-*` headers), read once when the request is parsed: what
    dispatch uses instead of the router's settings, within them.  None: not set by the request."""

    fallbacks: tuple[str, ...] | None = None  # model groups tried after the requested one
    context_window_fallbacks: tuple[str, ...] | None = None  # after it answers "context too long"
    num_retries: int | None = None
    timeout_s: float | None = None  # the whole request's deadline (never past the router's)
    stream_timeout_s: float | None = None  # the wait for a stream's first chunk (never past the config's)
    mock_response: str | None = None  # answer with this text, without calling the upstream
    # LiteLLM's `mock_testing_fallbacks` / `mock_testing_context_fallbacks`: the requested group
    # fails ("error" or "context_window") without being called, so its fallbacks can be tested.
    mock_failure: str | None = None


NO_OVERRIDES = Overrides()  # shared: most calls set none


@dataclass(slots=True)
class Call:
    api: Api  # the client API it came in on: everything that differs between routes
    model: str  # as the client asked
    body: dict[str, Any]
    stream: bool = False
    include_usage: bool = False
    request_headers: dict[str, str] = field(default_factory=dict)
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    start_time: float = field(default_factory=time.time)
    started_at: float = field(default_factory=trio.current_time)
    model_group: str | None = None
    deployment: Deployment | None = None
    attempted_retries: int = 0
    attempted_fallbacks: int = 0
    upstream_wait_s: float = 0.0
    first_chunk_at: float | None = None
    usage: dict[str, Any] | None = None
    user: UserAPIKeyAuth = field(default_factory=UserAPIKeyAuth)
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    requested_guardrails: list[str] = field(default_factory=list)
    guardrail_runs: list[GuardrailRun] = field(default_factory=list)
    cache_hit: bool = False
    finished: bool = False  # its one spend record / final event has been posted
    moderated: bool = False  # its `async_moderation_hook`s ran (once per call, not per attempt)
    pinned_deployment: str | None = None  # a follow-up that must reach the same deployment
    route: str = ""  # the path it came in on, as the client sent it: what `allowed_routes` match
    tenant: Tenant | None = None  # the virtual key's, None for the master key
    end_user: str | None = None  # the body's `user` or the `x-gateway-end-user-id` header
    admission: Admission | None = None  # what the control plane reserved for it, settled at its end
    overrides: Overrides = NO_OVERRIDES  # LiteLLM's per-request parameters (body and headers)
    drop_params: bool | None = None  # the body's `drop_params` (None: not sent); the adapters decide
    api_call_start_time: float | None = None  # unix seconds its latest attempt went upstream (hooks' kwargs)
    trace: CallTrace | None = None  # its spans, with `[otel]` on (pipeline/tracing.py); carried, never implicit

    @property
    def call_type(self) -> str:
        """LiteLLM's name of the call's API ("completion", "embeddings", ...)."""
        return self.api.call_type

    @property
    def wire(self) -> Wire:
        """How the route's answers look."""
        return self.api.wire

    @property
    def upstream_model(self) -> str | None:
        return self.deployment.upstream_model(self.model) if self.deployment else None

    def snapshot(self) -> CallSnapshot:
        """The call as it is now, for another task: what the logging hooks are told of it.

        Shallow on purpose (a few µs): the body is not copied, since no code writes into a body
        once it has left the request task (guardrails mask copies); the small containers the
        request may still change (metadata, tags) are.
        """
        return CallSnapshot(
            call_id=self.call_id,
            api=self.api,
            model=self.model,
            upstream_model=self.upstream_model,
            body=self.body,
            stream=self.stream,
            request_headers=self.request_headers,
            model_group=self.model_group,
            deployment=self.deployment,
            user=self.user,
            metadata=dict(self.metadata),
            tags=tuple(self.tags),
            requested_guardrails=tuple(self.requested_guardrails),
            route=self.route,
            end_user=self.end_user,
            start_time=self.start_time,
            api_call_start_time=self.api_call_start_time,
        )

    def overhead_ms(self) -> float:
        """Time spent in the gateway itself, not waiting on upstreams or backoffs."""
        elapsed = trio.current_time() - self.started_at
        return max(0.0, (elapsed - self.upstream_wait_s) * 1000)


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """A frozen view of a `Call` at one moment (its end, or its dispatch): what logging
    events carry to the callback actor, the kwargs builder and user actors."""

    call_id: str
    api: Api
    model: str
    upstream_model: str | None
    body: dict[str, Any]
    stream: bool
    request_headers: dict[str, str]
    model_group: str | None
    deployment: Deployment | None
    user: UserAPIKeyAuth
    metadata: dict[str, Any]
    tags: tuple[str, ...]
    requested_guardrails: tuple[str, ...]
    route: str = ""
    end_user: str | None = None
    start_time: float = 0.0
    api_call_start_time: float | None = None

    @property
    def call_type(self) -> str:
        return self.api.call_type

    def scratch_call(self, body: dict[str, Any]) -> Call:
        """A throwaway `Call` with `body`, for `logging_only` guardrails: what they run on and
        record never reaches the real call or its spend record."""
        return Call(
            api=self.api, model=self.model, body=body, stream=self.stream,
            request_headers=self.request_headers, call_id=self.call_id, model_group=self.model_group,
            deployment=self.deployment, user=self.user, metadata=dict(self.metadata), tags=list(self.tags),
            requested_guardrails=list(self.requested_guardrails), route=self.route, end_user=self.end_user,
            start_time=self.start_time, api_call_start_time=self.api_call_start_time,
        )
